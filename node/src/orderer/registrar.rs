//! The channels an orderer serves: joining new ones from their genesis block (channel
//! participation, no system channel) and reopening joined ones after a restart.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use anyhow::Context;
use prost::Message;

use super::chain::{ChainHandle, OrdererParts};
use super::forwarder::Forwarder;
use super::transport::Transport;
use crate::identity::{MspSet, SigningIdentity};
use crate::ledger::{channel_config, check_config};
use crate::proto::common::{Block, ChannelConfig};
use crate::tls::{pem_to_der, TlsMaterial};

pub struct Registrar {
    pub name: String,
    pub msp_id: String,
    data_dir: PathBuf,
    tls_der: Vec<u8>,
    pub transport: Arc<Transport>,
    pub forwarder: Forwarder,
    runtime: tokio::runtime::Handle,
    chains: RwLock<HashMap<String, Arc<ChainHandle>>>,
    /// Channels found on disk at start-up that could not be opened, with why: reported in
    /// their status, never fatal for the others.
    broken: RwLock<HashMap<String, String>>,
    /// Held by a join: two joins of one channel at once must not both start its chain.
    joining: Mutex<()>,
    /// The node's own organisation, for checking admin certificates.
    pub own_org: MspSet,
    /// The orderer's signing identity (OU=orderer): it signs the blocks it creates.
    pub signer: Arc<SigningIdentity>,
    /// Set on SIGTERM once leadership is handed over: new broadcasts are refused.
    stopping: AtomicBool,
    /// Broadcasts taken and not yet answered.
    broadcasts: AtomicUsize,
    broadcasts_done: tokio::sync::Notify,
}

/// Held while a broadcast is answered (see [`Registrar::admit_broadcast`]).
pub struct InFlight<'a>(&'a Registrar);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if self.0.broadcasts.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.broadcasts_done.notify_waiters();
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    #[error("channel {0} is already joined")]
    AlreadyJoined(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0:#}")]
    Internal(anyhow::Error),
}

const GENESIS_FILE: &str = "genesis.block";

impl Registrar {
    pub fn open(
        name: &str,
        msp_id: &str,
        data_dir: PathBuf,
        tls: TlsMaterial,
        admin_root_pem: Vec<u8>,
        runtime: tokio::runtime::Handle,
        signer: SigningIdentity,
    ) -> anyhow::Result<Arc<Self>> {
        let tls_der = pem_to_der(&tls.cert_pem).context("TLS certificate is not PEM")?;
        let own_org = crate::adminapi::own_org(msp_id, admin_root_pem)?;
        let reg = Arc::new(Self {
            name: name.to_string(),
            msp_id: msp_id.to_string(),
            data_dir,
            tls_der,
            transport: Arc::new(Transport::new(tls, runtime.clone())),
            forwarder: Forwarder::default(),
            runtime,
            chains: RwLock::new(HashMap::new()),
            broken: RwLock::new(HashMap::new()),
            joining: Mutex::new(()),
            own_org,
            signer: Arc::new(signer),
            stopping: AtomicBool::new(false),
            broadcasts: AtomicUsize::new(0),
            broadcasts_done: tokio::sync::Notify::new(),
        });
        let channels = reg.data_dir.join("channels");
        if channels.is_dir() {
            for entry in std::fs::read_dir(&channels)? {
                let dir = entry?.path();
                let genesis = dir.join(GENESIS_FILE);
                if !genesis.is_file() {
                    // A join that never finished: no marker, nothing to reopen.
                    continue;
                }
                // One broken channel must not keep the orderer (and its other channels) down.
                if let Err(e) = reg.reopen(&genesis) {
                    let channel = dir.file_name().unwrap_or_default().to_string_lossy();
                    let reason = format!("{e:#}");
                    tracing::error!(channel = %channel, error = %reason, "cannot open the channel; serving the others");
                    reg.broken
                        .write()
                        .expect("broken")
                        .insert(channel.into_owned(), reason);
                }
            }
        }
        Ok(reg)
    }

