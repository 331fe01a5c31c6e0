//! A channel's Raft log, hard state and snapshot, kept in memory for raft-rs and written
//! through to redb before anything is acknowledged (the WAL of Fabric's etcdraft).

use std::sync::Arc;

use anyhow::Context;
use protobuf::Message as _;
use raft::prelude::{ConfState, Entry, HardState, Snapshot};
use raft::{GetEntriesContext, RaftState, Storage, StorageError};
use redb::{Database, Durability, ReadableTable, TableDefinition, WriteTransaction};

const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("raft_log");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("raft_meta");

const HARD_STATE: &str = "hard_state";
const CONF_STATE: &str = "conf_state";
const SNAPSHOT: &str = "snapshot";
/// The last log index whose block is in the block store (written with the block).
const APPLIED: &str = "applied";

pub struct RaftStorage {
    db: Arc<Database>,
    hard_state: HardState,
    conf_state: ConfState,
    snapshot: Snapshot,
    /// Entries after the snapshot: `entries[0].index == snapshot index + 1`.
    entries: Vec<Entry>,
}

fn pb_err(e: protobuf::ProtobufError) -> anyhow::Error {
    anyhow::anyhow!("corrupt raft state: {e}")
}

impl RaftStorage {
    /// Opens the channel's Raft state. A new channel starts with `voters` as its members.
    /// Returns the storage and the applied index recorded with the block store.
    pub fn open(db: Arc<Database>, voters: &[u64]) -> anyhow::Result<(Self, u64)> {
        let txn = db.begin_write()?;
        txn.open_table(LOG)?;
        let fresh = txn.open_table(META)?.get(CONF_STATE)?.is_none();
        if fresh {
            let cs = ConfState {
                voters: voters.to_vec(),
                ..Default::default()
            };
            txn.open_table(META)?
                .insert(CONF_STATE, &cs.write_to_bytes().map_err(pb_err)?[..])?;
        }
        txn.commit()?;

        let r = db.begin_read()?;
        let meta = r.open_table(META)?;
        let get = |k: &str| -> anyhow::Result<Option<Vec<u8>>> {
            Ok(meta.get(k)?.map(|v| v.value().to_vec()))
        };
        let hard_state = match get(HARD_STATE)? {
            Some(b) => HardState::parse_from_bytes(&b).map_err(pb_err)?,
            None => HardState::default(),
        };
        let conf_state = ConfState::parse_from_bytes(&get(CONF_STATE)?.context("no conf state")?)
            .map_err(pb_err)?;
        let snapshot = match get(SNAPSHOT)? {
            Some(b) => Snapshot::parse_from_bytes(&b).map_err(pb_err)?,
            None => Snapshot::default(),
        };
        let applied = match get(APPLIED)? {
            Some(b) => u64::from_be_bytes(
                b.try_into()
                    .map_err(|_| anyhow::anyhow!("bad applied index"))?,
            ),
            None => 0,
        };
        let mut entries = Vec::new();
        for item in r
            .open_table(LOG)?
            .range(snapshot.get_metadata().index + 1..)?
        {
            let (_, v) = item?;
            entries.push(Entry::parse_from_bytes(v.value()).map_err(pb_err)?);
        }
        // raft-rs refuses an applied index past the commit index; the commit index is
        // persisted no later than the blocks, so this only guards against surprises.
        let applied = applied
            .min(hard_state.commit)
            .max(snapshot.get_metadata().index);
        Ok((
            Self {
                db,
                hard_state,
                conf_state,
                snapshot,
                entries,
            },
            applied,
        ))
    }

    pub fn db(&self) -> &Arc<Database> {
        &self.db
    }

    pub fn commit_index(&self) -> u64 {
        self.hard_state.commit
    }

    fn first(&self) -> u64 {
        self.snapshot.get_metadata().index + 1
    }

    fn last(&self) -> u64 {
        self.entries
            .last()
            .map(|e| e.index)
            .unwrap_or(self.snapshot.get_metadata().index)
    }

