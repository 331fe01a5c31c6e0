//! The channels a peer has joined: joining from a genesis block, and reopening joined
//! channels (with their ledgers) after a restart.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use anyhow::Context;
use prost::Message;

use super::channel::PeerChannel;
use crate::identity::{MspSet, SigningIdentity};
use crate::ledger::channel_config;
use crate::ledger::check_config;
use crate::orderer::registrar::JoinError;
use crate::proto::common::Block;
use crate::tls::TlsMaterial;

const GENESIS_FILE: &str = "genesis.block";

pub struct PeerRegistrar {
    pub name: String,
    pub msp_id: String,
    pub signer: Arc<SigningIdentity>,
    /// The peer's own organisation, for checking admin TLS certificates.
    pub own_org: MspSet,
    data_dir: PathBuf,
    tls: TlsMaterial,
    runtime: tokio::runtime::Handle,
    channels: RwLock<HashMap<String, Arc<PeerChannel>>>,
    joining: std::sync::Mutex<()>,
}

impl PeerRegistrar {
    /// The peer's TLS certificate (PEM).
    pub fn tls_cert_pem(&self) -> Vec<u8> {
        self.tls.cert_pem.clone()
    }

    pub fn open(
        name: &str,
        signer: SigningIdentity,
        data_dir: PathBuf,
        tls: TlsMaterial,
        admin_root_pem: Vec<u8>,
        runtime: tokio::runtime::Handle,
    ) -> anyhow::Result<Arc<Self>> {
        let msp_id = signer.msp_id().to_string();
        let own_org = crate::adminapi::own_org(&msp_id, admin_root_pem)?;
        let reg = Arc::new(Self {
            name: name.to_string(),
            msp_id,
            signer: Arc::new(signer),
            own_org,
            data_dir,
            tls,
            runtime,
            channels: RwLock::new(HashMap::new()),
            joining: std::sync::Mutex::new(()),
        });
        let dir = reg.data_dir.join("channels");
        if dir.is_dir() {
            for entry in std::fs::read_dir(&dir)? {
                let genesis = entry?.path().join(GENESIS_FILE);
                if !genesis.is_file() {
                    continue;
                }
                // One broken channel must not keep the peer (and its other channels) down.
                let opened = std::fs::read(&genesis)
                    .map_err(anyhow::Error::from)
                    .and_then(|bytes| {
                        Block::decode(&bytes[..])
                            .with_context(|| format!("{} is corrupt", genesis.display()))
                    })
                    .and_then(|block| reg.start(block));
                if let Err(e) = opened {
                    tracing::error!("cannot open the channel of {}: {e:#}", genesis.display());
                }
            }
        }
        Ok(reg)
    }

    pub fn get(&self, channel: &str) -> Option<Arc<PeerChannel>> {
        self.channels
            .read()
            .expect("channels")
            .get(channel)
            .cloned()
    }

    pub fn list(&self) -> Vec<Arc<PeerChannel>> {
        let mut v: Vec<_> = self
            .channels
            .read()
            .expect("channels")
            .values()
            .cloned()
            .collect();
        v.sort_by(|a, b| a.channel_id().cmp(b.channel_id()));
        v
    }

    fn start(&self, genesis: Block) -> anyhow::Result<Arc<PeerChannel>> {
        let cfg = channel_config(&genesis).map_err(anyhow::Error::msg)?;
        let dir = self.data_dir.join("channels").join(&cfg.channel_id);
        let id = cfg.channel_id.clone();
        let ch = PeerChannel::open(cfg, &dir, &genesis)?;
        ch.start(self.tls.clone(), self.signer.clone(), &self.runtime);
        tracing::info!(channel = %id, peer = %self.name, height = ch.store.height(), "channel open");
        self.channels
            .write()
            .expect("channels")
            .insert(id, ch.clone());
        Ok(ch)
    }

    /// Joins the channel whose genesis block this is.
    pub fn join(&self, genesis: Block) -> Result<Arc<PeerChannel>, JoinError> {
        // Two joins of one channel at once must not both open its ledger.
        let _one_at_a_time = self.joining.lock().expect("joining");
        let cfg = channel_config(&genesis).map_err(JoinError::Invalid)?;
        check_config(&cfg).map_err(|e| JoinError::Invalid(format!("{e:#}")))?;
        if self.get(&cfg.channel_id).is_some() {
            return Err(JoinError::AlreadyJoined(cfg.channel_id));
        }
        if !cfg.organizations.iter().any(|o| o.msp_id == self.msp_id) {
            return Err(JoinError::Invalid(format!(
                "this peer's organisation {} is not a member of channel {}",
                self.msp_id, cfg.channel_id
            )));
        }
        let dir = self.data_dir.join("channels").join(&cfg.channel_id);
        let encoded = genesis.encode_to_vec();
        let ch = self.start(genesis).map_err(JoinError::Internal)?;
        // Written last, and by rename, so that a failed join leaves nothing to reopen.
        let tmp = dir.join(format!("{GENESIS_FILE}.tmp"));
        std::fs::write(&tmp, encoded)
            .and_then(|_| std::fs::rename(&tmp, dir.join(GENESIS_FILE)))
            .map_err(|e| JoinError::Internal(e.into()))?;
        Ok(ch)
    }

    pub fn shutdown(&self) {
        for ch in self.list() {
            ch.stop();
        }
        for ch in self.list() {
            ch.stop_and_wait(std::time::Duration::from_secs(5));
        }
    }
}

impl crate::operations::Readiness for PeerRegistrar {
    fn channels(&self) -> Vec<crate::operations::ChannelHealth> {
        self.list()
            .iter()
            .map(|c| {
                let s = c.status();
                if s.commit_error.is_empty() {
                    crate::operations::ChannelHealth::running(c.channel_id())
                } else {
                    crate::operations::ChannelHealth {
                        channel: c.channel_id().to_string(),
                        state: "commit-failing".into(),
                        reason: Some(format!("cannot commit {}", s.commit_error)),
                    }
                }
            })
            .collect()
    }
}
