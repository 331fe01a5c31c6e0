//! One channel's chain: a raft-rs node on a thread of its own that takes submissions, cuts
//! and proposes blocks while it leads, and applies committed blocks to the ledger.
//!
//! The async gRPC side talks to the thread through [`ChainHandle`]: events in, status out.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context;
use raft::prelude::{Message, MessageType};
use raft::{RawNode, StateRole};
use redb::Database;
use tokio::sync::{oneshot, watch};

use super::blockcreator::BlockCreator;
use super::blockcutter::{BlockCutter, Pending};
use super::handoff::{PendingTransfer, TransferRequest};
use super::inbox::{RaftInbox, MAX_QUEUED_BYTES};
use super::status::{ChainStatus, Contacts};
use super::storage::RaftStorage;
use super::transport::{PeerState, Transport};
use crate::identity::{MspSet, Policy, SigningIdentity};
use crate::ledger::{BlockStore, BlockVerifier};
use crate::operations::metrics::ChainGauges;
use crate::proto::admin::Role;
use crate::proto::common::{BatchOptions, ChannelConfig, RaftOptions};

/// redb's page cache per channel (its default is 1 GiB): recent blocks and the Raft log's
/// tail are what is read back.
const LEDGER_CACHE: usize = 32 << 20;

/// How often a follower looks at its connection to the leader.
const LEADER_CHECK: Duration = Duration::from_millis(20);

pub enum Event {
    /// A message from another consenter and its size on the wire (see `inbox`).
    Step(Box<Message>, usize),
    Submit(Submission),
    Transfer(TransferRequest),
    Stop,
}

pub struct Submission {
    pub tx_id: String,
    pub envelope: Vec<u8>,
    pub reply: oneshot::Sender<Outcome>,
}

/// How a submission ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// In a block that a majority has persisted.
    Ordered { block: u64 },
    /// Not ordered (no leader, leadership lost, not the leader): safe to retry, because
    /// a transaction id is ordered at most once.
    Unavailable(String),
    /// Refused by the leader's validation of a forwarded envelope: the same on every
    /// orderer, so not worth retrying.
    Refused(super::msgprocessor::Rejection),
}

/// What a chain uses of the orderer it runs on.
#[derive(Clone)]
pub struct OrdererParts {
    pub name: String,
    pub transport: Arc<Transport>,
    pub runtime: tokio::runtime::Handle,
    /// Signs the blocks the chain creates while it leads.
    pub signer: Arc<SigningIdentity>,
}