    /// Persists what a Ready asks for, with fsync, in one transaction: a received snapshot,
    /// new entries (replacing any conflicting tail) and the hard state.
    pub fn persist(
        &mut self,
        snapshot: Option<&Snapshot>,
        entries: &[Entry],
        hard_state: Option<&HardState>,
    ) -> anyhow::Result<()> {
        fail::fail_point!("raft_log_write", |_| Err(anyhow::anyhow!(
            "failpoint raft_log_write: the Raft log write failed"
        )));
        let txn = self.db.begin_write()?;
        {
            let mut log = txn.open_table(LOG)?;
            let mut meta = txn.open_table(META)?;
            if let Some(snap) = snapshot {
                log.retain(|_, _| false)?;
                meta.insert(SNAPSHOT, &snap.write_to_bytes().map_err(pb_err)?[..])?;
                meta.insert(
                    CONF_STATE,
                    &snap
                        .get_metadata()
                        .get_conf_state()
                        .write_to_bytes()
                        .map_err(pb_err)?[..],
                )?;
            }
            if let Some(first_new) = entries.first().map(|e| e.index) {
                let stale: Vec<u64> = log
                    .range(first_new..)?
                    .map(|r| r.map(|(k, _)| k.value()))
                    .collect::<Result<_, _>>()?;
                for k in stale {
                    log.remove(k)?;
                }
                for e in entries {
                    log.insert(e.index, &e.write_to_bytes().map_err(pb_err)?[..])?;
                }
            }
            let mut hs = hard_state
                .cloned()
                .unwrap_or_else(|| self.hard_state.clone());
            if let Some(snap) = snapshot {
                hs.commit = hs.commit.max(snap.get_metadata().index);
                hs.term = hs.term.max(snap.get_metadata().term);
            }
            meta.insert(HARD_STATE, &hs.write_to_bytes().map_err(pb_err)?[..])?;
        }
        // The commit is the fsync: a failure here leaves nothing written.
        fail::fail_point!("raft_log_fsync", |_| Err(anyhow::anyhow!(
            "failpoint raft_log_fsync: fsync of the Raft log failed"
        )));
        txn.commit()?;

        if let Some(snap) = snapshot {
            self.conf_state = snap.get_metadata().get_conf_state().clone();
            self.snapshot = snap.clone();
            self.entries.clear();
            self.hard_state.commit = self.hard_state.commit.max(snap.get_metadata().index);
            self.hard_state.term = self.hard_state.term.max(snap.get_metadata().term);
        }
        if let Some(first_new) = entries.first().map(|e| e.index) {
            let keep = first_new.saturating_sub(self.first()) as usize;
            self.entries.truncate(keep);
            self.entries.extend_from_slice(entries);
        }
        if let Some(hs) = hard_state {
            self.hard_state = hs.clone();
        }
        Ok(())
    }

    /// A commit index learned from a LightReady; persisted with the next hard state.
    pub fn set_commit(&mut self, commit: u64) {
        self.hard_state.commit = commit;
    }

    /// Records, inside the block store's transaction, that entries up to `index` are applied.
    pub fn set_applied_in(txn: &WriteTransaction, index: u64) -> anyhow::Result<()> {
        txn.open_table(META)?
            .insert(APPLIED, &index.to_be_bytes()[..])?;
        Ok(())
    }

    /// Takes a snapshot at applied `index` whose data is `data` (the ledger height it covers)
    /// and drops the log up to it. Far-behind followers get this snapshot and pull blocks.
    pub fn compact(&mut self, index: u64, data: Vec<u8>) -> anyhow::Result<()> {
        if index <= self.snapshot.get_metadata().index || index > self.last() {
            return Ok(());
        }
        let term = self.term(index)?;
        let mut snap = Snapshot {
            data: data.into(),
            ..Default::default()
        };
        let meta = snap.mut_metadata();
        meta.index = index;
        meta.term = term;
        meta.set_conf_state(self.conf_state.clone());
        let mut txn = self.db.begin_write()?;
        txn.set_durability(Durability::None);
        {
            let mut log = txn.open_table(LOG)?;
            let old: Vec<u64> = log
                .range(..=index)?
                .map(|r| r.map(|(k, _)| k.value()))
                .collect::<Result<_, _>>()?;
            for k in old {
                log.remove(k)?;
            }
            txn.open_table(META)?
                .insert(SNAPSHOT, &snap.write_to_bytes().map_err(pb_err)?[..])?;
        }
        txn.commit()?;
        let drop = (index + 1 - self.first()) as usize;
        self.entries.drain(..drop.min(self.entries.len()));
        self.snapshot = snap;
        Ok(())
    }
}

