//! Followers hand envelopes to the leader over one long-lived `Submit` stream per leader
//! address, matching answers to requests by id. A unary call per transaction cost a new
//! HTTP/2 stream each and held ordering back when clients spread over all orderers.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;

use super::chain::Outcome;
use super::msgprocessor::Rejection;
use super::transport::Transport;
use crate::proto::cluster::{cluster_client::ClusterClient, SubmitRequest, SubmitResponse};
use crate::proto::common::{Envelope, Status};

/// How long a forwarded submission may wait for the leader's answer.
const TIMEOUT: Duration = Duration::from_secs(10);
const QUEUE: usize = 8192;

#[derive(Default)]
struct WaiterSet {
    pending: HashMap<u64, oneshot::Sender<SubmitResponse>>,
    /// The stream's reader has ended: no answer will come.
    closed: bool,
}

type Waiters = Arc<Mutex<WaiterSet>>;

struct Stream {
    requests: mpsc::Sender<SubmitRequest>,
    waiters: Waiters,
}

#[derive(Default)]
pub struct Forwarder {
    streams: Mutex<HashMap<String, Arc<Stream>>>,
    next_id: AtomicU64,
}

impl Forwarder {
    /// Sends `env` to the leader at `addr` and waits for its outcome.
    pub async fn forward(
        &self,
        transport: &Transport,
        addr: &str,
        channel: &str,
        env: Envelope,
    ) -> Outcome {
        let stream = match self.stream(transport, addr) {
            Ok(s) => s,
            Err(e) => {
                return Outcome::Unavailable(format!("cannot reach the leader at {addr}: {e:#}"))
            }
        };
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        {
            let mut waiters = stream.waiters.lock().expect("waiters");
            if waiters.closed {
                drop(waiters);
                self.drop_stream(addr, &stream);
                return Outcome::Unavailable(format!(
                    "the stream to the leader at {addr} closed; retry"
                ));
            }
            waiters.pending.insert(id, tx);
        }
        let req = SubmitRequest {
            channel_id: channel.to_string(),
            envelope: Some(env),
            request_id: id,
        };
        // One deadline for queueing and answering: a stalled connection must not hold
        // callers longer than a lost leader would.
        let answer = tokio::time::timeout(TIMEOUT, async {
            if stream.requests.send(req).await.is_err() {
                return None;
            }
            rx.await.ok()
        })
        .await;
        stream.waiters.lock().expect("waiters").pending.remove(&id);
        match answer {
            Err(_) => Outcome::Unavailable(format!(
                "the leader at {addr} did not answer within {TIMEOUT:?}; the transaction may still be ordered, and a retry is recognised"
            )),
            Ok(None) => {
                self.drop_stream(addr, &stream);
                Outcome::Unavailable(format!(
                    "the connection to the leader at {addr} broke; the transaction may still be ordered, and a retry is recognised"
                ))
            }
            Ok(Some(r)) if r.status == Status::Success as i32 => Outcome::Ordered { block: r.block_number },
            Ok(Some(r)) => match Status::try_from(r.status) {
                // The leader's verdict on the envelope itself.
                Ok(s @ (Status::BadRequest | Status::Forbidden | Status::RequestEntityTooLarge)) => {
                    Outcome::Refused(Rejection::new(s, r.info))
                }
                _ => Outcome::Unavailable(r.info),
            },
        }
    }

    fn drop_stream(&self, addr: &str, stream: &Arc<Stream>) {
        let mut streams = self.streams.lock().expect("streams");
        if streams.get(addr).is_some_and(|s| Arc::ptr_eq(s, stream)) {
            streams.remove(addr);
        }
    }

    fn stream(&self, transport: &Transport, addr: &str) -> anyhow::Result<Arc<Stream>> {
        let mut streams = self.streams.lock().expect("streams");
        if let Some(s) = streams.get(addr) {
            if !s.requests.is_closed() && !s.waiters.lock().expect("waiters").closed {
                return Ok(s.clone());
            }
        }
        let channel = transport.channel(addr)?;
        let (requests, rx) = mpsc::channel(QUEUE);
        let waiters: Waiters = Arc::default();
        let stream = Arc::new(Stream {
            requests,
            waiters: waiters.clone(),
        });
        streams.insert(addr.to_string(), stream.clone());
        tokio::spawn(async move {
            let mut client = ClusterClient::new(channel)
                .max_decoding_message_size(256 << 20)
                .max_encoding_message_size(256 << 20);
            match client.submit(ReceiverStream::new(rx)).await {
                Ok(resp) => {
                    let mut answers = resp.into_inner();
                    while let Ok(Some(r)) = answers.message().await {
                        if let Some(w) = waiters
                            .lock()
                            .expect("waiters")
                            .pending
                            .remove(&r.request_id)
                        {
                            let _ = w.send(r);
                        }
                    }
                }
                Err(e) => tracing::debug!(error = %e, "submit stream to the leader failed"),
            }
            // Whoever still waits learns that the stream broke (their senders drop here).
            let mut w = waiters.lock().expect("waiters");
            w.closed = true;
            w.pending.clear();
        });
        Ok(stream)
    }
}
