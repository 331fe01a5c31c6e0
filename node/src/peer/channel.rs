//! One channel on a peer: its rules, its ledger (blocks and state in one redb database), the
//! task that pulls blocks from the orderers and the thread that commits them.

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use redb::{Database, Durability};
use tokio::sync::{mpsc, watch};

use super::committer::commit_block;
use super::deliverclient;
use super::events::filtered;
use super::statedb::{create_tables, StateReader};
use super::validator::ChannelRules;
use crate::identity::{MspSet, Policy, SigningIdentity};
use crate::ledger::{BlockStore, BlockVerifier};
use crate::proto::common::{Block, ChannelConfig};
use crate::proto::peer::FilteredBlock;
use crate::tls::TlsMaterial;

/// How many committed blocks' outcomes are kept in memory for event streams.
const RECENT_EVENTS: usize = 256;
/// Blocks received but not yet committed.
const COMMIT_QUEUE: usize = 32;
const LEDGER_CACHE: usize = 64 << 20;
/// While blocks arrive, the longest a committed block stays in the page cache only (see
/// `committer`); the last blocks before a pause are left to the kernel's writeback.
pub const SYNC_INTERVAL: Duration = Duration::from_millis(500);

/// What the admin API reports about a channel on a peer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PeerStatus {
    pub height: u64,
    pub last_hash: Vec<u8>,
    pub commit_hash: Vec<u8>,
    /// The orderer blocks are pulled from; empty while connecting.
    pub orderer: String,
    /// Why the next block cannot be committed; empty when commits succeed.
    pub commit_error: String,
}

pub struct PeerChannel {
    pub config: ChannelConfig,
    pub rules: ChannelRules,
    /// Blocks from the orderers must carry signatures that satisfy BlockValidation.
    pub blocks: BlockVerifier,
    pub db: Arc<Database>,
    pub store: BlockStore,
    status: watch::Sender<PeerStatus>,
    recent: Mutex<VecDeque<Arc<FilteredBlock>>>,
    stop: watch::Sender<bool>,
    last_sync: Mutex<Option<Instant>>,
    commit_thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl PeerChannel {
    /// Opens (or creates) the channel's ledger under `dir`; commits `genesis` if the ledger
    /// is new.
    pub fn open(config: ChannelConfig, dir: &Path, genesis: &Block) -> anyhow::Result<Arc<Self>> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let db = Arc::new(
            Database::builder()
                .set_cache_size(LEDGER_CACHE)
                .create(dir.join("ledger.redb"))
                .with_context(|| format!("cannot open ledger in {}", dir.display()))?,
        );
        let txn = db.begin_write()?;
        create_tables(&txn)?;
        txn.commit()?;
        let store = BlockStore::open_without_tx_window(db.clone())?;
        let policies = config.policies.clone().unwrap_or_default();
        let parse = |name: &str, text: &str| -> anyhow::Result<Policy> {
            text.parse()
                .with_context(|| format!("channel {} {name} policy", config.channel_id))
        };
        let rules = ChannelRules {
            channel_id: config.channel_id.clone(),
            msps: MspSet::new(&config.organizations).context("channel organizations")?,
            writers: parse("writers", &policies.writers)?,
            admins: parse("admins", &policies.admins)?,
            readers: parse("readers", &policies.readers)?,
            own_endorsements: Default::default(),
            policies: Mutex::new(HashMap::new()),
        };
        let blocks = BlockVerifier::new(&config)
            .with_context(|| format!("channel {}", config.channel_id))?;
        let ch = Arc::new(Self {
            config,
            rules,
            blocks,
            db,
            store,
            status: watch::channel(PeerStatus::default()).0,
            recent: Mutex::new(VecDeque::new()),
            stop: watch::channel(false).0,
            last_sync: Mutex::new(None),
            commit_thread: Mutex::new(None),
        });
        if ch.store.height() == 0 {
            commit_block(&ch, genesis).context("committing the genesis block")?;
        }
        ch.publish(|_| {})?;
        Ok(ch)
    }

    /// How durable the next block's commit must be: synced when the last sync is older than
    /// [`SYNC_INTERVAL`] (and for the genesis block). In between, commits stay in redb's
    /// memory (visible to readers, not yet written): a page changed by several blocks is
    /// written once per sync, not once per block. A crash loses at most the blocks since the
    /// last sync, which the peer pulls again from the orderers.
    pub(super) fn durability(&self) -> Durability {
        let mut last = self.last_sync.lock().expect("last_sync");
        let now = Instant::now();
        if last.is_some_and(|t| now.duration_since(t) < SYNC_INTERVAL) {
            return Durability::None;
        }
        *last = Some(now);
        Durability::Immediate
    }

    pub fn channel_id(&self) -> &str {
        &self.config.channel_id
    }

    pub fn status(&self) -> PeerStatus {
        self.status.borrow().clone()
    }

    pub fn watch_status(&self) -> watch::Receiver<PeerStatus> {
        self.status.subscribe()
    }

    /// A snapshot of committed state.
    pub fn state(&self) -> anyhow::Result<StateReader> {
        StateReader::new(self.db.begin_read()?)
    }