    /// Starts the chain of a channel joined before, from its marker file.
    fn reopen(&self, genesis: &std::path::Path) -> anyhow::Result<()> {
        let bytes = std::fs::read(genesis)?;
        let block = Block::decode(&bytes[..])
            .with_context(|| format!("{} is corrupt", genesis.display()))?;
        let cfg = channel_config(&block).map_err(anyhow::Error::msg)?;
        self.start_chain(cfg, None)?;
        Ok(())
    }

    /// Why a channel on disk could not be opened at start-up, if it could not.
    pub fn broken(&self, channel: &str) -> Option<String> {
        self.broken.read().expect("broken").get(channel).cloned()
    }

    /// The channels that could not be opened at start-up, by name.
    pub fn broken_channels(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .broken
            .read()
            .expect("broken")
            .keys()
            .cloned()
            .collect();
        v.sort();
        v
    }

    /// The node's TLS certificate (DER).
    pub fn tls_der(&self) -> &[u8] {
        &self.tls_der
    }

    pub fn get(&self, channel: &str) -> Option<Arc<ChainHandle>> {
        self.chains.read().expect("chains").get(channel).cloned()
    }

    pub fn list(&self) -> Vec<Arc<ChainHandle>> {
        let mut v: Vec<_> = self
            .chains
            .read()
            .expect("chains")
            .values()
            .cloned()
            .collect();
        v.sort_by(|a, b| a.channel_id().cmp(b.channel_id()));
        v
    }

    fn my_consenter_id(&self, cfg: &ChannelConfig) -> Option<u64> {
        cfg.consenters
            .iter()
            .find(|c| pem_to_der(&c.tls_cert_pem).as_deref() == Some(&self.tls_der[..]))
            .map(|c| c.id)
    }

    fn start_chain(
        &self,
        cfg: ChannelConfig,
        genesis: Option<&Block>,
    ) -> anyhow::Result<Arc<ChainHandle>> {
        let id = self.my_consenter_id(&cfg).with_context(|| {
            format!(
                "this orderer's TLS certificate is not among the consenters of channel {}",
                cfg.channel_id
            )
        })?;
        let dir = self.data_dir.join("channels").join(&cfg.channel_id);
        let channel = cfg.channel_id.clone();
        let parts = OrdererParts {
            name: self.name.clone(),
            transport: self.transport.clone(),
            runtime: self.runtime.clone(),
            signer: self.signer.clone(),
        };
        let chain = ChainHandle::start(cfg, id, &parts, &dir, genesis)?;
        self.chains
            .write()
            .expect("chains")
            .insert(channel, chain.clone());
        Ok(chain)
    }

    /// Joins the channel whose genesis block this is.
    pub fn join(&self, genesis: Block) -> Result<Arc<ChainHandle>, JoinError> {
        let _one_at_a_time = self.joining.lock().expect("joining");
        let cfg = channel_config(&genesis).map_err(JoinError::Invalid)?;
        check_config(&cfg).map_err(|e| JoinError::Invalid(format!("{e:#}")))?;
        if self.get(&cfg.channel_id).is_some() {
            return Err(JoinError::AlreadyJoined(cfg.channel_id));
        }
        if let Some(reason) = self.broken(&cfg.channel_id) {
            let dir = self.data_dir.join("channels").join(&cfg.channel_id);
            return Err(JoinError::Invalid(format!(
                "channel {} is on this orderer but could not be opened at start-up ({reason}); move {} aside and restart the orderer to join it afresh",
                cfg.channel_id,
                dir.display()
            )));
        }
        if self.my_consenter_id(&cfg).is_none() {
            return Err(JoinError::Invalid(format!(
                "this orderer ({}) is not a consenter of channel {}: its TLS certificate is not in the consenter list",
                self.name, cfg.channel_id
            )));
        }
        let dir = self.data_dir.join("channels").join(&cfg.channel_id);
        let chain = self
            .start_chain(cfg, Some(&genesis))
            .map_err(JoinError::Internal)?;
        // The marker that reopens the channel after a restart, written last and durably: a
        // crash before it leaves a ledger that a new join picks up, never a marker without one.
        write_durably(&dir, GENESIS_FILE, &genesis.encode_to_vec())
            .map_err(|e| JoinError::Internal(e.context("writing the channel's genesis block")))?;
        Ok(chain)
    }

