//! A byte budget for the envelopes an orderer holds between reading them and answering them:
//! while they are validated, queued for the chain or the leader, and waiting for their block.
//! A stream reads its next envelope only once the last one fits, so a client (or a follower
//! forwarding on `Submit`) that sends faster than the channel orders is slowed down by HTTP/2
//! flow control instead of growing the node's memory. Set by `limits.maxPendingBytes`.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

#[derive(Clone)]
pub struct PendingBytes {
    permits: Arc<Semaphore>,
    total: usize,
}

/// Bytes of one envelope, held until dropped.
pub type Reservation = OwnedSemaphorePermit;

impl PendingBytes {
    /// A budget of `total` bytes (at most `u32::MAX`, which the limits' checks ensure).
    pub fn new(total: usize) -> Self {
        let total = total.clamp(1, u32::MAX as usize);
        Self {
            permits: Arc::new(Semaphore::new(total)),
            total,
        }
    }

    /// Waits until `size` bytes fit in the budget and holds them. An envelope larger than the
    /// whole budget waits for all of it, so it is still served, alone.
    pub async fn reserve(&self, size: usize) -> Reservation {
        let n = size.clamp(1, self.total) as u32;
        self.permits
            .clone()
            .acquire_many_owned(n)
            .await
            .expect("the budget's semaphore is never closed")
    }

    /// Bytes held now.
    pub fn held(&self) -> usize {
        self.total - self.permits.available_permits()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reservations_wait_for_room_and_give_it_back() {
        let budget = PendingBytes::new(100);
        let a = budget.reserve(60).await;
        assert_eq!(budget.held(), 60);
        // 50 more do not fit until `a` is answered.
        let waiting = tokio::spawn({
            let budget = budget.clone();
            async move { budget.reserve(50).await }
        });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(!waiting.is_finished());
        drop(a);
        let b = waiting.await.unwrap();
        assert_eq!(budget.held(), 50);
        drop(b);
        // Larger than the budget: waits for all of it, then goes through.
        let big = budget.reserve(1000).await;
        assert_eq!(budget.held(), 100);
        drop(big);
        assert_eq!(budget.held(), 0);
    }
}
