//! Planned leadership handoff (raft-rs `transfer_leader`): the leader picks a target (the one
//! asked for, or the most caught-up active consenter), stops proposing, lets the target catch
//! up and campaign, and answers once someone else leads, or gives up after two election
//! timeouts and leads on as before.

use std::time::{Duration, Instant};

use raft::StateRole;
use tokio::sync::oneshot;

use super::chain::Chain;
use super::transport::PeerState;

pub struct TransferRequest {
    /// A consenter id; None for the most caught-up active one.
    pub target: Option<u64>,
    pub reply: oneshot::Sender<Result<Transferred, TransferError>>,
}

/// A completed handoff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transferred {
    pub from: u64,
    pub to: u64,
    pub term: u64,
    pub elapsed: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransferError {
    #[error("this orderer does not lead the channel{}", match .0 { 0 => " and no leader is known".to_string(), id => format!("; consenter {id} does") })]
    NotLeader(u64),
    #[error("no quorum: only {active} of {total} consenters are active, and a new leader needs {needed}")]
    NoQuorum {
        active: usize,
        total: usize,
        needed: usize,
    },
    #[error("{0} is not a consenter of the channel, or is this orderer itself")]
    UnknownTarget(u64),
    #[error("consenter {0} is not active (not heard from within an election timeout)")]
    TargetInactive(u64),
    #[error("consenter {id} is too far behind (it has entry {matched}, the log starts at {first}): it needs a snapshot first")]
    Behind { id: u64, matched: u64, first: u64 },
    #[error("no other consenter is active")]
    NoCandidate,
    #[error("a leadership transfer is already under way")]
    Busy,
    #[error("consenter {target} did not take over within {timeout:?}; {}", if *still_leads { "this orderer still leads" } else { "no leader is known yet" })]
    TimedOut {
        target: u64,
        timeout: Duration,
        still_leads: bool,
    },
    #[error("{0}")]
    Halted(String),
}

pub struct PendingTransfer {
    target: u64,
    from: u64,
    started: Instant,
    deadline: Instant,
    reply: oneshot::Sender<Result<Transferred, TransferError>>,
}

impl PendingTransfer {
    pub fn fail(self, e: TransferError) {
        let _ = self.reply.send(Err(e));
    }
}

impl Chain {
    pub(super) fn on_transfer(&mut self, req: TransferRequest) {
        match self.start_transfer(req.target) {
            Ok(target) => {
                let now = Instant::now();
                tracing::info!(channel = %self.channel, node = self.id, target, "transferring leadership");
                self.transfer = Some(PendingTransfer {
                    target,
                    from: self.id,
                    started: now,
                    deadline: now + self.election_timeout() * 2,
                    reply: req.reply,
                });
            }
            Err(e) => {
                let _ = req.reply.send(Err(e));
            }
        }
    }

    /// Checks the request and starts the transfer; returns the target.
    fn start_transfer(&mut self, target: Option<u64>) -> Result<u64, TransferError> {
        if self.transfer.is_some() {
            return Err(TransferError::Busy);
        }
        let r = &self.raw.raft;
        if r.state != StateRole::Leader {
            return Err(TransferError::NotLeader(r.leader_id));
        }
        // Heard from lately, and the connection to it is up (a process just killed is still
        // "heard from" for an election timeout; its refused connection says more).
        let active: Vec<u64> =
            self.active_consenters()
                .into_iter()
                .filter(|id| {
                    *id == self.id
                        || self.addrs.get(id).is_some_and(|a| {
                            !matches!(self.transport.state(a), PeerState::Down { .. })
                        })
                })
                .collect();
        let total = self.addrs.len();
        let needed = total / 2 + 1;
        if active.len() < needed {
            return Err(TransferError::NoQuorum {
                active: active.len(),
                total,
                needed,
            });
        }
        let matched = |id: u64| r.prs().get(id).map(|p| p.matched).unwrap_or(0);
        let target = match target {
            Some(id) if id == self.id || !self.addrs.contains_key(&id) => {
                return Err(TransferError::UnknownTarget(id))
            }
            Some(id) if !active.contains(&id) => return Err(TransferError::TargetInactive(id)),
            Some(id) => id,
            None => active
                .iter()
                .copied()
                .filter(|&id| id != self.id)
                .max_by_key(|&id| (matched(id), std::cmp::Reverse(id)))
                .ok_or(TransferError::NoCandidate)?,
        };
        // Entries it lacks must still be in the log: a snapshot would take far longer than a
        // handoff may.
        let first = r.raft_log.first_index();
        if matched(target) + 1 < first {
            return Err(TransferError::Behind {
                id: target,
                matched: matched(target),
                first,
            });
        }
        self.raw.transfer_leader(target);
        Ok(target)
    }

    /// Answers the pending transfer once another consenter leads, or after its deadline.
    pub(super) fn check_transfer(&mut self) {
        let Some(t) = &self.transfer else {
            return;
        };
        let r = &self.raw.raft;
        if r.state != StateRole::Leader && r.leader_id != 0 && r.leader_id != self.id {
            let t = self.transfer.take().expect("pending transfer");
            let done = Transferred {
                from: t.from,
                to: r.leader_id,
                term: r.term,
                elapsed: t.started.elapsed(),
            };
            tracing::info!(channel = %self.channel, node = self.id, to = done.to, ms = done.elapsed.as_millis() as u64, "leadership transferred");
            let _ = t.reply.send(Ok(done));
            return;
        }
        if Instant::now() < t.deadline {
            return;
        }
        let t = self.transfer.take().expect("pending transfer");
        let still_leads = self.raw.raft.state == StateRole::Leader;
        if still_leads {
            self.raw.raft.abort_leader_transfer();
        }
        tracing::warn!(channel = %self.channel, node = self.id, target = t.target, "leadership transfer timed out");
        let e = TransferError::TimedOut {
            target: t.target,
            timeout: t.deadline - t.started,
            still_leads,
        };
        t.fail(e);
    }
}
