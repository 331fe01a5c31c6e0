//! Outbound Raft traffic: one long-lived `Step` stream per remote orderer, shared by all
//! channels. Messages to a peer that is down are dropped (Raft resends), and the peer's state
//! is visible so that a chain can notice a dead leader at once instead of waiting out an
//! election timeout. Every dial is pinned: the server must present the certificate a channel's
//! configuration lists for the consenter at that address.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;

use crate::pinned::Pins;
use crate::proto::cluster::{cluster_client::ClusterClient, StepRequest};
use crate::tls::TlsMaterial;

const QUEUE: usize = 8192;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerState {
    Connecting,
    Connected,
    /// Down since `since` (the stream broke or the dial failed). `refused`: nothing listens
    /// at the peer's address any more, so its process is gone, not just the stream.
    Down {
        since: Instant,
        refused: bool,
    },
}

struct Peer {
    queue: mpsc::Sender<StepRequest>,
    state: Arc<Mutex<PeerState>>,
    channel: Channel,
}

pub struct Transport {
    tls: TlsMaterial,
    runtime: tokio::runtime::Handle,
    peers: Mutex<HashMap<String, Arc<Peer>>>,
    /// The consenter certificates each address must present (see `crate::pinned`).
    pins: Arc<Pins>,
}

impl Transport {
    /// The certificate this orderer dials with (PEM).
    pub fn tls_cert_pem(&self) -> &[u8] {
        &self.tls.cert_pem
    }

    pub fn new(tls: TlsMaterial, runtime: tokio::runtime::Handle) -> Self {
        Self {
            tls,
            runtime,
            peers: Mutex::new(HashMap::new()),
            pins: Arc::default(),
        }
    }

    /// Accepts `cert_pem`, a consenter's certificate from a channel's configuration, from the
    /// server at `addr`: nothing else is accepted there.
    pub fn pin(&self, addr: &str, cert_pem: &[u8]) -> anyhow::Result<()> {
        self.pins.pin(addr, cert_pem)
    }

    pub fn tls(&self) -> &TlsMaterial {
        &self.tls
    }

    fn peer(&self, addr: &str) -> anyhow::Result<Arc<Peer>> {
        let mut peers = self.peers.lock().expect("peers lock");
        if let Some(p) = peers.get(addr) {
            return Ok(p.clone());
        }
        let channel = {
            let _guard = self.runtime.enter();
            crate::pinned::channel(&self.tls, addr, self.pins.clone())?
        };
        let (queue, rx) = mpsc::channel(QUEUE);
        let state = Arc::new(Mutex::new(PeerState::Connecting));
        self.runtime.spawn(run_stream(
            channel.clone(),
            rx,
            state.clone(),
            addr.to_string(),
        ));
        let peer = Arc::new(Peer {
            queue,
            state,
            channel,
        });
        peers.insert(addr.to_string(), peer.clone());
        Ok(peer)
    }

    /// Queues a Raft message for `addr`. False when the peer is known to be down or its queue
    /// is full: the caller reports it unreachable to Raft.
    pub fn send(&self, addr: &str, msg: StepRequest) -> bool {
        let Ok(peer) = self.peer(addr) else {
            return false;
        };
        let down = matches!(*peer.state.lock().expect("state"), PeerState::Down { .. });
        peer.queue.try_send(msg).is_ok() && !down
    }

    pub fn state(&self, addr: &str) -> PeerState {
        match self.peer(addr) {
            Ok(p) => *p.state.lock().expect("state"),
            Err(_) => PeerState::Down {
                since: Instant::now(),
                refused: false,
            },
        }
    }

    /// A channel to `addr` for unary calls and block pulling (shares the connection).
    pub fn channel(&self, addr: &str) -> anyhow::Result<Channel> {
        Ok(self.peer(addr)?.channel.clone())
    }
}

fn set(state: &Mutex<PeerState>, s: PeerState) {
    *state.lock().expect("state") = s;
}

/// Whether plain TCP dials to `addr` are refused (no process listens there). Tried a few
/// times: a dying process's listener can outlive its connections by a moment.
async fn refused(addr: &str) -> bool {
    for _ in 0..5 {
        let dial = tokio::time::timeout(
            Duration::from_millis(300),
            tokio::net::TcpStream::connect(addr),
        )
        .await;
        if matches!(dial, Ok(Err(ref e)) if e.kind() == std::io::ErrorKind::ConnectionRefused) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

async fn run_stream(
    channel: Channel,
    mut rx: mpsc::Receiver<StepRequest>,
    state: Arc<Mutex<PeerState>>,
    addr: String,
) {
    let mut backoff = Duration::from_millis(50);
    loop {
        // Wait for something to send before dialling.
        let Some(first) = rx.recv().await else { return };
        let (tx, stream_rx) = mpsc::channel::<StepRequest>(QUEUE);
        let _ = tx.try_send(first);
        let mut client = ClusterClient::new(channel.clone());
        let mut call = Box::pin(async move { client.step(ReceiverStream::new(stream_rx)).await });
        // Marked connected only once the stream has lived a while: a dial to a dead peer
        // fails within the connect timeout.
        let settle = tokio::time::sleep(Duration::from_millis(1500));
        tokio::pin!(settle);
        let mut settled = false;
        let broke = loop {
            tokio::select! {
                res = &mut call => break res.err(),
                _ = &mut settle, if !settled => {
                    settled = true;
                    set(&state, PeerState::Connected);
                    backoff = Duration::from_millis(50);
                }
                msg = rx.recv() => match msg {
                    None => return,
                    Some(m) => if tx.send(m).await.is_err() { break None },
                },
            }
        };
        // The outage counts from this break: a chain compares it with its last contact.
        let since = Instant::now();
        set(
            &state,
            PeerState::Down {
                since,
                refused: false,
            },
        );
        tracing::debug!(peer = %addr, error = ?broke, "cluster stream to peer ended");
        if refused(&addr).await {
            set(
                &state,
                PeerState::Down {
                    since,
                    refused: true,
                },
            );
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_millis(500));
        // Messages queued while down are stale: Raft will resend what matters.
        while rx.try_recv().is_ok() {}
    }
}