/// The async side's view of a running chain.
pub struct ChainHandle {
    pub config: ChannelConfig,
    pub node_id: u64,
    pub node_name: String,
    pub store: Arc<BlockStore>,
    pub msps: MspSet,
    pub writers: Policy,
    pub readers: Policy,
    pub contacts: Contacts,
    events: mpsc::Sender<Event>,
    inbox: Arc<RaftInbox>,
    status: watch::Receiver<ChainStatus>,
    election_timeout: Duration,
    stopping: Arc<AtomicBool>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl ChainHandle {
    /// Opens (or creates) the chain's storage under `dir` and starts its thread, as consenter
    /// `node_id` of the channel on orderer `node`.
    pub fn start(
        config: ChannelConfig,
        node_id: u64,
        node: &OrdererParts,
        dir: &std::path::Path,
        genesis: Option<&crate::proto::common::Block>,
    ) -> anyhow::Result<Arc<Self>> {
        let OrdererParts {
            name: node_name,
            transport,
            runtime,
            signer,
        } = node.clone();
        let msps = MspSet::new(&config.organizations)?;
        let verifier = Arc::new(
            BlockVerifier::new(&config)
                .with_context(|| format!("channel {}", config.channel_id))?,
        );
        let policies = config.policies.clone().unwrap_or_default();
        let writers: Policy = policies
            .writers
            .parse()
            .with_context(|| format!("channel {} writers policy", config.channel_id))?;
        let readers: Policy = policies
            .readers
            .parse()
            .with_context(|| format!("channel {} readers policy", config.channel_id))?;
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let db = Arc::new(
            Database::builder()
                .set_cache_size(LEDGER_CACHE)
                .create(dir.join("ledger.redb"))
                .with_context(|| format!("cannot open ledger in {}", dir.display()))?,
        );
        let store = Arc::new(BlockStore::open(db.clone())?);
        if store.height() == 0 {
            let genesis = genesis.context("channel has no ledger and no genesis block")?;
            super::apply::write_genesis(&store, &db, genesis)?;
        }
        let voters: Vec<u64> = config.consenters.iter().map(|c| c.id).collect();
        let (storage, applied) = RaftStorage::open(db, &voters)?;
        let raft_opts = config.raft.unwrap_or_default();
        let raft_cfg = raft::Config {
            id: node_id,
            election_tick: raft_opts.election_tick as usize,
            heartbeat_tick: raft_opts.heartbeat_tick as usize,
            applied,
            max_size_per_msg: 4 << 20,
            max_inflight_msgs: 256,
            check_quorum: true,
            pre_vote: true,
            ..Default::default()
        };
        raft_cfg.validate().context("invalid Raft options")?;
        let logger = slog::Logger::root(slog::Discard, slog::o!());
        let raw = RawNode::new(&raft_cfg, storage, &logger)?;

        let (events_tx, events_rx) = mpsc::channel();
        let inbox = Arc::new(RaftInbox::new(MAX_QUEUED_BYTES));
        let stopping = Arc::new(AtomicBool::new(false));
        let (status_tx, status_rx) = watch::channel(ChainStatus::default());
        let status_tx = Arc::new(status_tx);
        let contacts = Contacts::default();
        let addrs: HashMap<u64, String> = config
            .consenters
            .iter()
            .map(|c| (c.id, format!("{}:{}", c.host, c.port)))
            .collect();
        // Dials to the other consenters (Raft, forwarding, block pulling) accept only the
        // certificates this configuration lists for them.
        for c in &config.consenters {
            transport
                .pin(&addrs[&c.id], &c.tls_cert_pem)
                .with_context(|| format!("channel {} consenter {}", config.channel_id, c.name))?;
        }
        let chain = Chain {
            inbox: inbox.clone(),
            channel: config.channel_id.clone(),
            id: node_id,
            raw,
            store: store.clone(),
            addrs,
            transport,
            runtime,
            raft_opts,
            cutter: BlockCutter::new(&config.batch.unwrap_or_default()),
            creator: None,
            leader_start_index: 0,
            ready_batches: VecDeque::new(),
            inflight: VecDeque::new(),
            waiters: HashMap::new(),
            queued: HashSet::new(),
            orphans: Vec::new(),
            status_tx: status_tx.clone(),
            contacts: contacts.clone(),
            last_leader: 0,
            last_role: StateRole::Follower,
            bytes_since_snapshot: 0,
            recent_heights: VecDeque::new(),
            stopping: stopping.clone(),
            fast_campaign_term: 0,
            next_leader_check: Instant::now(),
            gauges: ChainGauges::new(&config.channel_id),
            transfer: None,
            signer,
            verifier,
        };
        let election_timeout = chain.election_timeout();
        let channel = config.channel_id.clone();
        let halted_inbox = inbox.clone();
        let thread = std::thread::Builder::new()
            .name(format!("chain-{}", config.channel_id))
            .spawn(move || {
                let reason = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    chain.run(&events_rx)
                })) {
                    Ok(None) => return,
                    Ok(Some(reason)) => reason,
                    // The chain (and the waiters it held) is gone; its status must not stay.
                    Err(panic) => {
                        let reason = format!("the chain's thread panicked: {}", panic_text(&panic));
                        tracing::error!(channel = %channel, "{reason}; the channel is halted");
                        let gauges = ChainGauges::new(&channel);
                        gauges.halted.set(1);
                        gauges.is_leader.set(0);
                        status_tx.send_modify(|s| s.halt(&reason));
                        reason
                    }
                };
                drain_halted(&events_rx, &halted_inbox, &channel, &reason);
            })?;
        Ok(Arc::new(Self {
            config,
            node_id,
            node_name,
            store,
            msps,
            writers,
            readers,
            contacts,
            events: events_tx,
            inbox,
            status: status_rx,
            election_timeout,
            stopping,
            thread: Mutex::new(Some(thread)),
        }))
    }

    pub fn channel_id(&self) -> &str {
        &self.config.channel_id
    }

    pub fn status(&self) -> ChainStatus {
        self.status.borrow().clone()
    }

    pub fn watch_status(&self) -> watch::Receiver<ChainStatus> {
        self.status.clone()
    }

    /// The channel's election timeout (tickInterval × electionTick).
    pub fn election_timeout(&self) -> Duration {
        self.election_timeout
    }

    pub fn batch_options(&self) -> BatchOptions {
        self.config.batch.unwrap_or_default()
    }

    /// A consenter's name (e.g. `orderer3`).
    pub fn consenter_name(&self, id: u64) -> Option<&str> {
        self.config
            .consenters
            .iter()
            .find(|c| c.id == id)
            .map(|c| c.name.as_str())
    }

    pub fn consenter_addr(&self, id: u64) -> Option<String> {
        self.config
            .consenters
            .iter()
            .find(|c| c.id == id)
            .map(|c| format!("{}:{}", c.host, c.port))
    }

    /// Queues a Raft message of `size` bytes for the chain's thread; dropped (and counted)
    /// while the chain's inbox is full.
    pub fn step(&self, msg: Message, size: usize) {
        if !self.inbox.admit(size) {
            crate::operations::metrics::metrics()
                .cluster_dropped_messages
                .with_label_values(&[&self.config.channel_id])
                .inc();
            return;
        }
        if self.events.send(Event::Step(Box::new(msg), size)).is_err() {
            self.inbox.taken(size);
        }
    }

    /// Hands a validated envelope to the chain; the answer comes once it is ordered or cannot be.
    pub fn submit(&self, tx_id: String, envelope: Vec<u8>) -> oneshot::Receiver<Outcome> {
        let (reply, rx) = oneshot::channel();
        if let Err(mpsc::SendError(Event::Submit(s))) =
            self.events.send(Event::Submit(Submission {
                tx_id,
                envelope,
                reply,
            }))
        {
            let _ = s
                .reply
                .send(Outcome::Unavailable("channel is shutting down".into()));
        }
        rx
    }

    /// Asks the chain to hand its leadership over; the answer comes once another consenter
    /// leads, or with the reason it cannot.
    pub fn transfer_leadership(
        &self,
        target: Option<u64>,
    ) -> oneshot::Receiver<Result<super::handoff::Transferred, super::handoff::TransferError>> {
        let (reply, rx) = oneshot::channel();
        if let Err(mpsc::SendError(Event::Transfer(t))) = self
            .events
            .send(Event::Transfer(TransferRequest { target, reply }))
        {
            let _ = t.reply.send(Err(super::handoff::TransferError::Halted(
                "the chain has stopped".into(),
            )));
        }
        rx
    }

    pub fn stop(&self) {
        self.stopping.store(true, Ordering::Relaxed);
        let _ = self.events.send(Event::Stop);
        if let Some(t) = self.thread.lock().expect("thread").take() {
            let _ = t.join();
        }
    }
}

