//! The world state of one channel: the latest value of every key of every contract, with the
//! version (block, transaction) that wrote it. It lives in the channel's redb database next to
//! the blocks, so that a block and its writes commit in one database transaction.
//!
//! Also here: the index of every transaction id ever committed (for duplicate detection
//! beyond the orderers' window) and the chain of commit hashes.

use redb::{ReadOnlyTable, ReadTransaction, Table, TableDefinition, WriteTransaction};

use crate::proto::peer::{TxValidationCode, Version};

/// Key: namespace, NUL, key. Value: block (8 bytes BE), tx (8 bytes BE), value.
const STATE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("state");
/// Key: tx id. Value: block (8 bytes BE), tx (8 bytes BE), validation code (4 bytes BE).
const TXIDS: TableDefinition<&str, &[u8]> = TableDefinition::new("txids");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const COMMIT_HASH: &str = "commit_hash";

/// A value with the version that wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned {
    pub version: Version,
    pub value: Vec<u8>,
}

/// Where a committed transaction is and how it was judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxRecord {
    pub block: u64,
    pub tx: u64,
    pub code: TxValidationCode,
}

fn state_key(ns: &str, key: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(ns.len() + 1 + key.len());
    k.extend_from_slice(ns.as_bytes());
    k.push(0);
    k.extend_from_slice(key.as_bytes());
    k
}

fn decode_versioned(raw: &[u8]) -> anyhow::Result<Versioned> {
    anyhow::ensure!(
        raw.len() >= 16,
        "state value of {} bytes is corrupt",
        raw.len()
    );
    Ok(Versioned {
        version: Version {
            block_num: u64::from_be_bytes(raw[0..8].try_into()?),
            tx_num: u64::from_be_bytes(raw[8..16].try_into()?),
        },
        value: raw[16..].to_vec(),
    })
}

/// Creates the tables of a new channel database.
pub fn create_tables(txn: &WriteTransaction) -> anyhow::Result<()> {
    txn.open_table(STATE)?;
    txn.open_table(TXIDS)?;
    txn.open_table(META)?;
    Ok(())
}

/// Reads committed state from one consistent snapshot.
pub struct StateReader {
    txn: ReadTransaction,
    /// Opened once: a block's validation reads it for every transaction.
    state: ReadOnlyTable<&'static [u8], &'static [u8]>,
    txids: ReadOnlyTable<&'static str, &'static [u8]>,
}

impl StateReader {
    pub fn new(txn: ReadTransaction) -> anyhow::Result<Self> {
        Ok(Self {
            state: txn.open_table(STATE)?,
            txids: txn.open_table(TXIDS)?,
            txn,
        })
    }

    pub fn get(&self, ns: &str, key: &str) -> anyhow::Result<Option<Versioned>> {
        self.state
            .get(&state_key(ns, key)[..])?
            .map(|v| decode_versioned(v.value()))
            .transpose()
    }

    /// Keys of `ns` in `[start, end)`; an empty `end` means to the end of the namespace.
    pub fn range(
        &self,
        ns: &str,
        start: &str,
        end: &str,
    ) -> anyhow::Result<Vec<(String, Versioned)>> {
        let lo = state_key(ns, start);
        // NUL + 1: just past every key of the namespace.
        let hi = if end.is_empty() {
            let mut h = ns.as_bytes().to_vec();
            h.push(1);
            h
        } else {
            state_key(ns, end)
        };
        let mut out = Vec::new();
        for item in self.state.range(&lo[..]..&hi[..])? {
            let (k, v) = item?;
            let key = &k.value()[ns.len() + 1..];
            out.push((
                String::from_utf8(key.to_vec())?,
                decode_versioned(v.value())?,
            ));
        }
        Ok(out)
    }

