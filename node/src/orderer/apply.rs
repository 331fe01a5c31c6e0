//! The Raft `Ready` cycle of a chain, kept in one place as raft-rs prescribes: persist the log
//! and hard state, send messages, apply committed blocks, advance. Also snapshots: taking them
//! every `snapshotIntervalSize` bytes and, when a far-behind follower receives one, pulling
//! the missing blocks from other orderers.

use std::sync::Arc;

use anyhow::Context;
use prost::Message as _;
use protobuf::Message as _;
use raft::prelude::{Entry, EntryType, Message, Snapshot};
use redb::{Database, Durability};

use super::blockpuller;
use super::chain::{Chain, Outcome};
use super::storage::RaftStorage;
use crate::ledger::{tx_ids, BlockStore};
use crate::proto::cluster::StepRequest;
use crate::proto::common::Block;

/// Writes block 0 when a channel is joined.
pub fn write_genesis(
    store: &BlockStore,
    db: &Arc<Database>,
    genesis: &Block,
) -> anyhow::Result<()> {
    let txn = db.begin_write()?;
    let tip = store.append(
        &txn,
        genesis,
        &genesis.encode_to_vec(),
        &tx_ids(genesis),
        &store.tip(),
    )?;
    txn.commit()?;
    store.committed(tip);
    Ok(())
}

/// Entries kept in the log behind a snapshot (Fabric's SnapshotCatchUpEntries).
const CATCH_UP_ENTRIES: u64 = 4;
/// Ledger heights after the most recently applied entries, for placing snapshots.
const RECENT_HEIGHTS: usize = 64;

/// Snapshot data: the ledger height the snapshot covers.
fn snapshot_height(snap: &Snapshot) -> u64 {
    snap.data
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .map(u64::from_be_bytes)
        .unwrap_or(0)
}

impl Chain {
    pub(super) fn on_ready(&mut self) -> anyhow::Result<()> {
        if !self.raw.has_ready() {
            return Ok(());
        }
        let mut rd = self.raw.ready();
        self.send(rd.take_messages());
        let snapshot = (!rd.snapshot().is_empty()).then(|| rd.snapshot().clone());
        if let Some(snap) = &snapshot {
            self.catch_up(snap)?;
        }
        self.apply(rd.take_committed_entries())?;
        if snapshot.is_some() || !rd.entries().is_empty() || rd.hs().is_some() {
            let timer = self.gauges.persist.start_timer();
            self.raw
                .mut_store()
                .persist(snapshot.as_ref(), rd.entries(), rd.hs())
                .context("persisting the Raft log")?;
            timer.observe_duration();
        }
        self.send(rd.take_persisted_messages());
        let mut light = self.raw.advance(rd);
        if let Some(commit) = light.commit_index() {
            self.raw.mut_store().set_commit(commit);
        }
        self.send(light.take_messages());
        self.apply(light.take_committed_entries())?;
        self.raw.advance_apply();
        Ok(())
    }

    fn send(&mut self, msgs: Vec<Message>) {
        for m in msgs {
            let to = m.to;
            let Some(addr) = self.addrs.get(&to) else {
                continue;
            };
            let bytes = match m.write_to_bytes() {
                Ok(b) => b,
                Err(e) => {
                    tracing::error!(error = %e, "cannot encode raft message");
                    continue;
                }
            };
            let req = StepRequest {
                channel_id: self.channel.clone(),
                message: bytes,
            };
            if !self.transport.send(addr, req) {
                self.raw.report_unreachable(to);
            }
        }
    }

