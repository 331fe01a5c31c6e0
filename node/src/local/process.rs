//! Starting, killing and restarting node processes.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::client::Client;
use crate::network::ordering::OrderingLayout;

pub struct LocalNode {
    pub name: String,
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
}

/// The orderers of a generated layout, as child processes of this one.
pub struct LocalCluster {
    pub layout: OrderingLayout,
    pub binary: PathBuf,
    pub nodes: Vec<LocalNode>,
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
        let nodes = layout
            .orderers
            .iter()
            .map(|o| LocalNode {
                name: o.name.clone(),
                address: o.address.clone(),
                config: o.config.clone(),
                log: o.config.with_file_name("node.log"),
                child: None,
            })
            .collect();
        Self {
            layout,
            binary: binary.to_path_buf(),
            nodes,
        }
    }

    pub fn start(&mut self, i: usize) -> anyhow::Result<()> {
        let node = &mut self.nodes[i];
        if node.is_running() {
            return Ok(());
        }
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.log)?;
        let child = Command::new(&self.binary)
            .arg("orderer")
            .arg("--config")
            .arg(&node.config)
            .env(
                "RUST_LOG",
                std::env::var("RAFTNET_NODE_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start {}", self.binary.display()))?;
        node.child = Some(child);
        Ok(())
    }

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

    /// Starts every node, joins each to the channel and waits for a leader.
    pub async fn bootstrap(&mut self, admin: &Client, timeout: Duration) -> anyhow::Result<u64> {
        self.start_all()?;
        let genesis = std::fs::read(&self.layout.genesis)?;
        for i in 0..self.nodes.len() {
            self.wait_ready(i, admin, timeout).await?;
            admin.join(&self.nodes[i].address, &genesis).await?;
        }
        self.wait_leader(admin, &[], timeout).await
    }

    /// Waits until the running nodes (all but `down`) agree on a leader that is not in `down`.
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
                if down.contains(&i) {
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
