//! The transaction ids of the most recent blocks, in memory: how an orderer answers a retry of
//! an already ordered transaction with its block instead of ordering it twice.
//!
//! A durable index of every id would cost a random B-tree insert per transaction (it more
//! than halved ordering throughput); retries come within seconds, so a window of recent
//! blocks (the last 500, and all of the last two minutes), rebuilt from the ledger at
//! start-up, is enough: older envelopes are refused by their timestamp. Peers reject older
//! duplicates.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use ring::digest::{digest, SHA256};

/// How many recent blocks' transaction ids are remembered, at least.
pub const WINDOW_BLOCKS: usize = 500;
/// How far an envelope's timestamp may be from an orderer's clock when it is broadcast.
pub const ENVELOPE_TIME_WINDOW: Duration = Duration::from_secs(60);
/// Blocks younger than this are remembered whatever their number (small blocks come fast
/// under load), so that any retry a client makes after a timeout is recognised. Twice the
/// envelope time window: an envelope accepted when its timestamp was a window ahead of the
/// clock can be broadcast again until it is a window behind, and must still be found here.
pub const WINDOW_AGE: Duration = Duration::from_secs(2 * ENVELOPE_TIME_WINDOW.as_secs());
/// A bound on memory whatever the load (about 50 bytes an id).
const MAX_IDS: usize = 2_000_000;

type Key = [u8; 32];

fn key(tx_id: &str) -> Key {
    let mut k = [0u8; 32];
    if hex::decode_to_slice(tx_id, &mut k).is_err() {
        k.copy_from_slice(digest(&SHA256, tx_id.as_bytes()).as_ref());
    }
    k
}

pub struct TxWindow {
    capacity: usize,
    by_id: HashMap<Key, u64>,
    blocks: VecDeque<(u64, Vec<Key>, Instant)>,
    max_age: Duration,
}

impl TxWindow {
    pub fn new(capacity: usize, max_age: Duration) -> Self {
        Self {
            capacity: capacity.max(1),
            by_id: HashMap::new(),
            blocks: VecDeque::new(),
            max_age,
        }
    }

    pub fn insert_block(&mut self, number: u64, tx_ids: &[String]) {
        let keys: Vec<Key> = tx_ids.iter().map(|id| key(id)).collect();
        for k in &keys {
            self.by_id.insert(*k, number);
        }
        self.blocks.push_back((number, keys, Instant::now()));
        while let Some((_, _, at)) = self.blocks.front() {
            let expired = self.blocks.len() > self.capacity && at.elapsed() > self.max_age;
            if !expired && self.by_id.len() <= MAX_IDS {
                break;
            }
            let Some((old, keys, _)) = self.blocks.pop_front() else {
                break;
            };
            for k in keys {
                if self.by_id.get(&k) == Some(&old) {
                    self.by_id.remove(&k);
                }
            }
        }
    }

    /// The block holding `tx_id`, if it is among the remembered blocks.
    pub fn get(&self, tx_id: &str) -> Option<u64> {
        self.by_id.get(&key(tx_id)).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_the_last_blocks_only() {
        let mut w = TxWindow::new(2, Duration::ZERO);
        let id = |n: u8| hex::encode([n; 32]);
        w.insert_block(1, &[id(1), "genesis-x".into()]);
        w.insert_block(2, &[id(2)]);
        assert_eq!(w.get(&id(1)), Some(1));
        assert_eq!(w.get("genesis-x"), Some(1));
        w.insert_block(3, &[id(3)]);
        assert_eq!(w.get(&id(1)), None, "block 1 left the window");
        assert_eq!(w.get(&id(2)), Some(2));
        assert_eq!(w.get(&id(3)), Some(3));

        // Young blocks stay even past the block count.
        let mut w = TxWindow::new(1, Duration::from_secs(60));
        w.insert_block(1, &[id(1)]);
        w.insert_block(2, &[id(2)]);
        assert_eq!(w.get(&id(1)), Some(1));
    }
}
