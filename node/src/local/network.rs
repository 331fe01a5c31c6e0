//! A network as local processes (`raftnet up`): generated once under
//! `DATA_DIR/NETWORK/`, then started, joined and deployed idempotently — running `up` again
//! starts only what is not running and joins only what is not joined, so it also brings a
//! network back after a machine restart, with its data.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use super::daemon::Daemon;
use super::NodeKind;
use crate::client::Client;
use crate::network::ordering::{generate_network, NetworkLayout};
use crate::network::plan::NetworkPlan;
use crate::peer::lifecycle::{deploy_args, LIFECYCLE};
use crate::proto::peer::ChaincodeDefinition;

/// The layout of the network kept in its directory.
const LAYOUT_FILE: &str = "network.yaml";
/// The manifests of the last `raftnet up`, in the network's directory.
const MANIFESTS_FILE: &str = "manifests.yaml";
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// One admin call; something that accepts connections but never answers (another program
/// on the port) must not hang `up`.
const CALL_TIMEOUT: Duration = Duration::from_secs(3);

async fn timed<T>(f: impl std::future::Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    tokio::time::timeout(CALL_TIMEOUT, f)
        .await
        .unwrap_or_else(|_| Err(anyhow::anyhow!("no answer within {CALL_TIMEOUT:?}")))
}

pub struct LocalNetwork {
    pub layout: NetworkLayout,
    pub binary: PathBuf,
}

/// What `up` did, for the user.
#[derive(Debug, Default)]
pub struct UpReport {
    pub generated: bool,
    pub started: Vec<String>,
    pub joined: Vec<String>,
    pub deployed: Vec<String>,
}

impl LocalNetwork {
    /// The network kept under `data_dir`, if there is one.
    pub fn open(data_dir: &Path, binary: &Path) -> anyhow::Result<Option<Self>> {
        let Some(dir) = network_dir(data_dir)? else {
            return Ok(None);
        };
        let path = dir.join(LAYOUT_FILE);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let layout: NetworkLayout = serde_norway::from_str(&text)
            .with_context(|| format!("{} is not a network layout", path.display()))?;
        Ok(Some(Self {
            layout,
            binary: binary.to_path_buf(),
        }))
    }

    /// Like [`LocalNetwork::open`], with an error saying what to do when there is none.
    pub fn find(data_dir: &Path, binary: &Path) -> anyhow::Result<Self> {
        Self::open(data_dir, binary)?.with_context(|| {
            format!(
                "no network in {}: start one with `raftnet up -f FILE` (or pass --data-dir)",
                data_dir.display()
            )
        })
    }

