//! Commit events: the outcome of every transaction of every committed block, from a given
//! block on, so that a client can wait for its transaction. Readers are members of the
//! channel's organisations (by TLS certificate).

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::registrar::PeerRegistrar;
use crate::proto::peer::{events_server, CommitEventsRequest, FilteredBlock};
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
        let mut next = req.start.unwrap_or_else(|| ch.store.height());
        let mut height = ch.store.watch_height();
        let (tx, rx) = mpsc::channel(64);
        tokio::spawn(async move {
            loop {
                let ready = tokio::select! {
                    r = height.wait_for(|h| *h > next) => r.is_ok(),
                    _ = tx.closed() => return,
                };
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
                next += 1;
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}
