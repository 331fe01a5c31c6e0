//! What the admin API of orderers and peers shares: who may call it, and a status stream
//! that pushes the current status and then every change.

use std::pin::Pin;

use futures::Stream;
use tokio::sync::watch;
use tonic::{Request, Status};

use prost::Message;

use anyhow::Context;

use crate::identity::{MspSet, Role};
use crate::orderer::registrar::JoinError;
use crate::proto::admin::{CertificateInfo, ChannelStatus, NodeInfoResponse};
use crate::proto::common::Block;
use crate::proto::common::Organization;
use crate::tls::peer_cert;

pub type StatusStream = Pin<Box<dyn Stream<Item = Result<ChannelStatus, Status>> + Send>>;

/// The node's own organisation as far as admin calls go: its TLS root (`tls.adminRootCA`).
pub fn own_org(msp_id: &str, admin_root_pem: Vec<u8>) -> anyhow::Result<MspSet> {
    MspSet::new(&[Organization {
        msp_id: msp_id.to_string(),
        root_cert_pem: admin_root_pem.clone(),
        tls_root_cert_pem: admin_root_pem,
    }])
    .context("tls.adminRootCA")
}

/// Admin calls need a TLS client certificate with OU=admin from the node's own organisation
/// (`own_org` holds its TLS root).
pub fn authorize<T>(own_org: &MspSet, msp_id: &str, req: &Request<T>) -> Result<(), Status> {
    let cert =
        peer_cert(req).ok_or_else(|| Status::unauthenticated("no client TLS certificate"))?;
    match own_org.tls_identity(&cert) {
        Some((_, Some(Role::Admin))) => Ok(()),
        _ => Err(Status::permission_denied(format!(
            "admin calls need a TLS certificate with OU=admin from {msp_id}'s TLS CA"
        ))),
    }
}

/// Sends `render(current)` now and again on every change of `rx`, until the client goes.
pub fn status_stream<S, F>(mut rx: watch::Receiver<S>, render: F) -> StatusStream
where
    S: Clone + Send + Sync + 'static,
    F: Fn(&S) -> ChannelStatus + Send + 'static,
{
    let (tx, out) = tokio::sync::mpsc::channel(16);
    tokio::spawn(async move {
        loop {
            let s = rx.borrow_and_update().clone();
            if tx.send(Ok(render(&s))).await.is_err() {
                return;
            }
            tokio::select! {
                r = rx.changed() => if r.is_err() { return },
                _ = tx.closed() => return,
            }
        }
    });
    Box::pin(tokio_stream::wrappers::ReceiverStream::new(out))
}

/// The genesis block of a JoinChannel request.
pub fn genesis_of(bytes: &[u8]) -> Result<Block, Status> {
    Block::decode(bytes).map_err(|e| {
        Status::invalid_argument(format!("genesis_block does not decode as a block: {e}"))
    })
}

/// Runs a join (file I/O: off the async threads) and turns its refusal into a status.
pub async fn join<T: Send + 'static>(
    join: impl FnOnce() -> Result<T, JoinError> + Send + 'static,
) -> Result<T, Status> {
    match tokio::task::spawn_blocking(join)
        .await
        .map_err(|e| Status::internal(e.to_string()))?
    {
        Ok(joined) => Ok(joined),
        Err(JoinError::AlreadyJoined(c)) => Err(Status::already_exists(format!(
            "channel {c} is already joined"
        ))),
        Err(JoinError::Invalid(m)) => Err(Status::invalid_argument(m)),
        Err(e @ JoinError::Internal(_)) => Err(Status::internal(e.to_string())),
    }
}

/// What `NodeInfo` reports of a certificate (PEM or DER); None when it does not parse.
pub fn certificate_info(usage: &str, cert: &[u8]) -> Option<CertificateInfo> {
    let der = crate::tls::pem_to_der(cert).unwrap_or_else(|| cert.to_vec());
    let (_, c) = x509_parser::parse_x509_certificate(&der).ok()?;
    Some(CertificateInfo {
        usage: usage.to_string(),
        subject: c.subject().to_string(),
        not_before: c.validity().not_before.timestamp(),
        not_after: c.validity().not_after.timestamp(),
    })
}

/// The `NodeInfo` answer of a node: its TLS and signing certificates (PEM or DER) and the
/// channels it has joined.
pub fn node_info(
    name: &str,
    msp_id: &str,
    role: &str,
    tls_cert: &[u8],
    signing_cert: &[u8],
    channels: impl Iterator<Item = String>,
) -> NodeInfoResponse {
    NodeInfoResponse {
        name: name.to_string(),
        msp_id: msp_id.to_string(),
        role: role.to_string(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        certificates: [
            certificate_info("tls", tls_cert),
            certificate_info("signing", signing_cert),
        ]
        .into_iter()
        .flatten()
        .collect(),
        channels: channels.collect(),
    }
}
