//! An impostor on a consenter's address: it holds a valid TLS certificate and key of another
//! orderer of the same network (issued by a trusted CA, naming 127.0.0.1), but not the
//! certificate the channel configuration lists for that consenter. The other orderers dial it
//! and refuse it during the TLS handshake: it receives no Raft message, and the channel keeps
//! ordering without the consenter it stands in for.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use raftnet_node::config::NodeConfig;
use raftnet_node::network::ordering::OrderingSpec;
use raftnet_node::proto::cluster::cluster_server::{Cluster, ClusterServer};
use raftnet_node::proto::cluster::{StepRequest, StepResponse, SubmitRequest, SubmitResponse};
use raftnet_node::tls::TlsMaterial;
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tonic::{Request, Response, Status, Streaming};

use crate::support;

/// A Cluster service that counts what reaches it.
#[derive(Clone, Default)]
struct Impostor {
    steps: Arc<AtomicUsize>,
    submits: Arc<AtomicUsize>,
}

#[tonic::async_trait]
impl Cluster for Impostor {
    async fn step(
        &self,
        req: Request<Streaming<StepRequest>>,
    ) -> Result<Response<StepResponse>, Status> {
        let mut stream = req.into_inner();
        while let Some(Ok(_)) = stream.next().await {
            self.steps.fetch_add(1, Ordering::Relaxed);
        }
        Ok(Response::new(StepResponse {}))
    }

    type SubmitStream = ReceiverStream<Result<SubmitResponse, Status>>;

    async fn submit(
        &self,
        _req: Request<Streaming<SubmitRequest>>,
    ) -> Result<Response<Self::SubmitStream>, Status> {
        self.submits.fetch_add(1, Ordering::Relaxed);
        let (_tx, rx) = tokio::sync::mpsc::channel(1);
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_impostor_with_another_orderers_certificate_is_refused() {
    let mut net = support::start(OrderingSpec {
        orderers: 3,
        ..Default::default()
    })
    .await;
    net.submit(0, 3, 32).await;
    let leader = net.leader().await;
    let (victim, other) = ((leader + 1) % 3, (leader + 2) % 3);
    let victim_addr = net.addr(victim);
    net.cluster.kill(victim).unwrap();

    // The impostor serves with `other`'s certificate and key on the victim's address.
    let other_cfg = NodeConfig::load(&net.cluster.nodes[other].config).unwrap();
    let tls = TlsMaterial::load(&other_cfg.tls).unwrap();
    let listener = tokio::net::TcpListener::bind(&victim_addr).await.unwrap();
    let dials = Arc::new(AtomicUsize::new(0));
    let incoming = {
        let dials = dials.clone();
        TcpListenerStream::new(listener).inspect(move |_| {
            dials.fetch_add(1, Ordering::Relaxed);
        })
    };
    let impostor = Impostor::default();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .tls_config(tls.server_config())
            .unwrap()
            .add_service(ClusterServer::new(impostor.clone()))
            .serve_with_incoming_shutdown(incoming, async {
                let _ = stopped.await;
            }),
    );

    // The leader keeps heartbeating the victim's address, and the channel keeps ordering.
    let acked = net.submit(leader, 20, 32).await;
    assert_eq!(acked.len(), 20, "ordering stopped with 2 of 3 consenters");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while dials.load(Ordering::Relaxed) == 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        dials.load(Ordering::Relaxed) >= 1,
        "the orderers never dialled the victim's address: the test proves nothing"
    );
    assert_eq!(
        impostor.steps.load(Ordering::Relaxed),
        0,
        "the impostor received Raft messages"
    );
    assert_eq!(impostor.submits.load(Ordering::Relaxed), 0);
    let _ = stop.send(());
    server.await.unwrap().unwrap();

    // The real consenter, back on its address, is accepted and catches up.
    net.cluster.start(victim).unwrap();
    let height = net.blocks(leader).await.len() as u64;
    net.wait_height(victim, height).await;
}