    /// The network of `plan` under `data_dir`: generated on first use, reused after.
    pub fn create_or_open(
        data_dir: &Path,
        plan: &NetworkPlan,
        binary: &Path,
    ) -> anyhow::Result<(Self, bool)> {
        if let Some(net) = Self::open(data_dir, binary)? {
            if net.layout.name != plan.name {
                bail!(
                    "{} already holds network {}; stop it with `raftnet down --purge`, or use another --data-dir for {}",
                    data_dir.display(),
                    net.layout.name,
                    plan.name
                );
            }
            return Ok((net, false));
        }
        let dir = data_dir.join(&plan.name);
        let layout = generate_network(&dir, plan)
            .with_context(|| format!("generating network {} in {}", plan.name, dir.display()))?;
        let path = dir.join(LAYOUT_FILE);
        std::fs::write(&path, serde_norway::to_string(&layout)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
        Ok((
            Self {
                layout,
                binary: binary.to_path_buf(),
            },
            true,
        ))
    }

    /// Keeps the manifests the network was last brought up from (`raftnet get` shows their
    /// specs, as the API server shows what was applied).
    pub fn save_manifests(&self, manifests: &raftnet_crds::Manifests) -> anyhow::Result<()> {
        let mut text = String::new();
        for network in &manifests.networks {
            text.push_str("---\n");
            text.push_str(&serde_norway::to_string(network)?);
        }
        for channel in &manifests.channels {
            text.push_str("---\n");
            text.push_str(&serde_norway::to_string(channel)?);
        }
        let path = self.layout.dir.join(MANIFESTS_FILE);
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))
    }

    /// The manifests saved by [`LocalNetwork::save_manifests`], if any.
    pub fn manifests(&self) -> Option<raftnet_crds::Manifests> {
        let text = std::fs::read_to_string(self.layout.dir.join(MANIFESTS_FILE)).ok()?;
        raftnet_crds::load_manifests(&text).ok()
    }

    /// Every node: orderers first, then peers.
    pub fn daemons(&self) -> Vec<Daemon> {
        let orderers = self
            .layout
            .orderers
            .iter()
            .map(|o| Daemon::new(&o.name, NodeKind::Orderer, &o.config));
        let peers = self
            .layout
            .peers
            .iter()
            .map(|p| Daemon::new(&p.name, NodeKind::Peer, &p.config));
        orderers.chain(peers).collect()
    }

    pub fn daemon(&self, name: &str) -> anyhow::Result<Daemon> {
        self.daemons()
            .into_iter()
            .find(|d| d.name == name)
            .with_context(|| {
                let names: Vec<String> = self.daemons().into_iter().map(|d| d.name).collect();
                format!(
                    "network {} has no node {name:?}; its nodes are {}",
                    self.layout.name,
                    names.join(", ")
                )
            })
    }

    pub fn address(&self, name: &str) -> Option<&str> {
        let o = self.layout.orderers.iter().find(|o| o.name == name);
        let p = self.layout.peers.iter().find(|p| p.name == name);
        o.map(|o| o.address.as_str())
            .or_else(|| p.map(|p| p.address.as_str()))
    }

    /// The admin allowed on node `name`'s admin API.
    pub fn admin_for(&self, name: &str) -> anyhow::Result<Client> {
        if self.layout.orderers.iter().any(|o| o.name == name) {
            return Client::load(&self.layout.admin);
        }
        let peer = self
            .layout
            .peers
            .iter()
            .find(|p| p.name == name)
            .with_context(|| format!("no node {name}"))?;
        let (_, profile) = self
            .layout
            .org_admins
            .iter()
            .find(|(m, _)| *m == peer.msp_id)
            .with_context(|| format!("no admin for {}", peer.msp_id))?;
        Client::load(profile)
    }

    /// Starts what is not running, joins what is not joined, deploys what is not deployed.
    pub async fn up(&self) -> anyhow::Result<UpReport> {
        let mut report = UpReport {
            started: self.start_all().await?,
            ..UpReport::default()
        };
        for ch in &self.layout.channels {
            report.joined.extend(self.join_orderers(&ch.name).await?);
            self.wait_leader(&ch.name, READY_TIMEOUT).await?;
            report.joined.extend(self.join_peers(&ch.name).await?);
            for c in &ch.contracts {
                if self.deploy(&ch.name, c).await? {
                    report.deployed.push(format!("{}/{}", ch.name, c.name));
                }
            }
        }
        Ok(report)
    }

    /// Starts every node that is not running and waits until all answer; returns the names
    /// of those started.
    pub async fn start_all(&self) -> anyhow::Result<Vec<String>> {
        let mut started = Vec::new();
        for d in self.daemons() {
            if !d.is_running() {
                d.start(&self.binary)?;
                started.push(d.name.clone());
            }
        }
        for d in self.daemons() {
            self.wait_answering(&d).await?;
        }
        Ok(started)
    }

    fn channel(&self, name: &str) -> anyhow::Result<&crate::network::ordering::ChannelEntry> {
        self.layout
            .channels
            .iter()
            .find(|c| c.name == name)
            .with_context(|| format!("network {} has no channel {name}", self.layout.name))
    }

    /// Joins the channel's consenters that have not joined it; returns `node/channel`s.
    pub async fn join_orderers(&self, channel: &str) -> anyhow::Result<Vec<String>> {
        let ch = self.channel(channel)?;
        self.join(channel, &ch.consenters.clone()).await
    }

    /// Joins the peers of the channel's organisations that have not joined it.
    pub async fn join_peers(&self, channel: &str) -> anyhow::Result<Vec<String>> {
        let ch = self.channel(channel)?;
        let peers: Vec<String> = self
            .layout
            .peers
            .iter()
            .filter(|p| ch.orgs.contains(&p.msp_id))
            .map(|p| p.name.clone())
            .collect();
        self.join(channel, &peers).await
    }

    async fn join(&self, channel: &str, nodes: &[String]) -> anyhow::Result<Vec<String>> {
        let ch = self.channel(channel)?;
        let genesis = std::fs::read(&ch.genesis)
            .with_context(|| format!("cannot read {}", ch.genesis.display()))?;
        let mut joined = Vec::new();
        for name in nodes {
            let admin = self.admin_for(name)?;
            let addr = self.address(name).unwrap_or_default().to_string();
            let channels = timed(admin.list_channels(&addr))
                .await
                .with_context(|| format!("{name} at {addr}"))?;
            if !channels.iter().any(|c| c.channel_id == channel) {
                timed(admin.join(&addr, &genesis))
                    .await
                    .with_context(|| format!("joining {name} to {channel}"))?;
                joined.push(format!("{name}/{channel}"));
            }
        }
        Ok(joined)
    }

    async fn wait_answering(&self, d: &Daemon) -> anyhow::Result<()> {
        let admin = self.admin_for(&d.name)?;
        let addr = self.address(&d.name).unwrap_or_default().to_string();
        let started = Instant::now();
        loop {
            let answer = timed(admin.list_channels(&addr)).await;
            if answer.is_ok() {
                return Ok(());
            }
            if !d.is_running() {
                let log = std::fs::read_to_string(&d.log).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(5).collect();
                bail!(
                    "{} exited: {}",
                    d.name,
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                );
            }
            if started.elapsed() > READY_TIMEOUT {
                bail!(
                    "{} did not answer at {addr} within {READY_TIMEOUT:?} (is another program on that port?): {:#}",
                    d.name,
                    answer.err().unwrap_or_else(|| anyhow::anyhow!("?"))
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the channel's running consenters agree on a leader; returns its name.
    pub async fn wait_leader(&self, channel: &str, timeout: Duration) -> anyhow::Result<String> {
        let admin = Client::load(&self.layout.admin)?;
        let ch = self
            .layout
            .channels
            .iter()
            .find(|c| c.name == channel)
            .with_context(|| format!("no channel {channel}"))?;
        let started = Instant::now();
        loop {
            let mut leaders = Vec::new();
            let mut running = Vec::new();
            for name in &ch.consenters {
                if !self.daemon(name)?.is_running() {
                    continue;
                }
                running.push(name.clone());
                let addr = self.address(name).unwrap_or_default();
                if let Ok(s) = timed(admin.status(addr, channel)).await {
                    leaders.push(s.leader_name);
                } else {
                    leaders.push(String::new());
                }
            }
            // A stopped leader is still named by followers until they notice.
            if let Some(first) = leaders.first() {
                if running.contains(first) && leaders.iter().all(|l| l == first) {
                    return Ok(first.clone());
                }
            }
            if started.elapsed() > timeout {
                bail!("channel {channel} has no agreed Raft leader within {timeout:?} (saw {leaders:?})");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Deploys a contract unless it is deployed; Ok(true) when this call deployed it.
    pub async fn deploy(
        &self,
        channel: &str,
        c: &crate::network::plan::ContractPlan,
    ) -> anyhow::Result<bool> {
        let def = ChaincodeDefinition {
            name: c.name.clone(),
            version: c.version.clone(),
            contract: c.contract.clone(),
            endorsement_policy: c.endorsement_policy.clone(),
        };
        let args = deploy_args(&def, &c.init);
        let ch = self
            .layout
            .channels
            .iter()
            .find(|x| x.name == channel)
            .context("channel")?;
        // The org of the first peer deploys; one peer of every channel organisation endorses.
        let endorsers: Vec<String> = ch
            .orgs
            .iter()
            .filter_map(|m| self.layout.peers.iter().find(|p| &p.msp_id == m))
            .map(|p| p.address.clone())
            .collect();
        let Some(first) = self
            .layout
            .peers
            .iter()
            .find(|p| ch.orgs.contains(&p.msp_id))
        else {
            bail!("channel {channel} has no peers to deploy {} on", c.name);
        };
        let (_, admin_profile) = self
            .layout
            .org_admins
            .iter()
            .find(|(m, _)| *m == first.msp_id)
            .context("org admin")?;
        let admin = Client::load(admin_profile)?;
        let orderers: Vec<String> = ch
            .consenters
            .iter()
            .filter_map(|n| self.address(n).map(String::from))
            .collect();
        let started = Instant::now();
        loop {
            // Peers may still be catching up with the channel after joining.
            match admin
                .submit_transaction(
                    &endorsers,
                    &orderers,
                    channel,
                    LIFECYCLE,
                    &args,
                    READY_TIMEOUT,
                )
                .await
            {
                Ok(o) if o.is_valid() => return Ok(true),
                Ok(o) => bail!(
                    "deploying {} on {channel}: committed as {}",
                    c.name,
                    o.code.as_str_name()
                ),
                Err(e) if format!("{e:#}").contains("already deployed") => return Ok(false),
                Err(e) if started.elapsed() < READY_TIMEOUT => {
                    tracing::debug!("deploy of {} not yet possible: {e:#}", c.name);
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => return Err(e.context(format!("deploying {} on {channel}", c.name))),
            }
        }
    }

    /// Stops every node (SIGTERM, then SIGKILL); with `purge`, deletes the network's files.
    pub fn down(&self, purge: bool) -> anyhow::Result<Vec<String>> {
        let mut stopped = Vec::new();
        for d in self.daemons() {
            if d.terminate(Duration::from_secs(5))? {
                stopped.push(d.name.clone());
            }
        }
        if purge {
            std::fs::remove_dir_all(&self.layout.dir)
                .with_context(|| format!("cannot remove {}", self.layout.dir.display()))?;
        }
        Ok(stopped)
    }
}

/// The one network directory under `data_dir` (a data dir holds one network).
fn network_dir(data_dir: &Path) -> anyhow::Result<Option<PathBuf>> {
    if !data_dir.is_dir() {
        return Ok(None);
    }
    let mut found = Vec::new();
    for entry in std::fs::read_dir(data_dir)
        .with_context(|| format!("cannot read {}", data_dir.display()))?
    {
        let dir = entry?.path();
        if dir.join(LAYOUT_FILE).is_file() {
            found.push(dir);
        }
    }
    match found.len() {
        0 => Ok(None),
        1 => Ok(found.pop()),
        _ => bail!(
            "{} holds several networks ({}); pass --data-dir DIR/NETWORK's parent for one of them",
            data_dir.display(),
            found
                .iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}
