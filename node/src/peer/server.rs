//! Runs a peer: one TLS listener serving the endorser, commit events and admin.

use std::future::Future;

use anyhow::Context;

use super::admin::PeerAdmin;
use super::endorser::EndorserService;
use super::events::EventsService;
use super::registrar::PeerRegistrar;
use crate::config::NodeConfig;
use crate::proto::admin::admin_server::AdminServer;
use crate::proto::peer::endorser_server::EndorserServer;
use crate::proto::peer::events_server::EventsServer;

const MAX_MESSAGE: usize = 256 << 20;

/// Serves until `shutdown` resolves.
pub async fn run(cfg: NodeConfig, shutdown: impl Future<Output = ()> + Send) -> anyhow::Result<()> {
    let limits = cfg.limits.check()?;
    let signer = crate::serve::signing_identity(&cfg, "peer", "its endorsements are made")?;
    let crate::serve::Prepared {
        tls,
        admin_root,
        listener,
        operations,
    } = crate::serve::prepare(&cfg).await?;
    let mut builder = crate::serve::server(&tls, &limits)?;
    let runtime = tokio::runtime::Handle::current();
    let (name, data_dir) = (cfg.name.clone(), cfg.data_dir.clone());
    let reg = tokio::task::spawn_blocking(move || {
        PeerRegistrar::open(&name, signer, data_dir, tls, admin_root, runtime)
    })
    .await??;
    tracing::info!(node = %cfg.name, address = %cfg.listen_address, channels = reg.list().len(), "peer started");
    let ops = crate::serve::start_operations(operations, reg.clone());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = builder
        .add_service(
            EndorserServer::new(EndorserService::new(reg.clone()))
                .max_decoding_message_size(limits.control_message_size)
                .max_encoding_message_size(MAX_MESSAGE),
        )
        .add_service(
            EventsServer::new(EventsService { reg: reg.clone() })
                .max_decoding_message_size(limits.control_message_size),
        )
        .add_service(
            AdminServer::new(PeerAdmin { reg: reg.clone() })
                .max_decoding_message_size(limits.control_message_size)
                .max_encoding_message_size(MAX_MESSAGE),
        )
        .serve_with_incoming_shutdown(
            crate::connections::limited(listener, limits.max_connections),
            async {
                let _ = stop_rx.await;
            },
        );
    let result = crate::serve::until_shutdown(
        server,
        stop_tx,
        shutdown,
        &ops,
        crate::serve::SHUTDOWN_GRACE,
    )
    .await;
    let r = reg.clone();
    tokio::task::spawn_blocking(move || r.shutdown()).await?;
    tracing::info!(node = %cfg.name, "peer stopped");
    result.context("server failed")
}
