//! The client's commands other than benchmarks.

use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Context};
use prost::Message;
use serde_json::json;

use super::output::{
    fixed_width_line, peer_status_cells, peer_status_json, status_cells, status_json, table,
    StatusRow, PEER_STATUS_HEADER, STATUS_HEADER,
};
use super::{
    BlocksArgs, BootstrapArgs, ChannelCommand, ChannelOptions, Format, IdentityArg, NodeArg,
    NodeKind, SubmitArgs,
};
use crate::client::Client;
use crate::ledger::header_hash;
use crate::network::ordering::{generate, OrderingSpec};
use crate::proto::common::{BatchOptions, RaftOptions, Status};

impl ChannelOptions {
    /// The options as the spec of a `Network` would give them, checked the same way.
    pub fn raft(&self) -> anyhow::Result<RaftOptions> {
        crate::network::manifest::raft_options(&raftnet_crds::RaftSpec {
            tick_interval: self.tick_interval.clone(),
            election_tick: self.election_tick,
            heartbeat_tick: self.heartbeat_tick,
            max_inflight_blocks: self.max_inflight_blocks,
            snapshot_interval_size: self.snapshot_interval_size.clone(),
        })
        .map_err(|e| anyhow::anyhow!(as_flags(&e)))
    }

    pub fn batch(&self) -> anyhow::Result<BatchOptions> {
        crate::network::manifest::batch_options(&raftnet_crds::BatchSpec {
            batch_timeout: self.batch_timeout.clone(),
            max_message_count: self.max_message_count,
            preferred_max_bytes: self.preferred_max_bytes.clone(),
            absolute_max_bytes: self.absolute_max_bytes.clone(),
        })
        .map_err(|e| anyhow::anyhow!(as_flags(&e)))
    }
}

/// A message about a manifest field, about the flag that set it instead.
fn as_flags(message: &str) -> String {
    [
        ("spec.raft.tickInterval", "--tick-interval"),
        ("spec.raft.snapshotIntervalSize", "--snapshot-interval-size"),
        ("spec.batch.batchTimeout", "--batch-timeout"),
        ("spec.batch.preferredMaxBytes", "--preferred-max-bytes"),
        ("spec.batch.absoluteMaxBytes", "--absolute-max-bytes"),
    ]
    .iter()
    .fold(message.to_owned(), |m, (field, flag)| {
        m.replace(field, flag)
    })
}

pub fn bootstrap(a: BootstrapArgs) -> anyhow::Result<()> {
    if a.dir.exists() && std::fs::read_dir(&a.dir)?.next().is_some() {
        bail!("{} is not empty: choose a new directory", a.dir.display());
    }
    let layout = generate(
        &a.dir,
        &OrderingSpec {
            channel: a.channel,
            orderers: a.orderers,
            orgs: a.orgs,
            peers_per_org: a.peers_per_org,
            raft: a.options.raft()?,
            batch: a.options.batch()?,
            key_algorithm: a.key_algorithm,
        },
    )?;
    let mut t = table(&["ORDERER", "ADDRESS", "CONFIG"]);
    for o in &layout.orderers {
        t.add_row(vec![
            o.name.clone(),
            o.address.clone(),
            o.config.display().to_string(),
        ]);
    }
    println!("{t}\n");
    if !layout.peers.is_empty() {
        let mut t = table(&["PEER", "ORG", "ADDRESS", "CONFIG"]);
        for p in &layout.peers {
            t.add_row(vec![
                p.name.clone(),
                p.msp_id.clone(),
                p.address.clone(),
                p.config.display().to_string(),
            ]);
        }
        println!("{t}\n");
    }
    println!("genesis block:   {}", layout.genesis.display());
    println!("admin identity:  {}", layout.admin.display());
    println!("client identity: {}", layout.client.display());
    println!("\nstart each orderer with `raftnet-node orderer --config CONFIG`, then join it:");
    println!(
        "  raftnet channel join --orderer ADDRESS --genesis {} --identity {}",
        layout.genesis.display(),
        layout.admin.display()
    );
    Ok(())
}

pub async fn channel(c: ChannelCommand) -> anyhow::Result<()> {
    match c {
        ChannelCommand::Join {
            node,
            genesis,
            identity,
        } => join(&node, &genesis, &identity).await,
        ChannelCommand::List {
            node,
            identity,
            output,
        } => list(&node, &identity, output).await,
        ChannelCommand::Status {
            nodes,
            channel,
            identity,
            output,
            watch,
        } => {
            let (kind, addrs) = nodes.resolve()?;
            let client = identity.client()?;
            if watch {
                watch_status(client, kind, &addrs, &channel, output).await
            } else {
                status(&client, kind, &addrs, &channel, output).await
            }
        }
        ChannelCommand::TransferLeader {
            orderer,
            channel,
            to,
            identity,
        } => {
            let client = identity.client()?;
            let done = client
                .transfer_leadership(&orderer, &channel, to.as_deref())
                .await?;
            println!(
                "channel {}: leadership moved from {} to {} (term {}) in {} ms",
                done.channel_id, done.previous_leader, done.new_leader, done.term, done.elapsed_ms
            );
            Ok(())
        }
    }
}

