//! Commits a block: validates its transactions, then writes the block (with each
//! transaction's validation code in its metadata), the valid transactions' writes, the
//! transaction index and the commit hash in one database transaction, so that a crash never
//! leaves half a block applied.
//!
//! Unlike an orderer, a peer need not fsync every block: its ledger is a copy of the
//! orderers'. A commit is written to the file at once (it survives a crash of the process)
//! and forced to disk at most every [`SYNC_INTERVAL`](super::channel::SYNC_INTERVAL); after a
//! crash of the machine, the database reopens at its last synced block and the peer pulls
//! the rest again, reaching the same verdicts.

use std::sync::OnceLock;

use prost::Message;
use ring::digest::{Context, SHA256};

use super::channel::PeerChannel;
use super::precheck::{precheck, Prechecked};
use super::statedb::{StateReader, StateWriter, TxRecord};
use super::validator::{BlockValidator, ChannelRules, Verdict};
use crate::proto::common::{Block, BlockMetadata};
use crate::proto::peer::{
    FilteredBlock, FilteredTransaction, TxReadWriteSet, TxValidationCode as Code, Version,
};

/// Validates and commits the next block of `ch`; returns what clients are told about it.
/// The block must already be checked against the chain (number, previous hash, data hash):
/// the deliver client does it as blocks arrive, so that a bad orderer is left at once.
pub fn commit_block(ch: &PeerChannel, block: &Block) -> anyhow::Result<FilteredBlock> {
    let header = block.header.clone().unwrap_or_default();
    let number = header.number;
    let txs: &[Vec<u8>] = block
        .data
        .as_ref()
        .map(|d| &d.transactions[..])
        .unwrap_or(&[]);
    let state = StateReader::new(ch.db.begin_read()?)?;
    let verdicts: Vec<Verdict> = if number == 0 {
        // The genesis block is the channel's configuration, trusted by joining it.
        crate::ledger::tx_ids(block)
            .into_iter()
            .map(|id| Verdict {
                tx_id: Some(id),
                spends_tx_id: true,
                code: Code::Valid,
                reason: String::new(),
                rwset: None,
            })
            .collect()
    } else {
        let mut v = BlockValidator::new(&ch.rules, &state);
        prechecked(&ch.rules, txs)
            .into_iter()
            .map(|p| v.validate(p))
            .collect::<anyhow::Result<_>>()?
    };
    for (i, v) in verdicts.iter().enumerate() {
        if v.code != Code::Valid {
            tracing::info!(channel = %ch.rules.channel_id, block = number, tx = i,
                tx_id = v.tx_id.as_deref().unwrap_or("?"), code = v.code.as_str_name(),
                reason = %v.reason, "invalid transaction");
        }
    }
    let prev_commit_hash = state.commit_hash()?;
    drop(state);
    let commit_hash = commit_hash(&prev_commit_hash, number, &verdicts);

    let mut meta = block.metadata.clone().unwrap_or_default();
    meta.transactions_filter = verdicts.iter().map(|v| v.code as i32 as u8).collect();
    meta.commit_hash = commit_hash.clone();
    let encoded = encode_with_metadata(block, &meta);

    let valid_ids: Vec<String> = verdicts
        .iter()
        .filter(|v| v.code == Code::Valid)
        .filter_map(|v| v.tx_id.clone())
        .collect();
    let mut txn = ch.db.begin_write()?;
    txn.set_durability(ch.durability());
    let tip = ch
        .store
        .append(&txn, block, &encoded, &valid_ids, &ch.store.tip())?;
    {
        let mut w = StateWriter::new(&txn)?;
        for (i, v) in verdicts.iter().enumerate() {
            let version = Version {
                block_num: number,
                tx_num: i as u64,
            };
            if let Some(rwset) = &v.rwset {
                apply(&mut w, rwset, &version)?;
            }
            // Ids are indexed once their creator is proven; a duplicate keeps the first record.
            if let (Some(id), true) = (&v.tx_id, v.spends_tx_id) {
                w.index_tx(
                    id,
                    TxRecord {
                        block: number,
                        tx: i as u64,
                        code: v.code,
                    },
                )?;
            }
        }
        w.set_commit_hash(&commit_hash)?;
    }
    txn.commit()?;
    let fb = FilteredBlock {
        channel_id: ch.rules.channel_id.clone(),
        number,
        transactions: verdicts
            .into_iter()
            .map(|v| FilteredTransaction {
                tx_id: v.tx_id.unwrap_or_default(),
                code: v.code as i32,
            })
            .collect(),
    };
    // Event streams wake on the new height and find the outcome in memory.
    ch.remember(fb.clone());
    ch.store.committed(tip);
    Ok(fb)
}