    pub fn tx(&self, tx_id: &str) -> anyhow::Result<Option<TxRecord>> {
        let Some(v) = self.txids.get(tx_id)? else {
            return Ok(None);
        };
        let raw = v.value();
        anyhow::ensure!(raw.len() == 20, "tx index entry for {tx_id} is corrupt");
        Ok(Some(TxRecord {
            block: u64::from_be_bytes(raw[0..8].try_into()?),
            tx: u64::from_be_bytes(raw[8..16].try_into()?),
            code: TxValidationCode::try_from(i32::from_be_bytes(raw[16..20].try_into()?))
                .unwrap_or(TxValidationCode::InvalidOtherReason),
        }))
    }

    pub fn commit_hash(&self) -> anyhow::Result<Vec<u8>> {
        let t = self.txn.open_table(META)?;
        Ok(t.get(COMMIT_HASH)?
            .map(|v| v.value().to_vec())
            .unwrap_or_default())
    }
}

/// Writes of one block, inside the block's database transaction; its tables are opened once
/// per block, not once per write.
pub struct StateWriter<'a> {
    state: Table<'a, &'static [u8], &'static [u8]>,
    txids: Table<'a, &'static str, &'static [u8]>,
    meta: Table<'a, &'static str, &'static [u8]>,
}

impl<'a> StateWriter<'a> {
    pub fn new(txn: &'a WriteTransaction) -> anyhow::Result<Self> {
        Ok(Self {
            state: txn.open_table(STATE)?,
            txids: txn.open_table(TXIDS)?,
            meta: txn.open_table(META)?,
        })
    }

    pub fn put(
        &mut self,
        ns: &str,
        key: &str,
        version: &Version,
        value: &[u8],
    ) -> anyhow::Result<()> {
        let mut raw = Vec::with_capacity(16 + value.len());
        raw.extend_from_slice(&version.block_num.to_be_bytes());
        raw.extend_from_slice(&version.tx_num.to_be_bytes());
        raw.extend_from_slice(value);
        self.state.insert(&state_key(ns, key)[..], &raw[..])?;
        Ok(())
    }

    pub fn delete(&mut self, ns: &str, key: &str) -> anyhow::Result<()> {
        self.state.remove(&state_key(ns, key)[..])?;
        Ok(())
    }

    pub fn index_tx(&mut self, tx_id: &str, rec: TxRecord) -> anyhow::Result<()> {
        let mut raw = [0u8; 20];
        raw[0..8].copy_from_slice(&rec.block.to_be_bytes());
        raw[8..16].copy_from_slice(&rec.tx.to_be_bytes());
        raw[16..20].copy_from_slice(&(rec.code as i32).to_be_bytes());
        self.txids.insert(tx_id, &raw[..])?;
        Ok(())
    }

    pub fn set_commit_hash(&mut self, hash: &[u8]) -> anyhow::Result<()> {
        self.meta.insert(COMMIT_HASH, hash)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use redb::Database;

    #[test]
    fn namespaces_are_separate_and_ranges_stay_inside_one() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::create(dir.path().join("s.redb")).unwrap();
        let txn = db.begin_write().unwrap();
        create_tables(&txn).unwrap();
        {
            let mut w = StateWriter::new(&txn).unwrap();
            let v = Version {
                block_num: 3,
                tx_num: 1,
            };
            w.put("cc", "a", &v, b"1").unwrap();
            w.put("cc", "b", &v, b"2").unwrap();
            w.put("cc2", "a", &v, b"x").unwrap();
        }
        txn.commit().unwrap();
        let r = StateReader::new(db.begin_read().unwrap()).unwrap();
        let all = r.range("cc", "", "").unwrap();
        assert_eq!(
            all.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
        assert_eq!(r.range("cc", "a", "b").unwrap().len(), 1);
        let a = r.get("cc2", "a").unwrap().unwrap();
        assert_eq!((a.value.as_slice(), a.version.block_num), (&b"x"[..], 3));
        assert!(r.get("cc", "c").unwrap().is_none());
    }
}