impl Storage for RaftStorage {
    fn initial_state(&self) -> raft::Result<RaftState> {
        Ok(RaftState::new(
            self.hard_state.clone(),
            self.conf_state.clone(),
        ))
    }

    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        _context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        if low < self.first() {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        if high > self.last() + 1 {
            return Err(raft::Error::Store(StorageError::Unavailable));
        }
        let offset = self.first();
        let mut ents = self.entries[(low - offset) as usize..(high - offset) as usize].to_vec();
        raft::util::limit_size(&mut ents, max_size.into());
        Ok(ents)
    }

    fn term(&self, idx: u64) -> raft::Result<u64> {
        let snap = self.snapshot.get_metadata();
        if idx == snap.index {
            return Ok(snap.term);
        }
        if idx < self.first() {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        if idx > self.last() {
            return Err(raft::Error::Store(StorageError::Unavailable));
        }
        Ok(self.entries[(idx - self.first()) as usize].term)
    }

    fn first_index(&self) -> raft::Result<u64> {
        Ok(self.first())
    }

    fn last_index(&self) -> raft::Result<u64> {
        Ok(self.last())
    }

    fn snapshot(&self, request_index: u64, _to: u64) -> raft::Result<Snapshot> {
        if self.snapshot.get_metadata().index == 0
            || self.snapshot.get_metadata().index < request_index
        {
            return Err(raft::Error::Store(
                StorageError::SnapshotTemporarilyUnavailable,
            ));
        }
        Ok(self.snapshot.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(index: u64, term: u64) -> Entry {
        Entry {
            index,
            term,
            data: vec![index as u8].into(),
            ..Default::default()
        }
    }

    #[test]
    fn log_survives_reopen_and_conflicts_are_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.redb");
        {
            let db = Arc::new(Database::create(&path).unwrap());
            let (mut s, applied) = RaftStorage::open(db, &[1, 2, 3]).unwrap();
            assert_eq!(applied, 0);
            let hs = HardState {
                term: 2,
                commit: 2,
                ..Default::default()
            };
            s.persist(None, &[entry(1, 1), entry(2, 1), entry(3, 1)], Some(&hs))
                .unwrap();
            // A new leader overwrites index 3 with its own term.
            s.persist(None, &[entry(3, 2), entry(4, 2)], None).unwrap();
            assert_eq!(s.term(3).unwrap(), 2);
        }
        let db = Arc::new(Database::create(&path).unwrap());
        let (s, _) = RaftStorage::open(db, &[9]).unwrap();
        assert_eq!(s.last_index().unwrap(), 4);
        assert_eq!(s.term(3).unwrap(), 2);
        let st = s.initial_state().unwrap();
        assert_eq!(st.hard_state.term, 2);
        assert_eq!(st.conf_state.voters, vec![1, 2, 3]);
    }

    #[test]
    fn compaction_keeps_a_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(Database::create(dir.path().join("c.redb")).unwrap());
        let (mut s, _) = RaftStorage::open(db.clone(), &[1]).unwrap();
        s.persist(
            None,
            &(1..=5).map(|i| entry(i, 1)).collect::<Vec<_>>(),
            None,
        )
        .unwrap();
        s.compact(3, b"h".to_vec()).unwrap();
        assert_eq!(s.first_index().unwrap(), 4);
        assert!(matches!(
            s.entries(2, 4, None, GetEntriesContext::empty(false)),
            Err(raft::Error::Store(StorageError::Compacted))
        ));
        assert_eq!(s.snapshot(0, 2).unwrap().get_metadata().index, 3);
        drop(s);
        let (s, applied) = RaftStorage::open(db, &[1]).unwrap();
        assert_eq!(applied, 3);
        assert_eq!(
            s.entries(4, 6, None, GetEntriesContext::empty(false))
                .unwrap()
                .len(),
            2
        );
    }
}
