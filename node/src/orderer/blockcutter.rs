//! Cuts the leader's stream of transactions into batches, by count, size and time, with
//! Fabric's rules: `maxMessageCount`, `preferredMaxBytes` (a larger transaction goes alone in
//! its own batch) and `batchTimeout` from the first transaction of a batch.

use std::time::{Duration, Instant};

use crate::proto::common::BatchOptions;

pub struct Pending {
    pub tx_id: String,
    pub envelope: Vec<u8>,
}

pub struct BlockCutter {
    max_count: usize,
    preferred_bytes: usize,
    timeout: Duration,
    batch: Vec<Pending>,
    bytes: usize,
    started: Option<Instant>,
}

impl BlockCutter {
    pub fn new(opts: &BatchOptions) -> Self {
        Self {
            max_count: opts.max_message_count.max(1) as usize,
            preferred_bytes: opts.preferred_max_bytes.max(1) as usize,
            timeout: Duration::from_millis(opts.batch_timeout_ms),
            batch: Vec::new(),
            bytes: 0,
            started: None,
        }
    }

    /// Adds a transaction; returns the batches that are now complete (zero, one or two).
    pub fn ordered(&mut self, tx: Pending) -> Vec<Vec<Pending>> {
        let size = tx.envelope.len();
        let mut out = Vec::new();
        if size > self.preferred_bytes {
            if !self.batch.is_empty() {
                out.push(self.cut());
            }
            out.push(vec![tx]);
            return out;
        }
        if self.bytes + size > self.preferred_bytes && !self.batch.is_empty() {
            out.push(self.cut());
        }
        if self.batch.is_empty() {
            self.started = Some(Instant::now());
        }
        self.bytes += size;
        self.batch.push(tx);
        if self.batch.len() >= self.max_count {
            out.push(self.cut());
        }
        out
    }

    pub fn cut(&mut self) -> Vec<Pending> {
        self.bytes = 0;
        self.started = None;
        std::mem::take(&mut self.batch)
    }

    /// When the current batch must be cut even if not full.
    pub fn deadline(&self) -> Option<Instant> {
        self.started.map(|s| s + self.timeout)
    }

    pub fn is_empty(&self) -> bool {
        self.batch.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tx(n: usize) -> Pending {
        Pending {
            tx_id: n.to_string(),
            envelope: vec![0; n],
        }
    }

    #[test]
    fn cuts_by_count_and_by_size() {
        let mut c = BlockCutter::new(&BatchOptions {
            batch_timeout_ms: 100,
            max_message_count: 3,
            preferred_max_bytes: 100,
            absolute_max_bytes: 1000,
        });
        assert!(c.ordered(tx(10)).is_empty());
        assert!(c.ordered(tx(10)).is_empty());
        assert!(c.deadline().is_some());
        let cut = c.ordered(tx(10));
        assert_eq!(cut.len(), 1);
        assert_eq!(cut[0].len(), 3);
        assert!(c.is_empty() && c.deadline().is_none());

        // Over the preferred size: the pending batch is cut, then the big one alone.
        c.ordered(tx(10));
        let cut = c.ordered(tx(500));
        assert_eq!(cut.iter().map(|b| b.len()).collect::<Vec<_>>(), vec![1, 1]);

        // Would overflow preferred bytes: cut before adding.
        c.ordered(tx(60));
        let cut = c.ordered(tx(60));
        assert_eq!(cut.len(), 1);
        assert_eq!(cut[0][0].envelope.len(), 60);
        assert!(!c.is_empty());
    }
}
