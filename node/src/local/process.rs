//! Starting, killing and restarting node processes: orderers and peers.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::client::Client;
use crate::network::ordering::OrderingLayout;

pub use crate::network::NodeKind;

impl NodeKind {
    /// The `raftnet-node` subcommand that runs this kind of node.
    pub fn subcommand(&self) -> &'static str {
        match self {
            NodeKind::Orderer => "orderer",
            NodeKind::Peer => "peer",
        }
    }
}

pub struct LocalNode {
    pub name: String,
    pub kind: NodeKind,
    pub address: String,
    pub config: PathBuf,
    pub log: PathBuf,
    child: Option<Child>,
}

impl LocalNode {
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// The address of its operations endpoint (`/healthz`, `/readyz`, `/metrics`), from its
    /// config.
    pub fn operations_address(&self) -> anyhow::Result<String> {
        crate::config::NodeConfig::load(&self.config)?
            .operations_address
            .with_context(|| format!("{} has no operationsAddress", self.name))
    }
}

/// The orderers and peers of a generated layout, as child processes of this one.
pub struct LocalCluster {
    pub layout: OrderingLayout,
    pub binary: PathBuf,
    /// The orderers first, in consenter id order (orderer N is node N-1), then the peers in
    /// `layout.peers` order.
    pub nodes: Vec<LocalNode>,
}

/// The command that runs a node from its config, appending its output to `log`; the log
/// level comes from `RAFTNET_NODE_LOG` (default info).
pub fn node_command(
    binary: &Path,
    kind: NodeKind,
    config: &Path,
    log: &Path,
) -> anyhow::Result<Command> {
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("cannot open {}", log.display()))?;
    let mut cmd = Command::new(binary);
    cmd.arg(kind.subcommand())
        .arg("--config")
        .arg(config)
        .env(
            "RUST_LOG",
            std::env::var("RAFTNET_NODE_LOG").unwrap_or_else(|_| "info".into()),
        )
        .stdin(Stdio::null())
        .stdout(file.try_clone()?)
        .stderr(file);
    Ok(cmd)
}

/// Where `raftnet-node` is: beside the running executable (or its parent, for test binaries
/// under target/debug/deps).
pub fn node_binary() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    for dir in exe.ancestors().skip(1).take(2) {
        let candidate = dir.join("raftnet-node");
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    bail!(
        "raftnet-node not found beside {}: build it with `cargo build --bins`",
        exe.display()
    )
}

impl LocalCluster {
    pub fn new(layout: OrderingLayout, binary: &Path) -> Self {
        let node = |name: &str, kind, address: &str, config: &Path| LocalNode {
            name: name.to_string(),
            kind,
            address: address.to_string(),
            config: config.to_path_buf(),
            log: config.with_file_name("node.log"),
            child: None,
        };
        let orderers = layout
            .orderers
            .iter()
            .map(|o| node(&o.name, NodeKind::Orderer, &o.address, &o.config));
        let peers = layout
            .peers
            .iter()
            .map(|p| node(&p.name, NodeKind::Peer, &p.address, &p.config));
        let nodes = orderers.chain(peers).collect();
        Self {
            layout,
            binary: binary.to_path_buf(),
            nodes,
        }
    }

    pub fn orderer_count(&self) -> usize {
        self.layout.orderers.len()
    }

    /// The index in `nodes` of the `p`-th peer of `layout.peers`.
    pub fn peer_index(&self, p: usize) -> usize {
        assert!(
            p < self.layout.peers.len(),
            "peer {p} requested, but the layout has {} peers",
            self.layout.peers.len()
        );
        self.orderer_count() + p
    }

    /// A client acting as the admin of application organisation `msp_id` (the only admin a
    /// peer of that organisation accepts).
    pub fn admin_of(&self, msp_id: &str) -> anyhow::Result<Client> {
        let Some((_, profile)) = self.layout.org_admins.iter().find(|(m, _)| m == msp_id) else {
            let known: Vec<&str> = self
                .layout
                .org_admins
                .iter()
                .map(|(m, _)| m.as_str())
                .collect();
            bail!(
                "{msp_id} is not an application organisation of this network (those are {known:?})"
            );
        };
        Client::load(profile).with_context(|| format!("loading the admin of {msp_id}"))
    }

    pub fn start(&mut self, i: usize) -> anyhow::Result<()> {
        let node = &mut self.nodes[i];
        if node.is_running() {
            return Ok(());
        }
        let child = node_command(&self.binary, node.kind, &node.config, &node.log)?
            .spawn()
            .with_context(|| format!("cannot start {}", self.binary.display()))?;
        node.child = Some(child);
        Ok(())
    }

    /// Starts every node (orderers and peers) that is not running.
    pub fn start_all(&mut self) -> anyhow::Result<()> {
        for i in 0..self.nodes.len() {
            self.start(i)?;
        }
        Ok(())
    }

    /// SIGKILL, as a crash: no shutdown path runs.
    pub fn kill(&mut self, i: usize) -> anyhow::Result<()> {
        if let Some(mut child) = self.nodes[i].child.take() {
            child.kill()?; // SIGKILL on Unix
            child.wait()?;
        }
        Ok(())
    }

