//! The block store: a channel's blocks by number in the channel's redb database (shared with
//! its Raft log, see `orderer::storage`), and the ids of recently ordered transactions.

use std::sync::{Arc, Mutex};

use anyhow::{bail, Context};
use prost::Message;
use redb::{Database, ReadableTable, TableDefinition, WriteTransaction};
use tokio::sync::watch;

use super::block::{header_hash, tx_ids};
use super::txwindow::{TxWindow, WINDOW_AGE, WINDOW_BLOCKS};
use crate::proto::common::Block;

const BLOCKS: TableDefinition<u64, &[u8]> = TableDefinition::new("blocks");

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tip {
    pub height: u64,
    pub last_hash: Vec<u8>,
}

pub struct BlockStore {
    db: Arc<Database>,
    tip: Mutex<Tip>,
    /// Height changes, for Deliver streams that follow the ledger.
    height_tx: watch::Sender<u64>,
    recent: Mutex<TxWindow>,
    /// Tx ids of blocks appended but not yet committed.
    pending: Mutex<Vec<(u64, Vec<String>)>>,
    /// Orderers answer retries from the window; peers keep a durable index instead.
    with_window: bool,
}

impl BlockStore {
    /// A store that remembers recent transaction ids (see [`BlockStore::block_of_tx`]).
    pub fn open(db: Arc<Database>) -> anyhow::Result<Self> {
        Self::open_with(db, true)
    }

    /// A store without the window of recent transaction ids.
    pub fn open_without_tx_window(db: Arc<Database>) -> anyhow::Result<Self> {
        Self::open_with(db, false)
    }

    fn open_with(db: Arc<Database>, with_window: bool) -> anyhow::Result<Self> {
        let txn = db.begin_write()?;
        txn.open_table(BLOCKS)?;
        txn.commit()?;
        let tip = {
            let r = db.begin_read()?;
            let t = r.open_table(BLOCKS)?;
            let last = t.last()?;
            match last {
                None => Tip::default(),
                Some((k, v)) => {
                    let block = Block::decode(v.value()).context("last block is corrupt")?;
                    let header = block.header.context("last block has no header")?;
                    Tip {
                        height: k.value() + 1,
                        last_hash: header_hash(&header),
                    }
                }
            }
        };
        let mut recent = TxWindow::new(WINDOW_BLOCKS, WINDOW_AGE);
        if with_window {
            let r = db.begin_read()?;
            let t = r.open_table(BLOCKS)?;
            let from = tip.height.saturating_sub(WINDOW_BLOCKS as u64);
            for item in t.range(from..)? {
                let (k, v) = item?;
                let block = Block::decode(v.value()).context("stored block is corrupt")?;
                recent.insert_block(k.value(), &tx_ids(&block));
            }
        }
        let (height_tx, _) = watch::channel(tip.height);
        Ok(Self {
            db,
            tip: Mutex::new(tip),
            height_tx,
            recent: Mutex::new(recent),
            pending: Mutex::new(Vec::new()),
            with_window,
        })
    }

    pub fn db(&self) -> &Arc<Database> {
        &self.db
    }

    pub fn tip(&self) -> Tip {
        self.tip.lock().expect("tip lock").clone()
    }

    pub fn height(&self) -> u64 {
        self.tip.lock().expect("tip lock").height
    }

    pub fn watch_height(&self) -> watch::Receiver<u64> {
        self.height_tx.subscribe()
    }

    /// The encoded block `number`, if written.
    pub fn get_raw(&self, number: u64) -> anyhow::Result<Option<Vec<u8>>> {
        let r = self.db.begin_read()?;
        let t = r.open_table(BLOCKS)?;
        Ok(t.get(number)?.map(|v| v.value().to_vec()))
    }

    pub fn get(&self, number: u64) -> anyhow::Result<Option<Block>> {
        match self.get_raw(number)? {
            None => Ok(None),
            Some(raw) => Ok(Some(
                Block::decode(&raw[..]).context("stored block is corrupt")?,
            )),
        }
    }

    /// The block that holds `tx_id`, if it was ordered in one of the last
    /// [`WINDOW_BLOCKS`] blocks or within [`WINDOW_AGE`].
    pub fn block_of_tx(&self, tx_id: &str) -> Option<u64> {
        self.recent.lock().expect("recent").get(tx_id)
    }

    /// Writes the next block inside `txn`, checking that it extends the chain. Call
    /// [`BlockStore::committed`] after the transaction commits.
    pub fn append(
        &self,
        txn: &WriteTransaction,
        block: &Block,
        encoded: &[u8],
        tx_ids: &[String],
        expected: &Tip,
    ) -> anyhow::Result<Tip> {
        let header = block.header.as_ref().context("block has no header")?;
        if header.number != expected.height {
            bail!(
                "block {} does not follow height {}",
                header.number,
                expected.height
            );
        }
        if header.previous_hash != expected.last_hash {
            bail!(
                "block {} does not chain to the previous block's hash",
                header.number
            );
        }
        txn.open_table(BLOCKS)?.insert(header.number, encoded)?;
        if !self.with_window {
            return Ok(Tip {
                height: header.number + 1,
                last_hash: header_hash(header),
            });
        }
        let mut pending = self.pending.lock().expect("pending");
        // Anything at or past this number is from a transaction that never committed.
        pending.retain(|(n, _)| *n < header.number);
        pending.push((header.number, tx_ids.to_vec()));
        Ok(Tip {
            height: header.number + 1,
            last_hash: header_hash(header),
        })
    }

    /// Publishes a tip whose blocks have been committed to the database.
    pub fn committed(&self, tip: Tip) {
        let height = tip.height;
        {
            let mut pending = self.pending.lock().expect("pending");
            let mut recent = self.recent.lock().expect("recent");
            for (n, ids) in pending.drain(..).filter(|(n, _)| *n < height) {
                recent.insert_block(n, &ids);
            }
        }
        *self.tip.lock().expect("tip lock") = tip;
        self.height_tx.send_replace(height);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::new_block;

    fn write(
        store: &BlockStore,
        db: &Database,
        block: &Block,
        ids: &[String],
    ) -> anyhow::Result<()> {
        let txn = db.begin_write()?;
        let tip = store.append(&txn, block, &block.encode_to_vec(), ids, &store.tip())?;
        txn.commit()?;
        store.committed(tip);
        Ok(())
    }

    #[test]
    fn blocks_survive_reopen_and_must_chain() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.redb");
        let db = Arc::new(Database::create(&path).unwrap());
        let store = BlockStore::open(db.clone()).unwrap();
        let b0 = new_block(0, vec![], vec![b"tx0".to_vec()]);
        write(&store, &db, &b0, &["t0".into()]).unwrap();
        let wrong = new_block(1, vec![1, 2, 3], vec![]);
        let err = write(&store, &db, &wrong, &[]).unwrap_err().to_string();
        assert!(err.contains("does not chain"), "{err}");
        let b1 = new_block(1, store.tip().last_hash, vec![b"tx1".to_vec()]);
        write(&store, &db, &b1, &["t1".into()]).unwrap();
        drop(store);
        drop(db);

        let db = Arc::new(Database::create(&path).unwrap());
        let store = BlockStore::open(db).unwrap();
        assert_eq!(store.height(), 2);
        assert_eq!(store.get(1).unwrap().unwrap(), b1);
        // The window of recent tx ids is rebuilt from the blocks (these carry no envelopes).
        assert_eq!(store.block_of_tx("nope"), None);
    }
}