    /// Writes committed blocks to the ledger and answers the submitters waiting for them.
    fn apply(&mut self, entries: Vec<Entry>) -> anyhow::Result<()> {
        let Some(last_index) = entries.last().map(|e| e.index) else {
            return Ok(());
        };
        let db = self.raw.store().db().clone();
        let mut txn = db.begin_write()?;
        // Durable through the Raft log: after a crash, entries past the recorded applied
        // index are applied again.
        txn.set_durability(Durability::None);
        let mut tip = self.store.tip();
        let mut written = Vec::new();
        let mut stale = Vec::new();
        for e in &entries {
            if e.data.is_empty() || e.get_entry_type() != EntryType::EntryNormal {
                self.recent_heights.push_back((e.index, tip.height));
                continue;
            }
            let block = match Block::decode(&e.data[..]) {
                Ok(b) => b,
                Err(err) => {
                    tracing::error!(channel = %self.channel, index = e.index, error = %err, "undecodable block in the Raft log; skipped");
                    self.recent_heights.push_back((e.index, tip.height));
                    continue;
                }
            };
            let ids = tx_ids(&block);
            match self.store.append(&txn, &block, &e.data, &ids, &tip) {
                Ok(next) => {
                    written.push((tip.height, ids));
                    tip = next;
                    self.bytes_since_snapshot += e.data.len() as u64;
                }
                // A block cut by a deposed leader on top of blocks that never committed.
                Err(err) => {
                    tracing::warn!(channel = %self.channel, index = e.index, error = %err, "stale block skipped");
                    stale.extend(ids);
                }
            }
            self.recent_heights.push_back((e.index, tip.height));
        }
        while self.recent_heights.len() > RECENT_HEIGHTS {
            self.recent_heights.pop_front();
        }
        RaftStorage::set_applied_in(&txn, last_index)?;
        fail::fail_point!("block_write", |_| Err(anyhow::anyhow!(
            "failpoint block_write: writing blocks to the ledger failed"
        )));
        txn.commit()?;
        self.store.committed(tip.clone());
        for (number, ids) in written {
            while self.inflight.front().is_some_and(|&n| n <= number) {
                self.inflight.pop_front();
            }
            for id in ids {
                self.queued.remove(&id);
                for w in self.waiters.remove(&id).unwrap_or_default() {
                    let _ = w.send(Outcome::Ordered { block: number });
                }
            }
        }
        // Transactions of a skipped block were not ordered (unless a later block has them).
        for id in stale {
            if self.store.block_of_tx(&id).is_none() && self.queued.remove(&id) {
                for w in self.waiters.remove(&id).unwrap_or_default() {
                    let _ = w.send(Outcome::Unavailable(
                        "the block holding the transaction was superseded; retry".into(),
                    ));
                }
            }
        }
        if self.bytes_since_snapshot >= self.raft_opts.snapshot_interval_size.max(1) {
            self.snapshot(last_index)?;
        }
        Ok(())
    }

    /// A snapshot from the leader means the blocks it covers are gone from the Raft log:
    /// pull them from other orderers before going on.
    fn catch_up(&mut self, snap: &Snapshot) -> anyhow::Result<()> {
        let target = snapshot_height(snap);
        let from = self.store.height();
        if target <= from {
            return Ok(());
        }
        tracing::info!(channel = %self.channel, from, to = target, "catching up from a snapshot: pulling blocks");
        let sources: Vec<String> = self
            .addrs
            .iter()
            .filter(|(&id, _)| id != self.id)
            .map(|(_, a)| a.clone())
            .collect();
        // raft-rs takes the snapshot's index as applied; the stored applied index catches up
        // with the next applied entry (and start-up takes the snapshot's index as a floor).
        blockpuller::Puller {
            runtime: &self.runtime,
            transport: &self.transport,
            channel: &self.channel,
            store: &self.store,
            verifier: &self.verifier,
            signer: &self.signer,
            stopping: &self.stopping,
        }
        .pull(&sources, target)
    }

    /// Compacts the log, keeping the last [`CATCH_UP_ENTRIES`] entries so that a follower a
    /// little behind gets entries rather than a snapshot and a block pull.
    fn snapshot(&mut self, last_index: u64) -> anyhow::Result<()> {
        let index = last_index.saturating_sub(CATCH_UP_ENTRIES);
        let Some(&(_, height)) = self.recent_heights.iter().find(|(i, _)| *i == index) else {
            return Ok(()); // Not enough applied yet; try again after the next entries.
        };
        self.bytes_since_snapshot = 0;
        self.raw
            .mut_store()
            .compact(index, height.to_be_bytes().to_vec())?;
        self.gauges.snapshot_block_number.set(height as i64);
        tracing::info!(channel = %self.channel, index, height, "snapshot taken");
        Ok(())
    }
}
