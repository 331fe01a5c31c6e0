//! A steady load for restart benchmarks and tests: workers each send one envelope at a time
//! to the orderers in turn, moving on to the next orderer when one is unavailable or
//! stopping (as `Client::order` does, resending the same envelope). What fails on every
//! orderer is a failed transaction.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::client::Client;

/// The longest a load runs, whatever its caller does.
const LIMIT: Duration = Duration::from_secs(600);

pub struct Load {
    stop: Arc<AtomicBool>,
    started: Instant,
    workers: Vec<tokio::task::JoinHandle<()>>,
    acked: Arc<Mutex<Vec<(Instant, String)>>>,
    failed: Arc<Mutex<Vec<String>>>,
}

/// What a load saw.
#[derive(Debug, Clone)]
pub struct LoadReport {
    /// When each acknowledged transaction was acknowledged, and its tx id.
    pub acked: Vec<(Instant, String)>,
    /// Why each failed transaction failed.
    pub failed: Vec<String>,
    pub duration: Duration,
}

impl LoadReport {
    /// The longest time without an acknowledgement, from the first to the last.
    pub fn longest_gap(&self) -> Duration {
        let mut at: Vec<Instant> = self.acked.iter().map(|(t, _)| *t).collect();
        at.sort();
        at.windows(2).map(|w| w[1] - w[0]).max().unwrap_or_default()
    }

    pub fn ids(&self) -> Vec<String> {
        self.acked.iter().map(|(_, id)| id.clone()).collect()
    }
}

impl Load {
    /// Starts `workers` clients sending `tx_size`-byte transactions on `channel`.
    pub fn start(
        client: Arc<Client>,
        channel: &str,
        orderers: Vec<String>,
        workers: usize,
        tx_size: usize,
    ) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(Mutex::new(Vec::new()));
        let failed = Arc::new(Mutex::new(Vec::new()));
        let turn = Arc::new(AtomicUsize::new(0));
        let started = Instant::now();
        let workers = (0..workers)
            .map(|_| {
                let (client, channel, orderers) =
                    (client.clone(), channel.to_string(), orderers.clone());
                let (stop, acked, failed, turn) =
                    (stop.clone(), acked.clone(), failed.clone(), turn.clone());
                tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) && started.elapsed() < LIMIT {
                        let (env, id) = match client.envelope(&channel, vec![5; tx_size]) {
                            Ok(e) => e,
                            Err(e) => {
                                failed.lock().expect("failed").push(format!("{e:#}"));
                                return;
                            }
                        };
                        let mut order = orderers.clone();
                        let first = turn.fetch_add(1, Ordering::Relaxed) % order.len().max(1);
                        order.rotate_left(first);
                        match client.order(&order, &env).await {
                            Ok(()) => acked.lock().expect("acked").push((Instant::now(), id)),
                            Err(e) => failed.lock().expect("failed").push(format!("{e:#}")),
                        }
                    }
                })
            })
            .collect();
        Self {
            stop,
            started,
            workers,
            acked,
            failed,
        }
    }

    /// Transactions acknowledged so far.
    pub fn acked(&self) -> usize {
        self.acked.lock().expect("acked").len()
    }

    /// Stops the workers once their transactions in flight are answered.
    pub async fn stop(self) -> LoadReport {
        self.stop.store(true, Ordering::Relaxed);
        for w in self.workers {
            let _ = w.await;
        }
        let acked = std::mem::take(&mut *self.acked.lock().expect("acked"));
        let failed = std::mem::take(&mut *self.failed.lock().expect("failed"));
        LoadReport {
            acked,
            failed,
            duration: self.started.elapsed(),
        }
    }
}
