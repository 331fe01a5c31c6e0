//! Commit events: the outcome of every transaction of every committed block, from a given
//! block on, so that a client can wait for its transaction. Readers are members of the
//! channel's organisations (by TLS certificate).

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::registrar::PeerRegistrar;
use prost::Message;

use crate::proto::common::Block;
use crate::proto::peer::{
    events_server, CommitEventsRequest, FilteredBlock, FilteredTransaction,
    TxValidationCode as Code,
};
use crate::tls::peer_cert;

pub struct EventsService {
    pub reg: Arc<PeerRegistrar>,
}

#[tonic::async_trait]
impl events_server::Events for EventsService {
    type CommitEventsStream = ReceiverStream<Result<FilteredBlock, Status>>;

    async fn commit_events(
        &self,
        req: Request<CommitEventsRequest>,
    ) -> Result<Response<Self::CommitEventsStream>, Status> {
        let cert = peer_cert(&req);
        let req = req.into_inner();
        let ch = self.reg.get(&req.channel_id).ok_or_else(|| {
            Status::not_found(format!(
                "channel {:?} is not joined on {}",
                req.channel_id, self.reg.name
            ))
        })?;
        if cert
            .as_deref()
            .and_then(|der| ch.rules.msps.tls_identity(der))
            .is_none()
        {
            return Err(Status::permission_denied(format!(
                "events of channel {} are for members of its organisations",
                req.channel_id
            )));
        }
        crate::signed_request::authorize(
            &req,
            &req.channel_id,
            &ch.rules.msps,
            &ch.rules.readers,
            cert.as_deref(),
        )
        .map_err(Status::permission_denied)?;
        let mut next = req.start.unwrap_or_else(|| ch.store.height());
        let mut height = ch.store.watch_height();
        let mut stopped = ch.stopped();
        let (tx, rx) = mpsc::channel(64);
        let sent = crate::operations::metrics()
            .deliver_blocks_sent
            .with_label_values(&[ch.channel_id(), "true", "filtered_block"]);
        tokio::spawn(async move {
            loop {
                let ready = tokio::select! {
                    r = height.wait_for(|h| *h > next) => r.is_ok(),
                    _ = stopped.wait_for(|s| *s) => false,
                    _ = tx.closed() => return,
                };
                if *stopped.borrow() {
                    let _ = tx
                        .send(Err(Status::unavailable("the peer is shutting down")))
                        .await;
                    return;
                }
                if !ready {
                    return;
                }
                let item = match ch.events_of(next) {
                    Ok(Some(fb)) => Ok((*fb).clone()),
                    Ok(None) => Err(Status::internal(format!("block {next} is missing"))),
                    Err(e) => Err(Status::internal(format!("{e:#}"))),
                };
                let failed = item.is_err();
                if tx.send(item).await.is_err() || failed {
                    return;
                }
                sent.inc();
                next += 1;
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

/// The filtered form of a stored block (for events about past blocks).
pub fn filtered(channel_id: &str, block: &Block) -> FilteredBlock {
    let filter = block
        .metadata
        .as_ref()
        .map(|m| m.transactions_filter.clone())
        .unwrap_or_default();
    let txs = block
        .data
        .as_ref()
        .map(|d| &d.transactions[..])
        .unwrap_or(&[]);
    FilteredBlock {
        channel_id: channel_id.to_string(),
        number: block.header.as_ref().map(|h| h.number).unwrap_or(0),
        transactions: txs
            .iter()
            .enumerate()
            .map(|(i, raw)| FilteredTransaction {
                tx_id: tx_id_of(raw).unwrap_or_default(),
                code: filter
                    .get(i)
                    .map(|&c| i32::from(c))
                    .unwrap_or(Code::InvalidOtherReason as i32),
            })
            .collect(),
    }
}

fn tx_id_of(raw: &[u8]) -> Option<String> {
    use crate::proto::common::{Envelope, Payload};
    let env = Envelope::decode(raw).ok()?;
    Some(Payload::decode(&env.payload[..]).ok()?.header?.tx_id)
}