fn kind_name(kind: NodeKind) -> &'static str {
    match kind {
        NodeKind::Orderer => "orderer",
        NodeKind::Peer => "peer",
    }
}

async fn join(node: &NodeArg, genesis: &Path, identity: &IdentityArg) -> anyhow::Result<()> {
    let (kind, addr) = node.resolve()?;
    let client = identity.client()?;
    let block = std::fs::read(genesis)
        .with_context(|| format!("--genesis: cannot read {}", genesis.display()))?;
    client.join(&addr, &block).await?;
    println!(
        "{} {addr} joined the channel of {}",
        kind_name(kind),
        genesis.display()
    );
    Ok(())
}

async fn list(node: &NodeArg, identity: &IdentityArg, output: Format) -> anyhow::Result<()> {
    let (_, addr) = node.resolve()?;
    let client = identity.client()?;
    let channels = client.list_channels(&addr).await?;
    match output {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(
                &channels
                    .iter()
                    .map(|c| json!({"channel": c.channel_id, "height": c.height}))
                    .collect::<Vec<_>>()
            )?
        ),
        Format::Table => {
            let mut t = table(&["CHANNEL", "HEIGHT"]);
            for c in channels {
                t.add_row(vec![c.channel_id, c.height.to_string()]);
            }
            println!("{t}");
        }
    }
    Ok(())
}

/// How a row of each kind of node is shown.
fn header(kind: NodeKind) -> &'static [&'static str] {
    match kind {
        NodeKind::Orderer => &STATUS_HEADER,
        NodeKind::Peer => &PEER_STATUS_HEADER,
    }
}

fn cells(kind: NodeKind, r: &StatusRow) -> Vec<String> {
    match kind {
        NodeKind::Orderer => status_cells(r),
        NodeKind::Peer => peer_status_cells(r),
    }
}

fn row_json(kind: NodeKind, r: &StatusRow) -> serde_json::Value {
    match kind {
        NodeKind::Orderer => status_json(r),
        NodeKind::Peer => peer_status_json(r),
    }
}

/// Column widths of `--watch` lines: peers' hashes and endpoints are wider than Raft fields.
fn widths(kind: NodeKind) -> &'static [usize] {
    match kind {
        NodeKind::Orderer => &[12; 9],
        NodeKind::Peer => &[14, 8, 18, 22],
    }
}

async fn status(
    client: &Client,
    kind: NodeKind,
    addrs: &[String],
    channel: &str,
    output: Format,
) -> anyhow::Result<()> {
    let mut rows = Vec::new();
    for addr in addrs {
        let (status, error) = match client.status(addr, channel).await {
            Ok(s) => (Some(s), None),
            Err(e) => (None, Some(format!("{e:#}"))),
        };
        rows.push(StatusRow {
            address: addr.clone(),
            status,
            error,
        });
    }
    match output {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(
                &rows.iter().map(|r| row_json(kind, r)).collect::<Vec<_>>()
            )?
        ),
        Format::Table => {
            let mut t = table(header(kind));
            for r in &rows {
                t.add_row(cells(kind, r));
            }
            println!("{t}");
            // The table only says "Unavailable"; why is worth a line each.
            for r in &rows {
                if let Some(e) = &r.error {
                    eprintln!("{}: {e}", r.address);
                }
            }
        }
    }
    Ok(())
}

/// Like `kubectl get -w`: a header, then one row per change from any node. It follows every
/// node through outages (a node that is down or restarts shows a row with the error, then rows
/// again once it answers) and runs until it is stopped, so it can watch a lab of killed leaders.
async fn watch_status(
    client: Client,
    kind: NodeKind,
    addrs: &[String],
    channel: &str,
    output: Format,
) -> anyhow::Result<()> {
    let client = std::sync::Arc::new(client);
    let (rows, mut rx) = tokio::sync::mpsc::channel::<StatusRow>(64);
    for addr in addrs {
        let (client, rows, addr, channel) = (
            client.clone(),
            rows.clone(),
            addr.clone(),
            channel.to_string(),
        );
        tokio::spawn(async move { follow_node(&client, &addr, &channel, rows).await });
    }
    drop(rows);
    if matches!(output, Format::Table) {
        println!("{}", fixed_width_line(header(kind), widths(kind)));
    }
    while let Some(row) = rx.recv().await {
        match output {
            Format::Json => println!("{}", row_json(kind, &row)),
            Format::Table => {
                println!("{}", fixed_width_line(&cells(kind, &row), widths(kind)));
                // The row only says "Unavailable"; why is worth a line.
                if let Some(e) = &row.error {
                    eprintln!("{}: {e}", row.address);
                }
            }
        }
    }
    Ok(())
}

