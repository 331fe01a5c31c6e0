//! Planned restarts under load: SIGTERM of the leader (`bench failover --planned`) and a
//! rolling restart of every orderer, followers first and the leader last (`bench rolling`),
//! each with `--signal kill` for the same run with crashes. Reported: failed transactions,
//! the longest time without an acknowledgement, and how long each stop took.

use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Args, ValueEnum};
use serde_json::json;

use super::load::{Load, LoadReport};
use super::{print_result, start, stats, Bench, FailoverArgs};
use crate::cli::ChannelOptions;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum StopSignal {
    /// SIGTERM: the leader hands over first (a planned restart).
    #[default]
    Term,
    /// SIGKILL: a crash.
    Kill,
}

#[derive(Args)]
pub struct RollingArgs {
    #[arg(long, default_value_t = 5)]
    pub orderers: usize,
    /// How each orderer is stopped.
    #[arg(long, value_enum, default_value_t)]
    pub signal: StopSignal,
    /// Clients each keeping one transaction in flight.
    #[arg(long, default_value_t = 16)]
    pub workers: usize,
    #[arg(long, default_value_t = 256)]
    pub tx_size: usize,
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub options: ChannelOptions,
}

const WAIT: Duration = Duration::from_secs(30);

/// Stops orderer `i` as `signal` says; returns how long it took to exit.
fn stop(b: &mut Bench, i: usize, signal: StopSignal) -> anyhow::Result<Duration> {
    let started = Instant::now();
    match signal {
        StopSignal::Term => {
            b.cluster.terminate(i, WAIT)?;
        }
        StopSignal::Kill => b.cluster.kill(i)?,
    }
    Ok(started.elapsed())
}

/// Starts orderer `i` again and waits until it has caught up with the leader.
async fn restart(b: &mut Bench, i: usize) -> anyhow::Result<()> {
    b.cluster.start(i)?;
    b.cluster.wait_ready(i, &b.admin, WAIT).await?;
    let leader = b.cluster.wait_leader(&b.admin, &[], WAIT).await?;
    let channel = b.cluster.layout.channel.clone();
    let lead = b.cluster.nodes[b.cluster.index_of(leader)].address.clone();
    let started = Instant::now();
    loop {
        let tip = b.admin.status(&lead, &channel).await?.commit_index;
        let mine = b
            .admin
            .status(&b.cluster.nodes[i].address, &channel)
            .await
            .map(|s| s.applied_index)
            .unwrap_or(0);
        if mine >= tip {
            return Ok(());
        }
        anyhow::ensure!(
            started.elapsed() < WAIT,
            "{} did not catch up",
            b.cluster.nodes[i].name
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn load(b: &Bench, workers: usize, tx_size: usize) -> Load {
    let orderers = b.cluster.nodes.iter().map(|n| n.address.clone()).collect();
    Load::start(
        b.client.clone(),
        &b.cluster.layout.channel,
        orderers,
        workers,
        tx_size,
    )
}

fn report(r: &LoadReport) -> serde_json::Value {
    json!({
        "acked": r.acked.len(),
        "failed": r.failed.len(),
        "first_failure": r.failed.first(),
        "longest_gap_ms": r.longest_gap().as_secs_f64() * 1000.0,
        "tx_per_s": r.acked.len() as f64 / r.duration.as_secs_f64().max(1e-9),
    })
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// `bench failover --planned`: SIGTERM of the leader under load, `kills` times.
pub async fn planned_failover(a: FailoverArgs) -> anyhow::Result<()> {
    let mut b = start(a.orderers, &a.options).await?;
    let running = load(&b, 16, 256);
    let mut exit_ms = Vec::new();
    for _ in 0..a.kills {
        let leader = b.cluster.wait_leader(&b.admin, &[], WAIT).await?;
        let idx = b.cluster.index_of(leader);
        tokio::time::sleep(Duration::from_millis(500)).await;
        exit_ms.push(ms(stop(&mut b, idx, StopSignal::Term)?));
        b.cluster.wait_leader(&b.admin, &[idx], WAIT).await?;
        restart(&mut b, idx).await?;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let r = running.stop().await;
    let mut result = report(&r);
    result["orderers"] = json!(a.orderers);
    result["kills"] = json!(a.kills);
    result["signal"] = json!("SIGTERM");
    result["tick_interval_ms"] = json!(a.options.raft()?.tick_interval_ms);
    result["sigterm_to_exit_ms"] = stats(exit_ms);
    print_result(&result, a.json);
    Ok(())
}

/// `bench rolling`: every orderer stopped and started once under load, followers first, the
/// leader (re-read before each step) last.
pub async fn rolling(a: RollingArgs) -> anyhow::Result<()> {
    let mut b = start(a.orderers, &a.options).await?;
    let running = load(&b, a.workers, a.tx_size);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut done: Vec<usize> = Vec::new();
    let mut stop_ms = Vec::new();
    let started = Instant::now();
    while done.len() < a.orderers {
        let leader = b
            .cluster
            .index_of(b.cluster.wait_leader(&b.admin, &[], WAIT).await?);
        let next = (0..a.orderers)
            .find(|i| !done.contains(i) && *i != leader)
            .unwrap_or(leader);
        stop_ms.push(ms(stop(&mut b, next, a.signal)?));
        restart(&mut b, next)
            .await
            .with_context(|| format!("restarting {}", b.cluster.nodes[next].name))?;
        done.push(next);
    }
    let roll = started.elapsed();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let r = running.stop().await;
    let mut result = report(&r);
    result["orderers"] = json!(a.orderers);
    result["signal"] = json!(match a.signal {
        StopSignal::Term => "SIGTERM",
        StopSignal::Kill => "SIGKILL",
    });
    result["tick_interval_ms"] = json!(a.options.raft()?.tick_interval_ms);
    result["roll_s"] = json!(roll.as_secs_f64());
    result["stop_ms"] = stats(stop_ms);
    print_result(&result, a.json);
    Ok(())
}