    /// Takes a broadcast, unless the orderer is stopping.
    pub fn admit_broadcast(&self) -> Option<InFlight<'_>> {
        // SeqCst on both sides: either the stopping orderer sees this broadcast counted, or
        // this broadcast sees the orderer stopping.
        self.broadcasts.fetch_add(1, Ordering::SeqCst);
        let guard = InFlight(self);
        (!self.stopping.load(Ordering::SeqCst)).then_some(guard)
    }

    /// A planned stop (SIGTERM): hands over the leadership of every channel this orderer
    /// leads (each bounded by two election timeouts), then refuses new broadcasts and waits
    /// for those in flight to be answered. Returns before the chains stop.
    pub async fn prepare_stop(&self) {
        let chains = self.list();
        let handoffs = chains
            .iter()
            .filter(|c| c.status().role == crate::proto::admin::Role::Leader)
            .map(|c| async move {
                // The chain answers within two election timeouts, unless its thread is busy
                // elsewhere (catching up): never wait longer than that for it.
                let bound = c.election_timeout() * 2 + Duration::from_secs(1);
                match tokio::time::timeout(bound, c.transfer_leadership(None)).await {
                    Ok(Ok(Ok(t))) => tracing::info!(
                        channel = c.channel_id(),
                        to = t.to,
                        ms = t.elapsed.as_millis() as u64,
                        "handed leadership over before stopping"
                    ),
                    Ok(Ok(Err(e))) => tracing::warn!(
                        channel = c.channel_id(),
                        "could not hand leadership over before stopping: {e}"
                    ),
                    Ok(Err(_)) => {}
                    Err(_) => tracing::warn!(
                        channel = c.channel_id(),
                        "no answer to the leadership handoff within {bound:?}; stopping anyway"
                    ),
                }
            });
        futures::future::join_all(handoffs).await;
        self.stopping.store(true, Ordering::SeqCst);
        // Those in flight ride through a leadership change for up to two election timeouts.
        let longest = chains
            .iter()
            .map(|c| c.election_timeout() * 2)
            .max()
            .unwrap_or_default()
            + Duration::from_secs(1);
        let drained = tokio::time::timeout(longest, async {
            loop {
                let done = self.broadcasts_done.notified();
                if self.broadcasts.load(Ordering::SeqCst) == 0 {
                    return;
                }
                done.await;
            }
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                left = self.broadcasts.load(Ordering::Acquire),
                "stopping with broadcasts unanswered"
            );
        }
    }

    pub fn shutdown(&self) {
        for chain in self.list() {
            chain.stop();
        }
    }
}

impl crate::operations::Readiness for Registrar {
    fn channels(&self) -> Vec<crate::operations::ChannelHealth> {
        self.list()
            .iter()
            .map(|c| {
                let s = c.status();
                if s.is_halted() {
                    crate::operations::ChannelHealth {
                        channel: c.channel_id().to_string(),
                        state: "halted".into(),
                        reason: Some(format!("halted: {}", s.halt_error)),
                    }
                } else {
                    crate::operations::ChannelHealth::running(c.channel_id())
                }
            })
            .collect()
    }
}

/// Writes `dir/name` through a temporary file, fsync and rename, then syncs the directory: after
/// a crash the file is either absent or whole.
fn write_durably(dir: &std::path::Path, name: &str, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let tmp = dir.join(format!("{name}.tmp"));
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, dir.join(name))?;
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}