    /// The outcome of block `number`, if committed.
    pub fn events_of(&self, number: u64) -> anyhow::Result<Option<Arc<FilteredBlock>>> {
        if let Some(fb) = self
            .recent
            .lock()
            .expect("recent")
            .iter()
            .find(|b| b.number == number)
        {
            return Ok(Some(fb.clone()));
        }
        Ok(self
            .store
            .get(number)?
            .map(|b| Arc::new(filtered(self.channel_id(), &b))))
    }

    pub(super) fn remember(&self, fb: FilteredBlock) {
        let mut recent = self.recent.lock().expect("recent");
        if recent.len() == RECENT_EVENTS {
            recent.pop_front();
        }
        recent.push_back(Arc::new(fb));
    }

    fn publish(&self, f: impl FnOnce(&mut PeerStatus)) -> anyhow::Result<()> {
        let tip = self.store.tip();
        let commit_hash = self.state()?.commit_hash()?;
        self.status.send_modify(|s| {
            s.height = tip.height;
            s.last_hash = tip.last_hash;
            s.commit_hash = commit_hash;
            f(s);
        });
        Ok(())
    }

    pub(super) fn set_orderer(&self, endpoint: &str) {
        self.status.send_if_modified(|s| {
            if s.orderer == endpoint {
                return false;
            }
            s.orderer = endpoint.to_string();
            true
        });
    }

    /// Starts pulling and committing blocks until [`PeerChannel::stop`].
    pub fn start(
        self: &Arc<Self>,
        tls: TlsMaterial,
        signer: Arc<SigningIdentity>,
        runtime: &tokio::runtime::Handle,
    ) {
        let (tx, rx) = mpsc::channel::<Block>(COMMIT_QUEUE);
        let ch = self.clone();
        // Validation and redb writes block: they get a thread of their own.
        let thread = std::thread::Builder::new()
            .name(format!("commit-{}", self.channel_id()))
            .spawn(move || commit_loop(&ch, rx))
            .expect("spawn commit thread");
        *self.commit_thread.lock().expect("commit_thread") = Some(thread);
        let ch = self.clone();
        let stop = self.stop.subscribe();
        runtime.spawn(async move { deliverclient::run(ch, tls, signer, tx, stop).await });
    }

    pub fn stop(&self) {
        self.stop.send_replace(true);
    }

    /// Resolves when the channel stops (the peer shuts down).
    pub fn stopped(&self) -> watch::Receiver<bool> {
        self.stop.subscribe()
    }

    /// Stops, and waits up to `timeout` for the block being committed, so that the database
    /// closes cleanly.
    pub fn stop_and_wait(&self, timeout: Duration) {
        self.stop();
        let Some(thread) = self.commit_thread.lock().expect("commit_thread").take() else {
            return;
        };
        let started = Instant::now();
        while !thread.is_finished() && started.elapsed() < timeout {
            std::thread::sleep(Duration::from_millis(10));
        }
        if thread.is_finished() {
            let _ = thread.join();
        }
    }
}

/// Commits queued blocks in order. A block that fails (a storage error, or a bug caught as a
/// panic) is retried with backoff, never skipped: the next block cannot be judged without it.
fn commit_loop(ch: &Arc<PeerChannel>, mut rx: mpsc::Receiver<Block>) {
    while let Some(block) = rx.blocking_recv() {
        let number = block.header.as_ref().map(|h| h.number).unwrap_or(0);
        let mut backoff = Duration::from_millis(100);
        loop {
            if *ch.stop.borrow() {
                return;
            }
            let started = Instant::now();
            let attempt =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| commit_block(ch, &block)));
            let error = match attempt {
                Ok(Ok(fb)) => {
                    record_commit(ch.channel_id(), &fb, started.elapsed(), ch.store.height());
                    let valid = fb.transactions.iter().filter(|t| t.code == 0).count();
                    tracing::debug!(channel = %ch.channel_id(), block = number,
                        txs = fb.transactions.len(), valid, queued = rx.len(),
                        ms = started.elapsed().as_millis() as u64, "committed block");
                    if let Err(e) = ch.publish(|s| s.commit_error.clear()) {
                        tracing::error!(channel = %ch.channel_id(), "status: {e:#}");
                    }
                    break;
                }
                Ok(Err(e)) => format!("{e:#}"),
                Err(panic) => panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "panic".into()),
            };
            tracing::error!(channel = %ch.channel_id(), block = number,
                "cannot commit block: {error}; retrying in {backoff:?}");
            let shown = format!("block {number}: {error}");
            ch.status.send_if_modified(|s| {
                let changed = s.commit_error != shown;
                s.commit_error = shown;
                changed
            });
            std::thread::sleep(backoff);
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }
}

/// Fabric's ledger metrics for one committed block.
fn record_commit(channel: &str, fb: &FilteredBlock, took: Duration, height: u64) {
    let m = crate::operations::metrics();
    m.ledger_block_processing_time
        .with_label_values(&[channel])
        .observe(took.as_secs_f64());
    m.ledger_blockchain_height
        .with_label_values(&[channel])
        .set(height as i64);
    for t in &fb.transactions {
        let code = crate::proto::peer::TxValidationCode::try_from(t.code)
            .map(|c| c.as_str_name())
            .unwrap_or("UNKNOWN");
        m.ledger_transaction_count
            .with_label_values(&[channel, code])
            .inc();
    }
}