/// The block as this peer stores it: header and transactions as ordered, with the peer's
/// metadata (the verdicts and the commit hash). Encoded field by field, as prost would encode
/// the whole block, so that the transactions are not copied into a second block first.
fn encode_with_metadata(block: &Block, meta: &BlockMetadata) -> Vec<u8> {
    use prost::encoding::message;
    let mut buf = Vec::with_capacity(block.encoded_len() + meta.encoded_len() + 8);
    if let Some(h) = &block.header {
        message::encode(1, h, &mut buf);
    }
    if let Some(d) = &block.data {
        message::encode(2, d, &mut buf);
    }
    message::encode(3, meta, &mut buf);
    buf
}

/// Fewer transactions than this are checked on the commit thread alone.
const PARALLEL_FROM: usize = 8;

/// The stateless checks of every transaction, spread over the machine's cores.
fn prechecked(rules: &ChannelRules, txs: &[Vec<u8>]) -> Vec<Prechecked> {
    // Asked once: the answer comes from cgroup files, too slow to read for every block.
    static THREADS: OnceLock<usize> = OnceLock::new();
    let threads = *THREADS.get_or_init(|| {
        std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(8)
    });
    if threads == 1 || txs.len() < PARALLEL_FROM {
        return precheck(rules, txs);
    }
    let chunk = txs.len().div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = txs
            .chunks(chunk)
            .map(|part| s.spawn(move || precheck(rules, part)))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("precheck thread panicked"))
            .collect()
    })
}

fn apply(w: &mut StateWriter, rwset: &TxReadWriteSet, version: &Version) -> anyhow::Result<()> {
    for ns in &rwset.ns_rwset {
        for kv in &ns.writes {
            if kv.is_delete {
                w.delete(&ns.namespace, &kv.key)?;
            } else {
                w.put(&ns.namespace, &kv.key, version, &kv.value)?;
            }
        }
    }
    Ok(())
}

/// SHA-256 over the previous commit hash, the block number, every verdict and every applied
/// write, length-framed: peers that agree on it agree on the whole state history.
fn commit_hash(prev: &[u8], number: u64, verdicts: &[Verdict]) -> Vec<u8> {
    let mut ctx = Context::new(&SHA256);
    let mut frame = |b: &[u8]| {
        ctx.update(&(b.len() as u64).to_be_bytes());
        ctx.update(b);
    };
    frame(prev);
    frame(&number.to_be_bytes());
    for v in verdicts {
        frame(&(v.code as i32).to_be_bytes());
        for ns in v.rwset.iter().flat_map(|r| &r.ns_rwset) {
            for kv in &ns.writes {
                frame(ns.namespace.as_bytes());
                frame(kv.key.as_bytes());
                frame(&[kv.is_delete as u8]);
                frame(&kv.value);
            }
        }
    }
    ctx.finish().as_ref().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::new_block;

    #[test]
    fn stored_block_encodes_as_prost_would() {
        let block = new_block(3, vec![1; 32], vec![b"tx0".to_vec(), b"tx1".to_vec()]);
        let meta = BlockMetadata {
            raft_term: 2,
            transactions_filter: vec![0, 11],
            commit_hash: vec![9; 32],
            ..Default::default()
        };
        let whole = Block {
            metadata: Some(meta.clone()),
            ..block.clone()
        };
        assert_eq!(encode_with_metadata(&block, &meta), whole.encode_to_vec());
    }
}