/// The chain's thread state.
pub(super) struct Chain {
    pub(super) channel: String,
    pub(super) id: u64,
    pub(super) raw: RawNode<RaftStorage>,
    pub(super) store: Arc<BlockStore>,
    pub(super) addrs: HashMap<u64, String>,
    /// Shared with the handle: what `Event::Step`s in the queue weigh.
    inbox: Arc<RaftInbox>,
    pub(super) transport: Arc<Transport>,
    pub(super) runtime: tokio::runtime::Handle,
    pub(super) raft_opts: RaftOptions,
    cutter: BlockCutter,
    /// Set while leading, once the log of earlier terms is applied.
    creator: Option<BlockCreator>,
    leader_start_index: u64,
    /// Cut batches waiting for room among the in-flight blocks.
    ready_batches: VecDeque<Vec<Pending>>,
    /// Numbers of proposed blocks not yet applied.
    pub(super) inflight: VecDeque<u64>,
    pub(super) waiters: HashMap<String, Vec<oneshot::Sender<Outcome>>>,
    /// Tx ids cut or proposed by this leader and not yet applied.
    pub(super) queued: HashSet<String>,
    /// Tx ids proposed before leadership was lost: given up on after a deadline.
    orphans: Vec<(Instant, Vec<String>)>,
    status_tx: Arc<watch::Sender<ChainStatus>>,
    pub(super) contacts: Contacts,
    last_leader: u64,
    last_role: StateRole,
    pub(super) bytes_since_snapshot: u64,
    /// (raft index, ledger height after it) of the last applied entries.
    pub(super) recent_heights: VecDeque<(u64, u64)>,
    /// Set by [`ChainHandle::stop`]: long waits (block pulling) give up.
    pub(super) stopping: Arc<AtomicBool>,
    fast_campaign_term: u64,
    next_leader_check: Instant,
    pub(super) gauges: ChainGauges,
    /// A leadership transfer under way (this node leads and hands over).
    pub(super) transfer: Option<PendingTransfer>,
    /// Signs the blocks this orderer creates while it leads.
    pub(super) signer: Arc<SigningIdentity>,
    /// Checks blocks pulled from other orderers to catch up.
    pub(super) verifier: Arc<BlockVerifier>,
}

