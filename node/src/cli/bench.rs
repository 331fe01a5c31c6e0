//! `raftnet bench`: orderers (and peers) as local processes (fsync on), measured from a
//! client's side.

mod cpu;
mod e2e;
pub mod load;
mod restart;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use futures::StreamExt;
use serde_json::json;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::ChannelOptions;
use crate::client::Client;
use crate::local::process::node_binary;
use crate::local::LocalCluster;
use crate::network::ordering::{generate, OrderingSpec};
use crate::proto::common::{Envelope, Status};

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Throughput and latency of acknowledged broadcasts.
    Ordering(OrderingArgs),
    /// Time from kill -9 of the leader to the next acknowledged transaction; with
    /// `--planned`, SIGTERM of the leader under load (failed transactions, longest gap).
    Failover(FailoverArgs),
    /// A rolling restart of every orderer under load, followers first and the leader last:
    /// failed transactions and the longest gap between acknowledgements.
    Rolling(restart::RollingArgs),
    /// Endorsed, ordered, validated and committed transactions on every peer.
    E2e(e2e::E2eArgs),
}

#[derive(Args)]
pub struct OrderingArgs {
    #[arg(long, default_value_t = 5)]
    pub orderers: usize,
    #[arg(long, default_value_t = 256)]
    pub tx_size: usize,
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10s")]
    pub duration: Duration,
    /// Concurrent client streams, spread over the orderers.
    #[arg(long, default_value_t = 16)]
    pub clients: usize,
    /// Envelopes in flight per client stream.
    #[arg(long, default_value_t = 64)]
    pub window: usize,
    /// Send only to the leader instead of to every orderer.
    #[arg(long)]
    pub leader_only: bool,
    /// Envelopes signed before the clock starts, so that the numbers measure the orderers
    /// rather than the client's signing (default: 20,000 per second of duration; 0 signs
    /// everything during the run).
    #[arg(long)]
    pub presign: Option<usize>,
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub options: ChannelOptions,
}

#[derive(Args)]
pub struct FailoverArgs {
    #[arg(long, default_value_t = 5)]
    pub orderers: usize,
    #[arg(long, default_value_t = 5)]
    pub kills: usize,
    /// SIGTERM instead of SIGKILL, under load: the leader hands over first.
    #[arg(long)]
    pub planned: bool,
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub options: ChannelOptions,
}

pub async fn run(cmd: BenchCommand) -> anyhow::Result<()> {
    match cmd {
        BenchCommand::Ordering(a) => ordering(a).await,
        BenchCommand::Failover(a) if a.planned => restart::planned_failover(a).await,
        BenchCommand::Failover(a) => failover(a).await,
        BenchCommand::Rolling(a) => restart::rolling(a).await,
        BenchCommand::E2e(a) => e2e::run(a).await,
    }
}

struct Bench {
    cluster: LocalCluster,
    admin: Client,
    client: Arc<Client>,
    _dir: tempfile::TempDir,
}

