//! Deliver: streams a channel's blocks from `start` to `stop`, or follows new blocks as they
//! are written. Readers hold a TLS certificate of a channel organisation and sign their
//! request as a member of the channel's Readers policy.

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::chain::ChainHandle;
use crate::proto::common::Status;
use crate::proto::orderer::{
    deliver_response::Type, DeliverRequest, DeliverResponse, SeekBehavior,
};

pub type DeliverStream = ReceiverStream<Result<DeliverResponse, tonic::Status>>;

fn deliver_status(s: Status, info: impl Into<String>) -> DeliverResponse {
    DeliverResponse {
        r#type: Some(Type::Status(s as i32)),
        info: info.into(),
    }
}

/// Whether the sender may read the channel: its TLS certificate is from one of the channel's
/// organisations and its signed request satisfies the Readers policy. The error says why not.
pub fn authorize(
    chain: &ChainHandle,
    req: &DeliverRequest,
    peer_cert: Option<&[u8]>,
) -> Result<(), String> {
    if peer_cert
        .and_then(|der| chain.msps.tls_identity(der))
        .is_none()
    {
        return Err(format!(
            "the client's TLS certificate is not from an organisation of channel {}",
            req.channel_id
        ));
    }
    crate::signed_request::authorize(req, &req.channel_id, &chain.msps, &chain.readers, peer_cert)
        .map(|_| ())
}

/// Streams what `req` asks for; the sender is authorised already ([`authorize`]).
/// `chain` is the channel as it was when the sender was authorised (None: not joined then).
pub fn serve(chain: Option<Arc<ChainHandle>>, req: DeliverRequest) -> DeliverStream {
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(async move {
        let end = match stream_blocks(chain, &req, &tx).await {
            Ok(end) => end,
            Err(()) => return, // The client went away.
        };
        let _ = tx.send(Ok(end)).await;
    });
    ReceiverStream::new(rx)
}

type Tx = mpsc::Sender<Result<DeliverResponse, tonic::Status>>;

/// Sends blocks; returns the final status message, or Err when the client is gone.
async fn stream_blocks(
    chain: Option<Arc<ChainHandle>>,
    req: &DeliverRequest,
    tx: &Tx,
) -> Result<DeliverResponse, ()> {
    let Some(chain) = chain else {
        return Ok(deliver_status(
            Status::NotFound,
            format!(
                "channel {:?} does not exist on this orderer",
                req.channel_id
            ),
        ));
    };
    if let Some(stop) = req.stop {
        if stop < req.start {
            return Ok(deliver_status(
                Status::BadRequest,
                format!("stop {stop} is before start {}", req.start),
            ));
        }
    }
    let wait = req.behavior != SeekBehavior::FailIfNotReady as i32;
    let mut heights = chain.store.watch_height();
    let mut status = chain.watch_status();
    let sent = crate::operations::metrics()
        .deliver_blocks_sent
        .with_label_values(&[chain.channel_id(), "false", "block"]);
    let mut next = req.start;
    loop {
        if req.stop.is_some_and(|stop| next > stop) {
            return Ok(deliver_status(Status::Success, ""));
        }
        if next < chain.store.height() {
            let block = match chain.store.get(next) {
                Ok(Some(b)) => b,
                Ok(None) => {
                    return Ok(deliver_status(
                        Status::NotFound,
                        format!("block {next} is missing"),
                    ))
                }
                Err(e) => {
                    return Ok(deliver_status(
                        Status::InternalServerError,
                        format!("reading block {next}: {e:#}"),
                    ))
                }
            };
            let msg = DeliverResponse {
                r#type: Some(Type::Block(block)),
                info: String::new(),
            };
            tx.send(Ok(msg)).await.map_err(|_| ())?;
            sent.inc();
            next += 1;
            continue;
        }
        // Blocks already written are served from a halted chain; no new ones will come.
        let halted = status.borrow_and_update().halt_error.clone();
        if !halted.is_empty() {
            return Ok(deliver_status(
                Status::ServiceUnavailable,
                format!(
                    "channel {} is halted on this orderer ({halted}); its blocks end at {}: use another orderer",
                    req.channel_id,
                    chain.store.height()
                ),
            ));
        }
        if !wait {
            return Ok(deliver_status(
                Status::ServiceUnavailable,
                format!(
                    "block {next} is not yet written (height {})",
                    chain.store.height()
                ),
            ));
        }
        tokio::select! {
            changed = heights.changed() => if changed.is_err() {
                return Ok(deliver_status(Status::ServiceUnavailable, "channel stopped"));
            },
            _ = status.changed() => {},
            _ = tx.closed() => return Err(()),
        }
    }
}
