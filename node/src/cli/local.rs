//! `raftnet up | down | stop | start | logs`: a network as local processes on 127.0.0.1,
//! from the same manifests `kubectl apply` takes. Every command acts on the network kept
//! under `--data-dir` (default `./.raftnet`), so several networks can live side by side.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;

use crate::local::process::node_binary;
use crate::local::LocalNetwork;
use crate::network::manifest;

/// Where local networks live.
#[derive(Args, Clone)]
pub struct DataDir {
    /// Directory holding the network's files (one network per directory).
    #[arg(
        long,
        env = "RAFTNET_DATA_DIR",
        default_value = ".raftnet",
        value_name = "DIR"
    )]
    pub data_dir: PathBuf,
}

#[derive(Args)]
pub struct UpArgs {
    /// Manifest files (Network and Channel resources); repeat for more.
    #[arg(short = 'f', long = "filename", required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub data: DataDir,
}

#[derive(Args)]
pub struct DownArgs {
    /// Also delete the network's files: certificates, ledgers, logs.
    #[arg(long)]
    pub purge: bool,
    #[command(flatten)]
    pub data: DataDir,
}

#[derive(Args)]
pub struct NodeArgs {
    /// The node, e.g. orderer3 or peer0.org1.
    pub node: String,
    #[command(flatten)]
    pub data: DataDir,
}

#[derive(Args)]
pub struct LogsArgs {
    /// The node, e.g. orderer3 or peer0.org1.
    pub node: String,
    /// Keep printing what the node logs.
    #[arg(short = 'f', long)]
    pub follow: bool,
    #[command(flatten)]
    pub data: DataDir,
}

pub async fn up(a: UpArgs) -> anyhow::Result<()> {
    let manifests = manifest::read_files(&a.files)?;
    let plan = manifest::plan(&manifests)?;
    let binary = node_binary()?;
    let (net, generated) = LocalNetwork::create_or_open(&a.data.data_dir, &plan, &binary)?;
    net.save_manifests(&manifests)?;
    if generated {
        println!(
            "network {} generated in {}",
            net.layout.name,
            net.layout.dir.display()
        );
    }
    let report = net.up().await?;
    for (what, list) in [
        ("started", &report.started),
        ("joined", &report.joined),
        ("deployed", &report.deployed),
    ] {
        if !list.is_empty() {
            println!("{what}: {}", list.join(", "));
        }
    }
    if report.started.is_empty() && report.joined.is_empty() && report.deployed.is_empty() {
        println!("network {} is up; nothing to do", net.layout.name);
    }
    println!();
    super::get::print_networks(&net).await?;
    print_usage(&net);
    Ok(())
}

/// How to reach the network with the `raftnet` client, as each organisation's client.
fn print_usage(net: &LocalNetwork) {
    let orderer = net
        .layout
        .orderers
        .first()
        .map(|o| o.address.as_str())
        .unwrap_or_default();
    println!(
        "
To act as an organisation's client:"
    );
    for (msp, profile) in &net.layout.org_clients {
        let Some(peer) = net.layout.peers.iter().find(|p| &p.msp_id == msp) else {
            continue;
        };
        let user_dir = profile.parent().unwrap_or(profile);
        println!(
            "  export CORE_PEER_MSPCONFIGPATH={} CORE_PEER_ADDRESS={} ORDERER_ADDRESS={orderer}   # {msp}",
            user_dir.display(),
            peer.address
        );
    }
}

pub fn down(a: DownArgs) -> anyhow::Result<()> {
    let net = LocalNetwork::find(&a.data.data_dir, &node_binary()?)?;
    let stopped = net.down(a.purge)?;
    println!(
        "network {}: stopped {}{}",
        net.layout.name,
        if stopped.is_empty() {
            "nothing (no node was running)".to_string()
        } else {
            stopped.join(", ")
        },
        if a.purge { "; files deleted" } else { "" }
    );
    Ok(())
}

/// SIGKILL, as a crashed container.
pub fn stop(a: NodeArgs) -> anyhow::Result<()> {
    let net = LocalNetwork::find(&a.data.data_dir, &node_binary()?)?;
    let d = net.daemon(&a.node)?;
    if d.kill()? {
        println!("{} stopped (SIGKILL)", d.name);
    } else {
        println!("{} was not running", d.name);
    }
    Ok(())
}

pub fn start(a: NodeArgs) -> anyhow::Result<()> {
    let net = LocalNetwork::find(&a.data.data_dir, &node_binary()?)?;
    let d = net.daemon(&a.node)?;
    if let Some(pid) = d.pid() {
        println!("{} is already running (pid {pid})", d.name);
        return Ok(());
    }
    let pid = d.start(&net.binary)?;
    println!(
        "{} started (pid {pid}); its log: {}",
        d.name,
        d.log.display()
    );
    Ok(())
}

pub async fn logs(a: LogsArgs) -> anyhow::Result<()> {
    let net = LocalNetwork::find(&a.data.data_dir, &node_binary()?)?;
    let d = net.daemon(&a.node)?;
    let mut file = std::fs::File::open(&d.log)
        .with_context(|| format!("{} has no log yet ({})", d.name, d.log.display()))?;
    let mut out = std::io::stdout().lock();
    std::io::copy(&mut file, &mut out)?;
    out.flush()?;
    if !a.follow {
        return Ok(());
    }
    let mut pos = file.stream_position()?;
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let len = std::fs::metadata(&d.log)?.len();
        if len < pos {
            pos = 0; // The log was truncated.
        }
        if len > pos {
            file.seek(SeekFrom::Start(pos))?;
            let mut buf = Vec::new();
            file.read_to_end(&mut buf)?;
            pos += buf.len() as u64;
            out.write_all(&buf)?;
            out.flush()?;
        }
    }
}