async fn start(orderers: usize, options: &ChannelOptions) -> anyhow::Result<Bench> {
    let dir = tempfile::Builder::new().prefix("raftnet-bench").tempdir()?;
    let layout = generate(
        dir.path(),
        &OrderingSpec {
            orderers,
            raft: options.raft()?,
            batch: options.batch()?,
            ..Default::default()
        },
    )?;
    let admin = Client::load(&layout.admin)?;
    let client = Arc::new(Client::load(&layout.client)?);
    let mut cluster = LocalCluster::new(layout, &node_binary()?);
    cluster
        .bootstrap(&admin, Duration::from_secs(30))
        .await
        .context("starting the orderers")?;
    Ok(Bench {
        cluster,
        admin,
        client,
        _dir: dir,
    })
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

async fn ordering(a: OrderingArgs) -> anyhow::Result<()> {
    let b = start(a.orderers, &a.options).await?;
    let leader = b
        .cluster
        .wait_leader(&b.admin, &[], Duration::from_secs(30))
        .await?;
    let channel = b.cluster.layout.channel.clone();
    let targets: Vec<String> = if a.leader_only {
        vec![b.cluster.nodes[b.cluster.index_of(leader)].address.clone()]
    } else {
        b.cluster.nodes.iter().map(|n| n.address.clone()).collect()
    };
    let presign = a
        .presign
        .unwrap_or(20_000 * a.duration.as_secs().max(1) as usize);
    let mut pools = presign_pools(&b.client, &channel, a.tx_size, presign, a.clients).await?;
    let deadline = Instant::now() + a.duration;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..a.clients {
        let addr = targets[c % targets.len()].clone();
        let client = b.client.clone();
        let channel = channel.clone();
        let (size, window) = (a.tx_size, a.window);
        let pool = pools.pop().unwrap_or_default();
        tasks.push(tokio::spawn(async move {
            client_loop(client, addr, channel, size, window, deadline, pool).await
        }));
    }
    let mut latencies = Vec::new();
    let mut refused = 0u64;
    for t in tasks {
        let (lat, bad) = t.await??;
        latencies.extend(lat);
        refused += bad;
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort_by(|x, y| x.total_cmp(y));
    let n = latencies.len();
    let result = json!({
        "orderers": a.orderers,
        "tx_size": a.tx_size,
        "clients": a.clients,
        "window": a.window,
        "targets": if a.leader_only { "leader" } else { "all" },
        "presigned": presign,
        "acknowledged": n,
        "refused": refused,
        "seconds": elapsed,
        "tx_per_s": n as f64 / elapsed,
        "p50_ms": percentile(&latencies, 0.50),
        "p99_ms": percentile(&latencies, 0.99),
    });
    print_result(&result, a.json);
    Ok(())
}

/// One Broadcast stream with up to `window` envelopes in flight; returns latencies (ms) of
/// acknowledged envelopes and the number refused.
async fn client_loop(
    client: Arc<Client>,
    addr: String,
    channel: String,
    size: usize,
    window: usize,
    deadline: Instant,
    mut pool: Vec<Envelope>,
) -> anyhow::Result<(Vec<f64>, u64)> {
    let (tx, rx) = mpsc::channel(window);
    let mut bc = client.broadcaster(&addr)?;
    let mut responses = bc.broadcast(ReceiverStream::new(rx)).await?.into_inner();
    let mut sent: VecDeque<Instant> = VecDeque::new();
    let mut latencies = Vec::new();
    let mut refused = 0;
    let mut seq = 0usize;
    loop {
        let sending = Instant::now() < deadline;
        if sending && sent.len() < window {
            let env = match pool.pop() {
                Some(env) => env,
                None => {
                    seq += 1;
                    client.envelope(&channel, payload(seq, size))?.0
                }
            };
            sent.push_back(Instant::now());
            if tx.send(env).await.is_err() {
                bail!("broadcast stream to {addr} closed");
            }
            continue;
        }
        if sent.is_empty() {
            break;
        }
        match responses.message().await? {
            Some(r) => {
                let t0 = sent.pop_front().context("more responses than envelopes")?;
                if r.status == Status::Success as i32 {
                    latencies.push(t0.elapsed().as_secs_f64() * 1000.0);
                } else {
                    refused += 1;
                }
            }
            None => bail!("{addr} closed the broadcast stream"),
        }
    }
    drop(tx);
    Ok((latencies, refused))
}

fn payload(seq: usize, size: usize) -> Vec<u8> {
    (0..size).map(|j| ((seq + j) % 251) as u8).collect()
}

/// `total` signed envelopes in `clients` pools, signed on blocking threads.
async fn presign_pools(
    client: &Arc<Client>,
    channel: &str,
    size: usize,
    total: usize,
    clients: usize,
) -> anyhow::Result<Vec<Vec<Envelope>>> {
    let per = total.div_ceil(clients.max(1));
    let mut jobs = Vec::new();
    for c in 0..clients {
        let (client, channel) = (client.clone(), channel.to_string());
        jobs.push(tokio::task::spawn_blocking(move || {
            (0..per)
                .map(|i| Ok(client.envelope(&channel, payload(c * per + i, size))?.0))
                .collect::<anyhow::Result<Vec<_>>>()
        }));
    }
    let mut pools = Vec::new();
    for j in jobs {
        pools.push(j.await??);
    }
    Ok(pools)
}

fn print_result(v: &serde_json::Value, as_json: bool) {
    if as_json {
        println!("{v}");
    } else {
        println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
    }
}

fn stats(mut v: Vec<f64>) -> serde_json::Value {
    v.sort_by(|x, y| x.total_cmp(y));
    json!({
        "median": percentile(&v, 0.5),
        "min": v.first().copied().unwrap_or(0.0),
        "max": v.last().copied().unwrap_or(0.0),
        "values": v,
    })
}

async fn failover(a: FailoverArgs) -> anyhow::Result<()> {
    let mut b = start(a.orderers, &a.options).await?;
    let channel = b.cluster.layout.channel.clone();
    let mut failover_ms = Vec::new();
    let mut status_ms = Vec::new();
    for _ in 0..a.kills {
        let leader = b
            .cluster
            .wait_leader(&b.admin, &[], Duration::from_secs(30))
            .await?;
        let idx = b.cluster.index_of(leader);
        // Warm: a transaction ordered before the kill.
        probe_until_ordered(&b, &channel, &[idx], Duration::from_secs(10)).await?;
        let survivors: Vec<usize> = (0..b.cluster.nodes.len()).filter(|&i| i != idx).collect();
        let watch_addr = b.cluster.nodes[survivors[0]].address.clone();
        let mut watch = b.admin.watch(&watch_addr, &channel).await?;
        let killed_at = Instant::now();
        b.cluster.kill(idx)?;
        let status_task = tokio::spawn(async move {
            while let Some(Ok(s)) = watch.next().await {
                if s.leader_id != 0 && s.leader_id != leader {
                    return Some(killed_at.elapsed());
                }
            }
            None
        });
        let ordered = probe_until_ordered(&b, &channel, &[idx], Duration::from_secs(30)).await?;
        failover_ms.push(ordered.duration_since(killed_at).as_secs_f64() * 1000.0);
        if let Ok(Ok(Some(d))) = tokio::time::timeout(Duration::from_secs(30), status_task).await {
            status_ms.push(d.as_secs_f64() * 1000.0);
        }
        // Bring it back and let it catch up before the next round.
        b.cluster.start(idx)?;
        b.cluster
            .wait_ready(idx, &b.admin, Duration::from_secs(30))
            .await?;
        b.cluster
            .wait_leader(&b.admin, &[], Duration::from_secs(30))
            .await?;
    }
    let result = json!({
        "orderers": a.orderers,
        "kills": a.kills,
        "tick_interval_ms": a.options.raft()?.tick_interval_ms,
        "election_tick": a.options.election_tick,
        "failover_ms": stats(failover_ms),
        "status_ms": stats(status_ms),
    });
    print_result(&result, a.json);
    Ok(())
}

/// Submits one transaction at a time to the orderers not in `skip`, round robin, until one is
/// acknowledged; returns when.
async fn probe_until_ordered(
    b: &Bench,
    channel: &str,
    skip: &[usize],
    limit: Duration,
) -> anyhow::Result<Instant> {
    let started = Instant::now();
    let addrs: Vec<String> = (0..b.cluster.nodes.len())
        .filter(|i| !skip.contains(i))
        .map(|i| b.cluster.nodes[i].address.clone())
        .collect();
    let mut k = 0;
    while started.elapsed() < limit {
        let addr = &addrs[k % addrs.len()];
        k += 1;
        let (env, _) = b.client.envelope(channel, vec![1u8; 64])?;
        if let Ok(Ok(r)) =
            tokio::time::timeout(Duration::from_secs(2), b.client.broadcast(addr, vec![env])).await
        {
            if r[0].status == Status::Success as i32 {
                return Ok(Instant::now());
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    bail!("nothing was ordered within {limit:?}")
}