    /// SIGTERM, then waits up to `timeout` for a clean exit (SIGKILL after that, and an error).
    pub fn terminate(
        &mut self,
        i: usize,
        timeout: Duration,
    ) -> anyhow::Result<std::process::ExitStatus> {
        let Some(mut child) = self.nodes[i].child.take() else {
            bail!("{} is not running", self.nodes[i].name);
        };
        let pid = libc::pid_t::try_from(child.id())?;
        // SAFETY: plain kill(2) on the PID of a child we started and have not reaped.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let started = Instant::now();
        loop {
            if let Some(status) = child.try_wait()? {
                return Ok(status);
            }
            if started.elapsed() > timeout {
                child.kill()?;
                child.wait()?;
                bail!(
                    "{} did not stop within {timeout:?} of SIGTERM",
                    self.nodes[i].name
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn kill_all(&mut self) {
        for i in 0..self.nodes.len() {
            let _ = self.kill(i);
        }
    }

    /// Waits until node `i` answers on its admin API.
    pub async fn wait_ready(
        &mut self,
        i: usize,
        admin: &Client,
        timeout: Duration,
    ) -> anyhow::Result<()> {
        let started = Instant::now();
        loop {
            if !self.nodes[i].is_running() {
                let log = std::fs::read_to_string(&self.nodes[i].log).unwrap_or_default();
                bail!("{} exited; its log:\n{log}", self.nodes[i].name);
            }
            if admin.list_channels(&self.nodes[i].address).await.is_ok() {
                return Ok(());
            }
            if started.elapsed() > timeout {
                bail!("{} did not answer within {timeout:?}", self.nodes[i].name);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Starts every orderer, joins each to the channel with `admin` (the orderer
    /// organisation's) and waits for a leader. Peers are left to `start_peers`.
    pub async fn bootstrap(&mut self, admin: &Client, timeout: Duration) -> anyhow::Result<u64> {
        for i in 0..self.orderer_count() {
            self.start(i)?;
        }
        let genesis = self.genesis()?;
        for i in 0..self.orderer_count() {
            self.wait_ready(i, admin, timeout).await?;
            admin
                .join(&self.nodes[i].address, &genesis)
                .await
                .with_context(|| format!("joining {} to the channel", self.nodes[i].name))?;
        }
        self.wait_leader(admin, &[], timeout).await
    }

    /// Starts every peer and joins it to the channel, each with its own organisation's
    /// admin. The orderers should be up (`bootstrap`) so that peers can pull blocks.
    pub async fn start_peers(&mut self, timeout: Duration) -> anyhow::Result<()> {
        let genesis = self.genesis()?;
        let admins = self
            .layout
            .org_admins
            .iter()
            .map(|(msp_id, _)| Ok((msp_id.clone(), self.admin_of(msp_id)?)))
            .collect::<anyhow::Result<Vec<(String, Client)>>>()?;
        let peer_count = self.layout.peers.len();
        for p in 0..peer_count {
            self.start(self.peer_index(p))?;
        }
        for p in 0..peer_count {
            let i = self.peer_index(p);
            let msp_id = &self.layout.peers[p].msp_id;
            let Some((_, admin)) = admins.iter().find(|(m, _)| m == msp_id) else {
                bail!(
                    "{} belongs to {msp_id}, which has no admin in the layout",
                    self.nodes[i].name
                );
            };
            self.wait_ready(i, admin, timeout).await?;
            admin
                .join(&self.nodes[i].address, &genesis)
                .await
                .with_context(|| format!("joining {} to the channel", self.nodes[i].name))?;
        }
        Ok(())
    }

    fn genesis(&self) -> anyhow::Result<Vec<u8>> {
        let path = &self.layout.genesis;
        std::fs::read(path)
            .with_context(|| format!("cannot read the genesis block {}", path.display()))
    }

    /// Waits until the running orderers (all but `down`) agree on a leader that is not in
    /// `down`. Peers take no part in Raft and are not asked.
    pub async fn wait_leader(
        &self,
        admin: &Client,
        down: &[usize],
        timeout: Duration,
    ) -> anyhow::Result<u64> {
        let started = Instant::now();
        loop {
            let mut leaders = Vec::new();
            for (i, n) in self.nodes.iter().enumerate() {
                if n.kind != NodeKind::Orderer || down.contains(&i) {
                    continue;
                }
                leaders.push(
                    admin
                        .status(&n.address, &self.layout.channel)
                        .await
                        .map(|s| s.leader_id)
                        .unwrap_or(0),
                );
            }
            if let Some(&l) = leaders.first() {
                let down_ids: Vec<u64> = down.iter().map(|&i| i as u64 + 1).collect();
                if l != 0 && !down_ids.contains(&l) && leaders.iter().all(|&x| x == l) {
                    return Ok(l);
                }
            }
            if started.elapsed() > timeout {
                bail!("no agreed leader within {timeout:?} (saw {leaders:?})");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn index_of(&self, consenter_id: u64) -> usize {
        consenter_id as usize - 1
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        self.kill_all();
    }
}