/// One node's `WatchStatus`, reconnected after each failure; an error row is sent once per
/// outage (not on every retry) so the output shows when a node went away and came back.
async fn follow_node(
    client: &Client,
    addr: &str,
    channel: &str,
    rows: tokio::sync::mpsc::Sender<StatusRow>,
) {
    const RETRY: std::time::Duration = std::time::Duration::from_millis(500);
    let mut down = false;
    loop {
        let error = match client.watch(addr, channel).await {
            Ok(mut stream) => loop {
                match stream.message().await {
                    Ok(Some(s)) => {
                        down = false;
                        let row = StatusRow {
                            address: addr.to_string(),
                            status: Some(s),
                            error: None,
                        };
                        if rows.send(row).await.is_err() {
                            return;
                        }
                    }
                    Ok(None) => break "the node closed the status stream".to_string(),
                    Err(e) => break e.message().to_string(),
                }
            },
            Err(e) => format!("{e:#}"),
        };
        if !down {
            down = true;
            let row = StatusRow {
                address: addr.to_string(),
                status: None,
                error: Some(error),
            };
            if rows.send(row).await.is_err() {
                return;
            }
        }
        tokio::time::sleep(RETRY).await;
    }
}

pub async fn submit(a: SubmitArgs) -> anyhow::Result<()> {
    let client = a.target.identity.client()?;
    let mut envs = Vec::new();
    for i in 0..a.count {
        let data = match &a.data {
            Some(d) => d.clone().into_bytes(),
            None => (0..a.size).map(|j| ((i + j) % 251) as u8).collect(),
        };
        envs.push(client.envelope(&a.target.channel, data)?.0);
    }
    let started = Instant::now();
    let resps = client.broadcast(&a.target.orderer, envs).await?;
    let elapsed = started.elapsed();
    let failed = resps
        .iter()
        .filter(|r| r.status != Status::Success as i32)
        .count();
    match a.output {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(
                &resps
                    .iter()
                    .map(|r| json!({
                        "txId": r.tx_id,
                        "status": Status::try_from(r.status).map(|s| s.as_str_name()).unwrap_or("UNKNOWN"),
                        "block": r.block_number,
                        "info": r.info,
                    }))
                    .collect::<Vec<_>>()
            )?
        ),
        Format::Table => {
            let mut t = table(&["TX ID", "STATUS", "BLOCK", "INFO"]);
            for r in &resps {
                let status = Status::try_from(r.status).map(|s| s.as_str_name()).unwrap_or("UNKNOWN");
                t.add_row(vec![r.tx_id.clone(), status.to_string(), r.block_number.to_string(), r.info.clone()]);
            }
            println!("{t}");
            eprintln!("{} ordered, {failed} refused, in {elapsed:.2?}", resps.len() - failed);
        }
    }
    if failed > 0 {
        bail!("{failed} of {} transactions were not ordered", resps.len());
    }
    Ok(())
}

pub async fn blocks(a: BlocksArgs) -> anyhow::Result<()> {
    let client = a.target.identity.client()?;
    let blocks = client
        .deliver(
            &a.target.orderer,
            &a.target.channel,
            a.start,
            a.stop,
            a.stop.is_none(),
        )
        .await?;
    match a.output {
        Format::Json => {
            let v: Vec<_> = blocks
                .iter()
                .map(|b| {
                    let h = b.header.clone().unwrap_or_default();
                    json!({
                        "number": h.number,
                        "hash": hex::encode(header_hash(&h)),
                        "previousHash": hex::encode(&h.previous_hash),
                        "dataHash": hex::encode(&h.data_hash),
                        "transactions": b.data.as_ref().map(|d| d.transactions.len()).unwrap_or(0),
                        "bytes": b.encoded_len(),
                    })
                })
                .collect();
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
        Format::Table => {
            let mut t = table(&["NUMBER", "TXS", "BYTES", "HASH", "PREVIOUS"]);
            for b in &blocks {
                let h = b.header.clone().unwrap_or_default();
                let short = |x: &[u8]| hex::encode(x).chars().take(16).collect::<String>();
                t.add_row(vec![
                    h.number.to_string(),
                    b.data
                        .as_ref()
                        .map(|d| d.transactions.len())
                        .unwrap_or(0)
                        .to_string(),
                    b.encoded_len().to_string(),
                    short(&header_hash(&h)),
                    short(&h.previous_hash),
                ]);
            }
            println!("{t}");
        }
    }
    Ok(())
}
