//! The orderer-to-orderer service: Raft messages in, and envelopes forwarded by followers to
//! this node while it leads. Only consenters of the channel, known by their TLS certificates,
//! may use it.

use std::collections::HashMap;
use std::sync::Arc;

use protobuf::Message as _;
use raft::prelude::Message;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use super::chain::{ChainHandle, Outcome};
use super::msgprocessor::SignatureCheck;
use super::pending::PendingBytes;
use super::raft_guard;
use super::registrar::Registrar;
use crate::proto::cluster::{
    cluster_server, StepRequest, StepResponse, SubmitRequest, SubmitResponse,
};
use crate::proto::common;
use crate::tls::{peer_cert, pem_to_der};

pub struct ClusterService {
    pub reg: Arc<Registrar>,
    /// Forwarded envelopes count against the node's byte budget until answered.
    pub pending: PendingBytes,
}

/// The consenter id of `chain` whose TLS certificate is `cert`.
fn consenter_of(chain: &ChainHandle, cert: &[u8]) -> Option<u64> {
    chain
        .config
        .consenters
        .iter()
        .find(|c| pem_to_der(&c.tls_cert_pem).as_deref() == Some(cert))
        .map(|c| c.id)
}

#[tonic::async_trait]
impl cluster_server::Cluster for ClusterService {
    async fn step(
        &self,
        req: Request<Streaming<StepRequest>>,
    ) -> Result<Response<StepResponse>, Status> {
        let cert =
            peer_cert(&req).ok_or_else(|| Status::unauthenticated("no client TLS certificate"))?;
        let mut stream = req.into_inner();
        // Which consenter the sender is, per channel: checked once per stream.
        let mut senders: HashMap<String, Option<u64>> = HashMap::new();
        while let Some(msg) = stream.message().await? {
            let Some(chain) = self.reg.get(&msg.channel_id) else {
                continue;
            };
            let sender = *senders
                .entry(msg.channel_id.clone())
                .or_insert_with(|| consenter_of(&chain, &cert));
            let Some(sender) = sender else {
                return Err(Status::permission_denied(format!(
                    "the sender is not a consenter of channel {}",
                    msg.channel_id
                )));
            };
            let m = Message::parse_from_bytes(&msg.message).map_err(|e| {
                Status::invalid_argument(format!("raft message does not decode: {e}"))
            })?;
            if m.from != sender {
                return Err(Status::permission_denied(
                    "raft message sender does not match its TLS certificate",
                ));
            }
            chain.contacts.touch(sender);
            if let Err(r) = raft_guard::check_addressing(&m, chain.node_id) {
                raft_guard::count(&msg.channel_id, sender, &r);
                continue;
            }
            chain.step(m, msg.message.len());
        }
        Ok(Response::new(StepResponse {}))
    }

    type SubmitStream = ReceiverStream<Result<SubmitResponse, Status>>;

    async fn submit(
        &self,
        req: Request<Streaming<SubmitRequest>>,
    ) -> Result<Response<Self::SubmitStream>, Status> {
        let cert =
            peer_cert(&req).ok_or_else(|| Status::unauthenticated("no client TLS certificate"))?;
        let mut input = req.into_inner();
        let (tx, rx) = mpsc::channel(1024);
        let (reg, pending) = (self.reg.clone(), self.pending.clone());
        tokio::spawn(async move {
            // Which channels the sender is a consenter of: checked once per stream, cached
            // only for channels that exist here.
            let mut allowed: HashMap<String, bool> = HashMap::new();
            while let Ok(Some(req)) = input.message().await {
                let id = req.request_id;
                let Some(chain) = reg.get(&req.channel_id) else {
                    let answer = refusal(
                        id,
                        format!("channel {:?} does not exist here", req.channel_id),
                    );
                    if tx.send(Ok(answer)).await.is_err() {
                        return;
                    }
                    continue;
                };
                let ok = *allowed
                    .entry(req.channel_id.clone())
                    .or_insert_with(|| consenter_of(&chain, &cert).is_some());
                if !ok {
                    // Not a consenter: nothing more from this stream.
                    let info = format!(
                        "only consenters of channel {} may forward transactions",
                        req.channel_id
                    );
                    let _ = tx.send(Err(Status::permission_denied(info))).await;
                    return;
                }
                // The next request is read only once this one fits in the budget.
                let held = pending.reserve(prost::Message::encoded_len(&req)).await;
                let tx = tx.clone();
                tokio::spawn(async move {
                    let answer = order_forwarded(&chain, id, req.envelope).await;
                    drop(held);
                    let _ = tx.send(Ok(answer)).await;
                });
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

fn refusal(request_id: u64, info: String) -> SubmitResponse {
    SubmitResponse {
        status: common::Status::ServiceUnavailable as i32,
        info,
        block_number: 0,
        request_id,
    }
}

/// Orders an envelope a follower forwarded while this node leads. The leader validates it
/// fully, the creator's signature included, as its own Broadcast does: a consenter is not
/// trusted with that, and followers leave the signature to the leader.
async fn order_forwarded(
    chain: &ChainHandle,
    request_id: u64,
    env: Option<common::Envelope>,
) -> SubmitResponse {
    let Some(env) = env else {
        return refusal(request_id, "no envelope".into());
    };
    let size = prost::Message::encoded_len(&env);
    let validated = super::msgprocessor::open(&env).and_then(|payload| {
        super::msgprocessor::validate(chain, &env, &payload, size, SignatureCheck::Here)
    });
    let tx_id = match validated {
        Ok(v) => v.tx_id,
        Err(r) => {
            return SubmitResponse {
                status: r.status as i32,
                info: format!("refused by the leader: {}", r.info),
                block_number: 0,
                request_id,
            }
        }
    };
    if chain.status().leader_id != chain.node_id {
        return refusal(
            request_id,
            "not the leader (leadership moved); retry".into(),
        );
    }
    let outcome = chain
        .submit(tx_id, prost::Message::encode_to_vec(&env))
        .await
        .unwrap_or_else(|_| Outcome::Unavailable("the chain stopped".into()));
    match outcome {
        Outcome::Ordered { block } => SubmitResponse {
            status: common::Status::Success as i32,
            info: String::new(),
            block_number: block,
            request_id,
        },
        Outcome::Unavailable(info) => refusal(request_id, info),
        // The chain itself refuses nothing: validation came first.
        Outcome::Refused(r) => SubmitResponse {
            status: r.status as i32,
            info: r.info,
            block_number: 0,
            request_id,
        },
    }
}
