//! Raft messages from other consenters waiting for a chain's thread, bounded in bytes. Past the
//! bound new ones are dropped and counted: Raft resends what matters (etcd likewise drops
//! messages when a peer's receive buffer is full), and a consenter sending faster than the chain
//! steps cannot grow the node's memory. Envelopes are bounded separately (`pending`).

use std::sync::atomic::{AtomicUsize, Ordering};

/// Bytes of Raft messages one chain may have queued: room for several appends of the
/// largest blocks in flight.
pub const MAX_QUEUED_BYTES: usize = 256 << 20;

pub struct RaftInbox {
    queued: AtomicUsize,
    max: usize,
}

impl RaftInbox {
    pub fn new(max: usize) -> Self {
        Self {
            queued: AtomicUsize::new(0),
            max,
        }
    }

    /// Whether a message of `size` bytes may be queued; if so it counts until [`Self::taken`].
    /// A message larger than the whole bound still goes through when nothing is queued.
    pub fn admit(&self, size: usize) -> bool {
        let before = self.queued.fetch_add(size, Ordering::AcqRel);
        if before > 0 && before + size > self.max {
            self.queued.fetch_sub(size, Ordering::AcqRel);
            return false;
        }
        true
    }

    /// The chain's thread took a message of `size` bytes off the queue.
    pub fn taken(&self, size: usize) {
        self.queued.fetch_sub(size, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admits_up_to_the_bound_and_frees_what_is_taken() {
        let inbox = RaftInbox::new(100);
        assert!(inbox.admit(60));
        assert!(inbox.admit(40));
        assert!(!inbox.admit(1), "full");
        inbox.taken(60);
        assert!(inbox.admit(50));
        assert!(!inbox.admit(20));
        inbox.taken(40);
        inbox.taken(50);
        // Alone, even a message above the bound goes through.
        assert!(inbox.admit(500));
        assert!(!inbox.admit(1));
    }
}
