//! Broadcast: clients stream envelopes in and get one response each, in order. The orderer
//! that receives an envelope validates it and hands it to the leader (itself or, forwarded,
//! another orderer); SUCCESS comes once the block holding it is committed by a majority.
//! A follower leaves the creator's signature to the leader, which checks every envelope it
//! orders, and passes the leader's refusal on.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use futures::stream::FuturesOrdered;
use futures::StreamExt;
use prost::Message;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Streaming;

use super::chain::{ChainHandle, Outcome};
use super::msgprocessor::{self, Rejection, SignatureCheck, Validated};
use super::pending::{PendingBytes, Reservation};
use super::registrar::Registrar;
use super::transport::PeerState;
use crate::proto::common::{Envelope, Status};
use crate::proto::orderer::BroadcastResponse;

/// How many envelopes of one stream may wait for their blocks at once.
const PIPELINE: usize = 4096;

pub type ResponseStream = ReceiverStream<Result<BroadcastResponse, tonic::Status>>;

type Reserving = Pin<Box<dyn Future<Output = Reservation> + Send>>;

pub fn serve(
    reg: Arc<Registrar>,
    budget: PendingBytes,
    mut input: Streaming<Envelope>,
) -> ResponseStream {
    let (tx, rx) = mpsc::channel(256);
    tokio::spawn(async move {
        let mut pending = FuturesOrdered::new();
        let mut open = true;
        // The envelope read last, while it waits for room in the node's byte budget: the
        // stream is not read further meanwhile, and the answers already due still go out.
        let mut next: Option<(Envelope, Reserving)> = None;
        loop {
            tokio::select! {
                msg = input.message(), if open && next.is_none() && pending.len() < PIPELINE => match msg {
                    Ok(Some(env)) => {
                        let (budget, size) = (budget.clone(), env.encoded_len());
                        next = Some((env, Box::pin(async move { budget.reserve(size).await })));
                    }
                    Ok(None) => open = false,
                    Err(e) => {
                        tracing::debug!(error = %e, "broadcast stream broke");
                        open = false;
                    }
                },
                held = async { next.as_mut().expect("guarded").1.as_mut().await }, if next.is_some() => {
                    let (env, _) = next.take().expect("guarded");
                    pending.push_back(handle(reg.clone(), env, held));
                }
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

/// Answers one envelope; its bytes stay `held` in the budget until then.
async fn handle(reg: Arc<Registrar>, env: Envelope, held: Reservation) -> BroadcastResponse {
    let _held = held;
    // Counted until answered: a stopping orderer answers what it took before it exits.
    let Some(_inflight) = reg.admit_broadcast() else {
        return reject(
            String::new(),
            Rejection::new(
                Status::ServiceUnavailable,
                format!("orderer {} is stopping; send to another orderer", reg.name),
            ),
        );
    };
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
    let m = crate::operations::metrics();
    let timer = std::time::Instant::now();
    let status = chain.status();
    let signature = if status.leader_id != 0 && status.leader_id != chain.node_id {
        SignatureCheck::ByLeader
    } else {
        SignatureCheck::Here
    };
    let validated = msgprocessor::validate(&chain, &env, &payload, size, signature);
    let verdict = if validated.is_ok() {
        "SUCCESS"
    } else {
        "BAD_REQUEST"
    };
    m.broadcast_validate_duration
        .with_label_values(&[chain.channel_id(), "ENDORSER_TRANSACTION", verdict])
        .observe(timer.elapsed().as_secs_f64());
    let mut validated = match validated {
        Ok(v) => v,
        Err(r) => {
            count(&chain, r.status);
            return reject(tx_id, r);
        }
    };
    let outcome = order(&reg, &chain, &mut validated, env).await;
    count(
        &chain,
        match &outcome {
            Outcome::Ordered { .. } => Status::Success,
            Outcome::Unavailable(_) => Status::ServiceUnavailable,
            Outcome::Refused(r) => r.status,
        },
    );
    let tx_id = validated.tx_id;
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
        Outcome::Refused(r) => reject(tx_id, r),
    }
}

fn count(chain: &ChainHandle, status: Status) {
    crate::operations::metrics()
        .broadcast_processed_count
        .with_label_values(&[
            chain.channel_id(),
            "ENDORSER_TRANSACTION",
            status.as_str_name(),
        ])
        .inc();
}

/// Gets a validated envelope ordered by the current leader, riding through leadership
/// changes: while a majority of consenters is reachable (a planned handoff, an election
/// about to finish), an envelope refused because leadership moved is sent again, the same
/// envelope (the leader orders a tx id once), for up to two election timeouts. Without a
/// reachable majority the answer is at once.
pub async fn order(
    reg: &Registrar,
    chain: &Arc<ChainHandle>,
    validated: &mut Validated,
    env: Envelope,
) -> Outcome {
    let deadline = tokio::time::Instant::now() + chain.election_timeout() * 2;
    let mut status = chain.watch_status();
    loop {
        status.borrow_and_update();
        let outcome = order_once(reg, chain, validated, &env).await;
        if matches!(outcome, Outcome::Ordered { .. } | Outcome::Refused(_))
            || tokio::time::Instant::now() >= deadline
            || !quorum_reachable(reg, chain)
        {
            return outcome;
        }
        // Try again once the chain's view changes (a new leader), or after a short pause.
        let pause = (tokio::time::Instant::now() + RETRY_PAUSE).min(deadline);
        if let Ok(Err(_)) = tokio::time::timeout_at(pause, status.changed()).await {
            return outcome; // The chain is gone: nothing will change.
        }
    }
}

/// The longest pause between two attempts to order one envelope.
const RETRY_PAUSE: std::time::Duration = std::time::Duration::from_millis(50);

/// The chain runs and a majority of its consenters (this one included) has a live
/// connection: an election, if one is needed, can finish.
fn quorum_reachable(reg: &Registrar, chain: &ChainHandle) -> bool {
    if chain.status().is_halted() {
        return false;
    }
    let consenters = &chain.config.consenters;
    let up = consenters
        .iter()
        .filter(|c| {
            c.id == chain.node_id
                || !matches!(
                    reg.transport.state(&format!("{}:{}", c.host, c.port)),
                    PeerState::Down { .. }
                )
        })
        .count();
    up > consenters.len() / 2
}

async fn order_once(
    reg: &Registrar,
    chain: &Arc<ChainHandle>,
    validated: &mut Validated,
    env: &Envelope,
) -> Outcome {
    let status = chain.status();
    if status.is_halted() {
        return Outcome::Unavailable(format!(
            "channel {} is halted on orderer {} ({}); send to another orderer",
            chain.channel_id(),
            reg.name,
            status.halt_error
        ));
    }
    if status.leader_id == 0 {
        return Outcome::Unavailable("no Raft leader".into());
    }
    if status.leader_id == chain.node_id {
        if let Err(r) = validated.check_signature(env) {
            return Outcome::Refused(r);
        }
        return chain
            .submit(validated.tx_id.clone(), env.encode_to_vec())
            .await
            .unwrap_or_else(|_| Outcome::Unavailable("the chain stopped".into()));
    }
    let Some(addr) = chain.consenter_addr(status.leader_id) else {
        return Outcome::Unavailable("leader is not a known consenter".into());
    };
    reg.forwarder
        .forward(&reg.transport, &addr, chain.channel_id(), env.clone())
        .await
}
