//! Block signatures on real processes: an impostor at a consenter's address, holding that
//! orderer's valid TLS certificate, serves a well-chained block with forged transactions
//! signed by a swapped key, or the real block with its signature flipped. Every peer refuses
//! both, says why, and commits the real chain once the real orderers are back.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use prost::Message;
use raftnet_node::config::NodeConfig;
use raftnet_node::identity::Role;
use raftnet_node::ledger::{header_hash, new_block, sign_block};
use raftnet_node::network::ordering::OrderingSpec;
use raftnet_node::proto::common::{Block, Envelope};
use raftnet_node::proto::orderer::atomic_broadcast_server::{
    AtomicBroadcast, AtomicBroadcastServer,
};
use raftnet_node::proto::orderer::{
    deliver_response, BroadcastResponse, DeliverRequest, DeliverResponse,
};
use raftnet_node::tls::TlsMaterial;
use tokio::sync::mpsc;
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tonic::{Request, Response, Status, Streaming};

use crate::support::{self, TIMEOUT};

/// Serves forged block 1 on even Deliver requests, the real one with a flipped signature
/// byte on odd ones.
struct Impostor {
    forged: Block,
    flipped: Block,
    served: Arc<AtomicUsize>,
}

type Stream = ReceiverStream<Result<DeliverResponse, Status>>;

#[tonic::async_trait]
impl AtomicBroadcast for Impostor {
    type BroadcastStream = ReceiverStream<Result<BroadcastResponse, Status>>;
    type DeliverStream = Stream;

    async fn broadcast(
        &self,
        _: Request<Streaming<Envelope>>,
    ) -> Result<Response<Self::BroadcastStream>, Status> {
        Err(Status::unimplemented("an impostor orders nothing"))
    }

    async fn deliver(&self, req: Request<DeliverRequest>) -> Result<Response<Stream>, Status> {
        if req.get_ref().start != 1 {
            return Err(Status::not_found("only block 1 is on offer"));
        }
        let n = self.served.fetch_add(1, Ordering::Relaxed);
        let block = if n.is_multiple_of(2) {
            &self.forged
        } else {
            &self.flipped
        };
        let (tx, rx) = mpsc::channel(2);
        let msg = DeliverResponse {
            r#type: Some(deliver_response::Type::Block(block.clone())),
            info: String::new(),
        };
        tokio::spawn(async move {
            let _ = tx.send(Ok(msg)).await;
            // Holds the stream open, as a censoring orderer would.
            tx.closed().await;
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

/// Waits until `log` holds `text`.
async fn wait_log(log: &std::path::Path, text: &str) {
    let started = Instant::now();
    loop {
        let content = std::fs::read_to_string(log).unwrap_or_default();
        if content.contains(text) {
            return;
        }
        assert!(
            started.elapsed() < TIMEOUT,
            "{} never logged {text:?}:\n{content}",
            log.display()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_refuse_blocks_an_impostor_orderer_serves_and_commit_the_real_chain() {
    let mut net = support::start(OrderingSpec {
        orderers: 3,
        orgs: vec!["Org1MSP".into()],
        peers_per_org: 2,
        ..Default::default()
    })
    .await;
    let ch = net.channel();
    net.submit(0, 5, 64).await;
    let real = net.blocks(0).await;
    assert!(real.len() >= 2);
    assert!(
        !real[1].metadata.as_ref().unwrap().signatures.is_empty(),
        "blocks are signed by the orderer that created them"
    );

    // Forged block 1: chained to the real genesis block, other transactions, signed by an
    // orderer certificate of a CA the channel does not know (a swapped signing key).
    let swapped = support::foreign_identity("OrdererMSP", "orderer3", Role::Orderer);
    let (env, _) = net.client.envelope(&ch, b"forged".to_vec()).unwrap();
    let genesis_hash = header_hash(real[0].header.as_ref().unwrap());
    let mut forged = new_block(1, genesis_hash, vec![env.encode_to_vec()]);
    sign_block(&mut forged, &swapped).unwrap();
    let mut flipped = real[1].clone();
    let sig = &mut flipped.metadata.as_mut().unwrap().signatures[0].signature;
    let last = sig.len() - 1;
    sig[last] ^= 0x01;

    // The impostor takes orderer3's place, with its TLS certificate; the real orderers go.
    net.cluster.kill(2).unwrap();
    let cfg = NodeConfig::load(&net.cluster.nodes[2].config).unwrap();
    let tls = TlsMaterial::load(&cfg.tls).unwrap();
    let served = Arc::new(AtomicUsize::new(0));
    let listener = tokio::net::TcpListener::bind(&cfg.listen_address)
        .await
        .unwrap();
    let impostor = Impostor {
        forged,
        flipped,
        served: served.clone(),
    };
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .tls_config(tls.server_config())
            .unwrap()
            .add_service(AtomicBroadcastServer::new(impostor))
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );
    net.cluster.kill(0).unwrap();
    net.cluster.kill(1).unwrap();

    // Peers find only the impostor: both kinds of block are refused, with the reason.
    net.cluster.start_peers(TIMEOUT).await.unwrap();
    for p in 0..2 {
        let log = net.cluster.nodes[net.cluster.peer_index(p)].log.clone();
        wait_log(&log, "refused a block").await;
        wait_log(&log, "does not verify").await;
    }
    let started = Instant::now();
    while served.load(Ordering::Relaxed) < 4 {
        assert!(
            started.elapsed() < TIMEOUT,
            "the impostor was asked too rarely"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let peer_admin = net.cluster.admin_of("Org1MSP").unwrap();
    for p in 0..2 {
        let addr = &net.cluster.layout.peers[p].address;
        let s = peer_admin.status(addr, &ch).await.unwrap();
        assert_eq!(
            s.height, 1,
            "peer {p} committed a block it should have refused"
        );
    }

    // The real orderers return: the peers commit the real chain, all alike.
    net.cluster.start(0).unwrap();
    net.cluster.start(1).unwrap();
    net.cluster
        .wait_leader(&net.admin, &[2], TIMEOUT)
        .await
        .unwrap();
    let height = real.len() as u64;
    let started = Instant::now();
    loop {
        let mut states = Vec::new();
        for p in 0..2 {
            let addr = &net.cluster.layout.peers[p].address;
            let s = peer_admin.status(addr, &ch).await.unwrap();
            states.push((s.height, s.last_block_hash, s.commit_hash));
        }
        if states.iter().all(|(h, _, _)| *h >= height) {
            assert_eq!(states[0], states[1], "peers disagree");
            let tip = header_hash(real.last().unwrap().header.as_ref().unwrap());
            assert_eq!(states[0].1, tip, "peers hold the real chain");
            break;
        }
        assert!(started.elapsed() < TIMEOUT, "peers stuck: {states:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    server.abort();
}
