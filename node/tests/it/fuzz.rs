//! Garbage on every public gRPC method of real orderers and a real peer: random bytes,
//! truncated valid messages and bytes that are no protobuf at all. Every call is answered
//! with a gRPC status within a deadline (INVALID_ARGUMENT naming the message type where the
//! bytes do not decode), the nodes keep serving, and no ledger changes.

use std::time::Duration;

use prost::bytes::{Buf, BufMut};
use prost::Message;
use raftnet_node::network::ordering::OrderingSpec;
use raftnet_node::proto::admin::{ChannelStatusRequest, JoinChannelRequest};
use raftnet_node::proto::orderer::DeliverRequest;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};

use crate::support::{self, TIMEOUT};

/// Sends and receives messages as raw bytes.
#[derive(Clone, Copy, Default)]
struct Raw;

impl Codec for Raw {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = Raw;
    type Decoder = Raw;
    fn encoder(&mut self) -> Raw {
        Raw
    }
    fn decoder(&mut self) -> Raw {
        Raw
    }
}

impl Encoder for Raw {
    type Item = Vec<u8>;
    type Error = Status;
    fn encode(&mut self, item: Vec<u8>, buf: &mut EncodeBuf<'_>) -> Result<(), Status> {
        buf.put_slice(&item);
        Ok(())
    }
}

impl Decoder for Raw {
    type Item = Vec<u8>;
    type Error = Status;
    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        Ok(Some(buf.copy_to_bytes(buf.remaining()).to_vec()))
    }
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Unary,
    ServerStream,
    ClientStream,
    Bidi,
}

/// Calls `path` with one message of raw `bytes`; the code it was answered with (Ok when a
/// stream answered or ended normally), or an error when no answer came in time.
async fn call(
    channel: Channel,
    path: &'static str,
    kind: Kind,
    bytes: Vec<u8>,
) -> Result<Code, String> {
    let answer = async move {
        let mut grpc = tonic::client::Grpc::new(channel);
        grpc.ready()
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        let path = PathAndQuery::from_static(path);
        let one = futures::stream::iter(vec![bytes.clone()]);
        let mut stream = match kind {
            Kind::Unary => return grpc.unary(Request::new(bytes), path, Raw).await.map(|_| ()),
            Kind::ClientStream => {
                return grpc
                    .client_streaming(Request::new(one), path, Raw)
                    .await
                    .map(|_| ())
            }
            Kind::ServerStream => {
                grpc.server_streaming(Request::new(bytes), path, Raw)
                    .await?
            }
            Kind::Bidi => grpc.streaming(Request::new(one), path, Raw).await?,
        };
        // An answer: the first message, the end, or a status.
        stream.get_mut().message().await.map(|_| ())
    };
    match tokio::time::timeout(Duration::from_secs(5), answer).await {
        Ok(Ok(())) => Ok(Code::Ok),
        Ok(Err(s)) => Ok(s.code()),
        Err(_) => Err(format!("{path}: no answer within 5 s")),
    }
}