/// The text of a caught panic.
fn panic_text(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "unknown panic".into())
}

/// A halted chain's thread answers until the node stops: submissions and transfers are
/// refused with the reason, Raft messages dropped.
fn drain_halted(events: &mpsc::Receiver<Event>, inbox: &RaftInbox, channel: &str, reason: &str) {
    let why =
        format!("channel {channel} is halted on this orderer ({reason}); use another orderer");
    for ev in events.iter() {
        match ev {
            Event::Submit(s) => {
                let _ = s.reply.send(Outcome::Unavailable(why.clone()));
            }
            Event::Transfer(t) => {
                let _ = t
                    .reply
                    .send(Err(super::handoff::TransferError::Halted(why.clone())));
            }
            Event::Step(_, size) => inbox.taken(size),
            Event::Stop => return,
        }
    }
}

impl Chain {
    fn tick_interval(&self) -> Duration {
        Duration::from_millis(self.raft_opts.tick_interval_ms.max(1))
    }

    pub(super) fn election_timeout(&self) -> Duration {
        self.tick_interval() * self.raft_opts.election_tick.max(1)
    }

    /// Runs until stopped (None) or halted (the reason).
    fn run(mut self, events: &mpsc::Receiver<Event>) -> Option<String> {
        let tick = self.tick_interval();
        let mut next_tick = Instant::now() + tick;
        self.publish_status();
        loop {
            let now = Instant::now();
            // Checks for a dead leader run between ticks too: ticks can be 500ms apart.
            let mut wake = next_tick.min(now + LEADER_CHECK);
            if let Some(d) = self.cutter.deadline().filter(|_| self.creator.is_some()) {
                wake = wake.min(d);
            }
            match events.recv_timeout(wake.saturating_duration_since(now)) {
                Ok(ev) => {
                    if !self.handle(ev) {
                        break;
                    }
                    // Take everything queued before one Ready: one fsync covers many.
                    for ev in events.try_iter().take(50_000) {
                        if !self.handle(ev) {
                            self.shutdown();
                            return None;
                        }
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            let now = Instant::now();
            if now >= next_tick {
                self.raw.tick();
                next_tick += tick;
                if next_tick < now {
                    next_tick = now + tick;
                }
                self.on_tick();
            }
            if now >= self.next_leader_check {
                self.next_leader_check = now + LEADER_CHECK;
                self.maybe_fast_campaign();
            }
            self.cut_if_due(now);
            self.propose_batches();
            if let Err(e) = self.on_ready() {
                // Asked to stop while pulling blocks: a stop, not a failure.
                if self.stopping.load(Ordering::Relaxed) {
                    self.shutdown();
                    return None;
                }
                let reason = format!("storage failure: {e:#}");
                tracing::error!(channel = %self.channel, "{reason}; the channel is halted");
                self.halt(&reason);
                return Some(reason);
            }
            self.on_role_change();
            self.check_transfer();
            self.cut_if_due(Instant::now());
            self.propose_batches();
            self.publish_status();
        }
        self.shutdown();
        None
    }

    fn shutdown(&mut self) {
        self.fail_waiters("orderer is shutting down");
    }

    fn fail_waiters(&mut self, why: &str) {
        for (_, ws) in self.waiters.drain() {
            for w in ws {
                let _ = w.send(Outcome::Unavailable(why.to_string()));
            }
        }
        if let Some(t) = self.transfer.take() {
            t.fail(super::handoff::TransferError::Halted(why.to_string()));
        }
    }

    /// Stops taking part in Raft and says why, in status and metrics. What was submitted and
    /// not yet answered is refused; what a majority persisted stays with the others.
    fn halt(&mut self, reason: &str) {
        self.fail_waiters(&format!(
            "channel {} halted on this orderer ({reason}); retry on another orderer",
            self.channel
        ));
        self.gauges.halted.set(1);
        self.gauges.is_leader.set(0);
        self.status_tx.send_modify(|s| s.halt(reason));
    }

    /// False to stop.
    fn handle(&mut self, ev: Event) -> bool {
        match ev {
            Event::Step(m, size) => {
                self.inbox.taken(size);
                let from = m.from;
                let (leader, last) = (self.raw.raft.leader_id, self.raw.raft.raft_log.last_index());
                let checked =
                    super::raft_guard::check_against_state(&m, leader, last).and_then(|()| {
                        if m.get_msg_type() != raft::prelude::MessageType::MsgSnapshot {
                            return Ok(());
                        }
                        let consenters: Vec<u64> = self.addrs.keys().copied().collect();
                        super::raft_guard::check_snapshot(&m, leader, &consenters)
                    });
                if let Err(r) = checked {
                    super::raft_guard::count(&self.channel, from, &r);
                    return true;
                }
                if let Err(e) = self.raw.step(*m) {
                    tracing::debug!(channel = %self.channel, from, error = %e, "raft step failed");
                }
            }
            Event::Submit(s) => self.on_submit(s),
            Event::Transfer(t) => self.on_transfer(t),
            Event::Stop => return false,
        }
        true
    }

    fn on_submit(&mut self, s: Submission) {
        if self.raw.raft.state != StateRole::Leader {
            let _ = s.reply.send(Outcome::Unavailable(self.no_leader_reason()));
            return;
        }
        if let Some(block) = self.store.block_of_tx(&s.tx_id) {
            let _ = s.reply.send(Outcome::Ordered { block });
            return;
        }
        self.waiters
            .entry(s.tx_id.clone())
            .or_default()
            .push(s.reply);
        if !self.queued.insert(s.tx_id.clone()) {
            return; // Already on its way: this caller waits for the same outcome.
        }
        let batches = self.cutter.ordered(Pending {
            tx_id: s.tx_id,
            envelope: s.envelope,
        });
        self.ready_batches.extend(batches);
    }

    pub(super) fn no_leader_reason(&self) -> String {
        match self.raw.raft.leader_id {
            0 => "no Raft leader".to_string(),
            id => format!("not the leader; the leader is {id}"),
        }
    }

    /// Cuts the pending batch when its batchTimeout is up, or at once when no block is in
    /// flight, so that batches grow only while the previous block replicates.
    fn cut_if_due(&mut self, now: Instant) {
        let idle = self.inflight.is_empty() && self.ready_batches.is_empty();
        if self.creator.is_some()
            && !self.cutter.is_empty()
            && (idle || self.cutter.deadline().is_some_and(|d| d <= now))
        {
            let batch = self.cutter.cut();
            self.ready_batches.push_back(batch);
        }
    }

    /// Proposes cut batches as blocks while there is room among in-flight blocks.
    fn propose_batches(&mut self) {
        // raft-rs drops proposals while leadership is being handed over: hold the batches;
        // the new leader gets them through the submitters' retries.
        if self.raw.raft.lead_transferee.is_some() {
            return;
        }
        let max = self.raft_opts.max_inflight_blocks.max(1) as usize;
        while self.inflight.len() < max {
            let Some(creator) = self.creator.as_mut() else {
                return;
            };
            let Some(batch) = self.ready_batches.pop_front() else {
                return;
            };
            // A transaction cut before an earlier term's block holding it was applied (a
            // client retried during a leader change) must not be ordered twice. With a
            // creator, everything before this term is applied, so the window is complete.
            let (batch_ids, txs): (Vec<String>, Vec<Vec<u8>>) = batch
                .into_iter()
                .filter(|p| self.store.block_of_tx(&p.tx_id).is_none())
                .map(|p| (p.tx_id, p.envelope))
                .unzip();
            if txs.is_empty() {
                continue;
            }
            let ids: Vec<String> = batch_ids;
            let proposed = creator.create(txs).and_then(|(block, bytes)| {
                let number = block.header.as_ref().map(|h| h.number).unwrap_or_default();
                self.raw.propose(Vec::new(), bytes)?;
                Ok(number)
            });
            let number = match proposed {
                Ok(number) => number,
                Err(e) => {
                    self.gauges.proposal_failures.inc();
                    tracing::warn!(channel = %self.channel, error = format!("{e:#}"), "proposal dropped");
                    for id in ids {
                        self.queued.remove(&id);
                        for w in self.waiters.remove(&id).unwrap_or_default() {
                            let _ = w.send(Outcome::Unavailable("proposal dropped; retry".into()));
                        }
                    }
                    // The creator has moved past a block that will not exist: start again once
                    // everything proposed so far is applied.
                    self.lose_leadership("proposal dropped; retry");
                    self.leader_start_index = self.raw.raft.raft_log.last_index();
                    return;
                }
            };
            self.inflight.push_back(number);
        }
    }

    fn on_tick(&mut self) {
        let now = Instant::now();
        let mut expired = Vec::new();
        self.orphans.retain(|(deadline, ids)| {
            if *deadline <= now {
                expired.extend(ids.iter().cloned());
                false
            } else {
                true
            }
        });
        for id in expired {
            self.queued.remove(&id);
            for w in self.waiters.remove(&id).unwrap_or_default() {
                let _ = w.send(Outcome::Unavailable(
                    "leadership changed before the transaction was committed; retry (a transaction is ordered at most once)".into(),
                ));
            }
        }
    }

    /// A follower whose connection to the leader broke, and whose dials to the leader are
    /// refused (nothing listens there: the process is gone), does not wait out the election
    /// timeout: it campaigns at once, as a leadership transfer, so that peers still in the dead
    /// leader's lease vote.
    fn maybe_fast_campaign(&mut self) {
        let leader = self.raw.raft.leader_id;
        let term = self.raw.raft.term;
        if self.raw.raft.state != StateRole::Follower
            || leader == 0
            || self.fast_campaign_term == term
        {
            return;
        }
        let Some(addr) = self.addrs.get(&leader) else {
            return;
        };
        let PeerState::Down { since, refused } = self.transport.state(addr) else {
            return;
        };
        // Still hearing from it: the outage is one-sided or over.
        if self
            .contacts
            .since(leader)
            .is_some_and(|d| d < since.elapsed())
        {
            return;
        }
        let mut others: Vec<u64> = self
            .addrs
            .keys()
            .copied()
            .filter(|&id| id != leader)
            .collect();
        others.sort_unstable();
        let rank = others.iter().position(|&id| id == self.id).unwrap_or(0) as u32;
        // Only a refused dial proves the leader's process is gone. A stream that merely broke
        // (a partition, a reset) is left to Raft's own pre-vote election: a transfer-style
        // campaign skips pre-vote and the leader lease, and could depose a live leader.
        if !refused {
            return;
        }
        // Followers take turns so that votes do not split.
        // The turn needs to outlast one round of votes, not a Raft tick.
        let turn = (self.tick_interval() * 2).min(Duration::from_millis(100));
        let wait = turn * rank;
        if since.elapsed() < wait {
            return;
        }
        self.fast_campaign_term = term;
        tracing::info!(channel = %self.channel, node = self.id, leader, "connection to the leader is broken; campaigning");
        let mut m = Message::default();
        m.set_msg_type(MessageType::MsgTimeoutNow);
        m.from = leader;
        m.to = self.id;
        let _ = self.raw.step(m);
    }

    fn on_role_change(&mut self) {
        let role = self.raw.raft.state;
        let leader = self.raw.raft.leader_id;
        if leader != self.last_leader {
            tracing::info!(
                "Raft leader changed: {} -> {} channel={} node={}",
                self.last_leader,
                leader,
                self.channel,
                self.id
            );
            if leader != 0 {
                self.gauges.leader_changes.inc();
            }
            self.last_leader = leader;
        }
        if role != self.last_role {
            if role == StateRole::Leader {
                self.leader_start_index = self.raw.raft.raft_log.last_index();
                self.creator = None;
            } else if self.last_role == StateRole::Leader {
                self.lose_leadership("leadership lost; retry");
            }
            self.last_role = role;
        }
        if role == StateRole::Leader
            && self.creator.is_none()
            && self.raw.raft.raft_log.applied >= self.leader_start_index
        {
            let tip = self.store.tip();
            tracing::info!(channel = %self.channel, node = self.id, height = tip.height, "leader ready to cut blocks");
            self.creator = Some(BlockCreator::new(&tip, self.signer.clone()));
        }
    }

    /// Gives up what was not yet proposed; what was proposed may still commit.
    fn lose_leadership(&mut self, why: &str) {
        self.creator = None;
        let mut dropped: Vec<Pending> = self.cutter.cut();
        dropped.extend(self.ready_batches.drain(..).flatten());
        for p in dropped {
            self.queued.remove(&p.tx_id);
            for w in self.waiters.remove(&p.tx_id).unwrap_or_default() {
                let _ = w.send(Outcome::Unavailable(why.to_string()));
            }
        }
        if !self.queued.is_empty() {
            let deadline = Instant::now() + self.election_timeout() * 2;
            self.orphans
                .push((deadline, self.queued.iter().cloned().collect()));
        }
        self.inflight.clear();
    }

    pub(super) fn active_consenters(&self) -> Vec<u64> {
        let timeout = self.election_timeout();
        let mut active: Vec<u64> = self
            .addrs
            .keys()
            .copied()
            .filter(|&id| id == self.id || self.contacts.since(id).is_some_and(|d| d < timeout))
            .collect();
        active.sort_unstable();
        active
    }

    fn publish_status(&mut self) {
        let active = self.active_consenters();
        let r = &self.raw.raft;
        let role = match r.state {
            StateRole::Leader => Role::Leader,
            StateRole::Candidate => Role::Candidate,
            StateRole::PreCandidate => Role::PreCandidate,
            StateRole::Follower => Role::Follower,
        };
        let majority = self.addrs.len() / 2 + 1;
        let quorum = match r.state {
            StateRole::Leader => active.len() >= majority,
            _ => r.leader_id != 0 && active.contains(&r.leader_id),
        };
        let tip = self.store.tip();
        let status = ChainStatus {
            role,
            leader_id: r.leader_id,
            term: r.term,
            commit_index: r.raft_log.committed,
            applied_index: r.raft_log.applied,
            height: tip.height,
            last_hash: tip.last_hash,
            active,
            quorum,
            halt_error: String::new(),
        };
        let g = &self.gauges;
        g.cluster_size.set(self.addrs.len() as i64);
        g.is_leader.set(i64::from(role == Role::Leader));
        g.active_nodes.set(status.active.len() as i64);
        g.committed_block_number
            .set(status.height.saturating_sub(1) as i64);
        g.height.set(status.height as i64);
        self.status_tx.send_if_modified(|s| {
            if *s == status {
                false
            } else {
                *s = status;
                true
            }
        });
    }
}
