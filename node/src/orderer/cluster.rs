//! The orderer-to-orderer service: Raft messages in, and envelopes forwarded by followers to
//! this node while it leads. Only consenters of the channel, known by their TLS certificates,
//! may use it.

use std::collections::HashMap;
use std::sync::Arc;

use protobuf::Message as _;
use raft::prelude::Message;
use tonic::{Request, Response, Status, Streaming};

use super::chain::{ChainHandle, Outcome};
use super::registrar::Registrar;
use crate::proto::cluster::{
    cluster_server, StepRequest, StepResponse, SubmitRequest, SubmitResponse,
};
use crate::proto::common;
use crate::tls::{peer_cert, pem_to_der};

pub struct ClusterService {
    pub reg: Arc<Registrar>,
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
            chain.step(m);
        }
        Ok(Response::new(StepResponse {}))
    }

    async fn submit(
        &self,
        req: Request<SubmitRequest>,
    ) -> Result<Response<SubmitResponse>, Status> {
        let cert =
            peer_cert(&req).ok_or_else(|| Status::unauthenticated("no client TLS certificate"))?;
        let req = req.into_inner();
        let chain = self.reg.get(&req.channel_id).ok_or_else(|| {
            Status::not_found(format!("channel {} does not exist", req.channel_id))
        })?;
        if consenter_of(&chain, &cert).is_none() {
            return Err(Status::permission_denied(
                "only consenters of the channel may forward transactions",
            ));
        }
        let env = req
            .envelope
            .ok_or_else(|| Status::invalid_argument("no envelope"))?;
        let payload =
            super::msgprocessor::open(&env).map_err(|r| Status::invalid_argument(r.info))?;
        let tx_id = payload.header.map(|h| h.tx_id).unwrap_or_default();
        if chain.status().leader_id != chain.node_id {
            return Ok(Response::new(SubmitResponse {
                status: common::Status::ServiceUnavailable as i32,
                info: "not the leader (leadership moved); retry".into(),
                block_number: 0,
            }));
        }
        let outcome = chain
            .submit(tx_id, prost::Message::encode_to_vec(&env))
            .await
            .unwrap_or_else(|_| Outcome::Unavailable("the chain stopped".into()));
        Ok(Response::new(match outcome {
            Outcome::Ordered { block } => SubmitResponse {
                status: common::Status::Success as i32,
                info: String::new(),
                block_number: block,
            },
            Outcome::Unavailable(info) => SubmitResponse {
                status: common::Status::ServiceUnavailable as i32,
                info,
                block_number: 0,
            },
        }))
    }
}