/// A deterministic stream of bytes (splitmix64), so that a failure can be replayed.
fn random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed;
    (0..len)
        .map(|_| {
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            (z ^ (z >> 31)) as u8
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_on_every_method_gets_a_status_and_changes_nothing() {
    let mut net = support::start(OrderingSpec {
        orderers: 3,
        orgs: vec!["Org1MSP".into()],
        peers_per_org: 1,
        ..Default::default()
    })
    .await;
    net.cluster.start_peers(TIMEOUT).await.unwrap();
    let ch = net.channel();
    net.submit(0, 3, 32).await;
    let peer = net.cluster.layout.peers[0].address.clone();
    let peer_admin = net.cluster.admin_of("Org1MSP").unwrap();
    // The heights once the submitted transactions' block is written everywhere (an
    // acknowledged broadcast may still be on its way to the ledgers).
    let heights = || async {
        let mut h = Vec::new();
        for i in 0..3 {
            h.push(net.admin.status(&net.addr(i), &ch).await.unwrap().height);
        }
        h
    };
    let settled = std::time::Instant::now();
    let before: Vec<u64> = loop {
        let first = heights().await;
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let again = heights().await;
        if first == again && again.iter().all(|h| *h == again[0] && *h > 1) {
            break again;
        }
        assert!(
            settled.elapsed() < std::time::Duration::from_secs(10),
            "the orderers' heights did not settle: {again:?}"
        );
    };

    // Valid messages, to truncate.
    let (env, _) = net.client.envelope(&ch, vec![1; 40]).unwrap();
    let valid: Vec<Vec<u8>> = vec![
        env.encode_to_vec(),
        DeliverRequest {
            channel_id: ch.clone(),
            start: 0,
            ..Default::default()
        }
        .encode_to_vec(),
        ChannelStatusRequest {
            channel_id: ch.clone(),
        }
        .encode_to_vec(),
        JoinChannelRequest {
            genesis_block: std::fs::read(&net.cluster.layout.genesis).unwrap(),
        }
        .encode_to_vec(),
    ];
    let mut inputs: Vec<Vec<u8>> = vec![vec![0xff; 10]];
    for (seed, len) in [(1, 1), (2, 7), (3, 64), (4, 1000)] {
        inputs.push(random_bytes(seed, len));
    }
    for v in &valid {
        inputs.push(v[..v.len() / 2].to_vec());
        inputs.push(v[..v.len() - 1].to_vec());
    }

    let orderer_methods: [(&'static str, Kind); 10] = [
        ("/raftnet.orderer.AtomicBroadcast/Broadcast", Kind::Bidi),
        (
            "/raftnet.orderer.AtomicBroadcast/Deliver",
            Kind::ServerStream,
        ),
        ("/raftnet.cluster.Cluster/Step", Kind::ClientStream),
        ("/raftnet.cluster.Cluster/Submit", Kind::Bidi),
        ("/raftnet.admin.Admin/JoinChannel", Kind::Unary),
        ("/raftnet.admin.Admin/ListChannels", Kind::Unary),
        ("/raftnet.admin.Admin/ChannelStatus", Kind::Unary),
        ("/raftnet.admin.Admin/WatchStatus", Kind::ServerStream),
        ("/raftnet.admin.Admin/NodeInfo", Kind::Unary),
        ("/raftnet.admin.Admin/TransferLeadership", Kind::Unary),
    ];
    let peer_methods: [(&'static str, Kind); 3] = [
        ("/raftnet.peer.Endorser/ProcessProposal", Kind::Unary),
        ("/raftnet.peer.Events/CommitEvents", Kind::ServerStream),
        ("/raftnet.admin.Admin/ChannelStatus", Kind::Unary),
    ];
    let targets = [
        (
            net.admin.channel(&net.addr(0)).unwrap(),
            &orderer_methods[..],
        ),
        (peer_admin.channel(&peer).unwrap(), &peer_methods[..]),
    ];
    for (channel, methods) in targets {
        for &(path, kind) in methods {
            for (k, input) in inputs.iter().enumerate() {
                let code = call(channel.clone(), path, kind, input.clone())
                    .await
                    .unwrap_or_else(|e| panic!("input {k}: {e}"));
                assert!(
                    !matches!(code, Code::Internal | Code::Unknown | Code::Unavailable),
                    "{path} answered input {k} with {code:?}"
                );
                if k == 0 && !matches!(kind, Kind::Bidi) {
                    // 0xff… is no protobuf at all: refused as such (a broadcast stream just
                    // ends, answering nothing it could not read).
                    assert_eq!(code, Code::InvalidArgument, "{path}");
                }
            }
        }
    }

    // Every node still serves, and no ledger moved.
    for (i, h) in before.iter().enumerate() {
        let s = net.admin.status(&net.addr(i), &ch).await.unwrap();
        assert_eq!(s.height, *h, "orderer {i}'s ledger changed");
    }
    let s = peer_admin.status(&peer, &ch).await.unwrap();
    assert!(s.height <= before[0]);
    assert_eq!(net.submit(1, 2, 32).await.len(), 2, "ordering still works");
}
