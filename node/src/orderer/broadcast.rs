//! Broadcast: clients stream envelopes in and get one response each, in order. The orderer
//! that receives an envelope validates it and hands it to the leader (itself or, forwarded,
//! another orderer); SUCCESS comes once the block holding it is committed by a majority.

use std::sync::Arc;

use futures::stream::FuturesOrdered;
use futures::StreamExt;
use prost::Message;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Streaming;

use super::chain::{ChainHandle, Outcome};
use super::msgprocessor::{self, Rejection};
use super::registrar::Registrar;
use crate::proto::common::{Envelope, Status};
use crate::proto::orderer::BroadcastResponse;

/// How many envelopes of one stream may wait for their blocks at once.
const PIPELINE: usize = 4096;

pub type ResponseStream = ReceiverStream<Result<BroadcastResponse, tonic::Status>>;

pub fn serve(reg: Arc<Registrar>, mut input: Streaming<Envelope>) -> ResponseStream {
    let (tx, rx) = mpsc::channel(256);
    tokio::spawn(async move {
        let mut pending = FuturesOrdered::new();
        let mut open = true;
        loop {
            tokio::select! {
                msg = input.message(), if open && pending.len() < PIPELINE => match msg {
                    Ok(Some(env)) => pending.push_back(handle(reg.clone(), env)),
                    Ok(None) => open = false,
                    Err(e) => {
                        tracing::debug!(error = %e, "broadcast stream broke");
                        open = false;
                    }
                },
                Some(resp) = pending.next(), if !pending.is_empty() => {
                    if tx.send(Ok(resp)).await.is_err() {
                        return;
                    }
                }
                else => return,
            }
        }
    });
    ReceiverStream::new(rx)
}

fn reject(tx_id: String, r: Rejection) -> BroadcastResponse {
    BroadcastResponse {
        status: r.status as i32,
        info: r.info,
        tx_id,
        block_number: 0,
    }
}

async fn handle(reg: Arc<Registrar>, env: Envelope) -> BroadcastResponse {
    let size = env.encoded_len();
    let payload = match msgprocessor::open(&env) {
        Ok(p) => p,
        Err(r) => return reject(String::new(), r),
    };
    let header = payload.header.as_ref().expect("open checks the header");
    let tx_id = header.tx_id.clone();
    let Some(chain) = reg.get(&header.channel_id) else {
        return reject(
            tx_id,
            Rejection::new(
                Status::NotFound,
                format!(
                    "channel {:?} does not exist on this orderer",
                    header.channel_id
                ),
            ),
        );
    };
    let tx_id = match msgprocessor::validate(&chain, &env, &payload, size) {
        Ok(id) => id,
        Err(r) => return reject(tx_id, r),
    };
    let outcome = order(&reg, &chain, tx_id.clone(), env).await;
    match outcome {
        Outcome::Ordered { block } => BroadcastResponse {
            status: Status::Success as i32,
            info: String::new(),
            tx_id,
            block_number: block,
        },
        Outcome::Unavailable(info) => {
            reject(tx_id, Rejection::new(Status::ServiceUnavailable, info))
        }
    }
}

/// Gets a validated envelope ordered by the current leader.
pub async fn order(
    reg: &Registrar,
    chain: &Arc<ChainHandle>,
    tx_id: String,
    env: Envelope,
) -> Outcome {
    let status = chain.status();
    if status.leader_id == 0 {
        return Outcome::Unavailable("no Raft leader".into());
    }
    if status.leader_id == chain.node_id {
        return chain
            .submit(tx_id, env.encode_to_vec())
            .await
            .unwrap_or_else(|_| Outcome::Unavailable("the chain stopped".into()));
    }
    let Some(addr) = chain.consenter_addr(status.leader_id) else {
        return Outcome::Unavailable("leader is not a known consenter".into());
    };
    reg.forwarder
        .forward(&reg.transport, &addr, chain.channel_id(), env)
        .await
}
