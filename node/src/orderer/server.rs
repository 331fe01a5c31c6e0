//! Runs an orderer: one TLS listener serving broadcast, deliver, cluster and admin.

use std::future::Future;
use std::sync::Arc;

use anyhow::Context;
use tonic::{Request, Response, Status, Streaming};

use super::admin::AdminService;
use super::cluster::ClusterService;
use super::pending::PendingBytes;
use super::registrar::Registrar;
use super::{broadcast, deliver};
use crate::config::NodeConfig;
use crate::proto::admin::admin_server::AdminServer;
use crate::proto::cluster::cluster_server::ClusterServer;
use crate::proto::common::Envelope;
use crate::proto::orderer::atomic_broadcast_server::{AtomicBroadcast, AtomicBroadcastServer};
use crate::proto::orderer::DeliverRequest;
use crate::tls::peer_cert;

const MAX_MESSAGE: usize = 256 << 20;
/// How long a stopping orderer lets open calls finish after its planned stop.
const STOP_GRACE: std::time::Duration = std::time::Duration::from_millis(200);

struct BroadcastService {
    reg: Arc<Registrar>,
    pending: PendingBytes,
}

#[tonic::async_trait]
impl AtomicBroadcast for BroadcastService {
    type BroadcastStream = broadcast::ResponseStream;
    type DeliverStream = deliver::DeliverStream;

    async fn broadcast(
        &self,
        req: Request<Streaming<Envelope>>,
    ) -> Result<Response<Self::BroadcastStream>, Status> {
        Ok(Response::new(broadcast::serve(
            self.reg.clone(),
            self.pending.clone(),
            req.into_inner(),
        )))
    }

    async fn deliver(
        &self,
        req: Request<DeliverRequest>,
    ) -> Result<Response<Self::DeliverStream>, Status> {
        let cert = peer_cert(&req);
        let req = req.into_inner();
        // One lookup: the channel authorised is the channel served.
        let chain = self.reg.get(&req.channel_id);
        if let Some(chain) = &chain {
            deliver::authorize(chain, &req, cert.as_deref()).map_err(Status::permission_denied)?;
        }
        Ok(Response::new(deliver::serve(chain, req)))
    }
}

/// Serves until `shutdown` resolves.
pub async fn run(cfg: NodeConfig, shutdown: impl Future<Output = ()> + Send) -> anyhow::Result<()> {
    let limits = cfg.limits.check()?;
    let crate::serve::Prepared {
        tls,
        admin_root,
        listener,
        operations,
    } = crate::serve::prepare(&cfg).await?;
    let mut builder = crate::serve::server(&tls, &limits)?;
    let runtime = tokio::runtime::Handle::current();
    let signer =
        crate::serve::signing_identity(&cfg, "orderer", "the blocks it creates are signed")?;
    let (name, msp, data_dir) = (cfg.name.clone(), cfg.msp_id.clone(), cfg.data_dir.clone());
    let reg = tokio::task::spawn_blocking(move || {
        Registrar::open(&name, &msp, data_dir, tls, admin_root, runtime, signer)
    })
    .await??;
    tracing::info!(node = %cfg.name, address = %cfg.listen_address, channels = reg.list().len(), "orderer started");
    let ops = crate::serve::start_operations(operations, reg.clone());
    // SIGTERM: leadership first, then the broadcasts already taken, then the server.
    let stopping = reg.clone();
    let shutdown = async move {
        shutdown.await;
        stopping.prepare_stop().await;
    };
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    // One budget for envelopes from clients and from followers.
    let pending = PendingBytes::new(limits.max_pending_bytes);
    // Each service decodes no more than its own limit, before anyone is authorised; what
    // the node sends (blocks) may be as large as a block gets.
    let server = builder
        .add_service(
            AtomicBroadcastServer::new(BroadcastService {
                reg: reg.clone(),
                pending: pending.clone(),
            })
            .max_decoding_message_size(limits.broadcast_message_size)
            .max_encoding_message_size(MAX_MESSAGE),
        )
        .add_service(
            ClusterServer::new(ClusterService {
                reg: reg.clone(),
                pending,
            })
            .max_decoding_message_size(limits.cluster_message_size)
            .max_encoding_message_size(MAX_MESSAGE),
        )
        .add_service(
            AdminServer::new(AdminService { reg: reg.clone() })
                .max_decoding_message_size(limits.control_message_size)
                .max_encoding_message_size(MAX_MESSAGE),
        )
        .serve_with_incoming_shutdown(
            crate::connections::limited(listener, limits.max_connections),
            async {
                let _ = stop_rx.await;
            },
        );
    // Once leadership is handed over and the broadcasts taken are answered, what is left
    // open are other nodes' long-lived streams (Raft, Deliver, status), which do not end by
    // themselves and move to other orderers when cut: a short grace.
    let result = crate::serve::until_shutdown(server, stop_tx, shutdown, &ops, STOP_GRACE).await;
    let r2 = reg.clone();
    tokio::task::spawn_blocking(move || r2.shutdown()).await?;
    tracing::info!(node = %cfg.name, "orderer stopped");
    result.context("server failed")
}
