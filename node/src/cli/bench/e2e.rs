//! `raftnet bench e2e`: transactions endorsed by a peer of every organisation, ordered,
//! validated and committed on every peer. Each in-flight slot moves money between its own
//! two example02 accounts, so that slots never conflict; a slot submits its next
//! transaction when the previous one is committed on the peers that endorse it (endorsing
//! on a peer that has not committed it yet would read a stale balance).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use serde_json::json;
use tokio::sync::oneshot;

use super::cpu::CpuSample;
use super::{percentile, print_result};
use crate::cli::ChannelOptions;
use crate::client::Client;
use crate::gateway::Outcome;
use crate::local::process::node_binary;
use crate::local::LocalCluster;
use crate::network::ordering::{generate, OrderingSpec};
use crate::peer::lifecycle::{deploy_args, LIFECYCLE};
use crate::proto::peer::{ChaincodeDefinition, TxValidationCode};

const START_TIMEOUT: Duration = Duration::from_secs(60);
const CONTRACT: &str = "bench";

#[derive(Args)]
pub struct E2eArgs {
    #[arg(long, default_value_t = 2)]
    pub orgs: usize,
    #[arg(long, default_value_t = 2)]
    pub peers_per_org: usize,
    #[arg(long, default_value_t = 5)]
    pub orderers: usize,
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10s")]
    pub duration: Duration,
    /// Transactions in flight (each waits for its commit event before the next).
    #[arg(long, default_value_t = 256)]
    pub in_flight: usize,
    /// Key algorithm of every organisation's signing identities: ECDSA-P256 or Ed25519.
    #[arg(long, default_value = "ECDSA-P256")]
    pub key_algorithm: crate::identity::KeyAlgorithm,
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub options: ChannelOptions,
}

type Waiters = Arc<Mutex<HashMap<String, oneshot::Sender<(u64, i32)>>>>;

/// Per peer: valid transactions committed and when the last one was.
#[derive(Default, Clone)]
struct Committed {
    valid: u64,
    invalid: u64,
    blocks: u64,
    last: Option<Instant>,
}

pub async fn run(a: E2eArgs) -> anyhow::Result<()> {
    if a.orgs == 0 || a.peers_per_org == 0 || a.in_flight == 0 {
        bail!("--orgs, --peers-per-org and --in-flight must be at least 1");
    }
    let dir = tempfile::Builder::new().prefix("raftnet-bench").tempdir()?;
    let orgs: Vec<String> = (1..=a.orgs).map(|i| format!("Org{i}MSP")).collect();
    let layout = generate(
        dir.path(),
        &OrderingSpec {
            orderers: a.orderers,
            orgs: orgs.clone(),
            peers_per_org: a.peers_per_org,
            raft: a.options.raft()?,
            batch: a.options.batch()?,
            key_algorithm: a.key_algorithm,
            ..Default::default()
        },
    )?;
    let admin = Client::load(&layout.admin)?;
    let org_admin = Client::load(&layout.org_admins[0].1)?;
    let client = Arc::new(Client::load(&layout.client)?);
    let mut cluster = LocalCluster::new(layout, &node_binary()?);
    cluster
        .bootstrap(&admin, START_TIMEOUT)
        .await
        .context("starting the orderers")?;
    cluster
        .start_peers(START_TIMEOUT)
        .await
        .context("starting the peers")?;
    let layout = cluster.layout.clone();
    let channel = layout.channel.clone();
    let orderers: Vec<String> = layout.orderers.iter().map(|o| o.address.clone()).collect();
    let peers: Vec<String> = layout.peers.iter().map(|p| p.address.clone()).collect();
    // Slot s is endorsed by peer (s mod peers_per_org) of every organisation.
    let endorsers = |s: usize| -> Vec<String> {
        (0..a.orgs)
            .map(|o| peers[o * a.peers_per_org + s % a.peers_per_org].clone())
            .collect()
    };

    // Deploy with an AND over every organisation and two accounts per slot.
    let policy = format!(
        "AND({})",
        orgs.iter()
            .map(|m| format!("'{m}.peer'"))
            .collect::<Vec<_>>()
            .join(",")
    );
    let def = ChaincodeDefinition {
        name: CONTRACT.into(),
        version: "1".into(),
        contract: "example02".into(),
        endorsement_policy: policy.clone(),
    };
    let init: Vec<String> = (0..a.in_flight)
        .flat_map(|s| {
            [
                format!("x{s}"),
                "1000000".into(),
                format!("y{s}"),
                "1000000".into(),
            ]
        })
        .collect();
    let deployed = submit_retry(
        &org_admin,
        &endorsers(0),
        &orderers,
        &channel,
        LIFECYCLE,
        &deploy_args(&def, &init),
    )
    .await?;
    if !deployed.is_valid() {
        bail!("deploy was committed as {:?}", deployed.code);
    }

    // One event stream per peer: counts commits and wakes the slots waiting on that peer.
    let start_block = deployed.block + 1;
    let mut counters = Vec::new();
    let mut waiters: HashMap<String, Waiters> = HashMap::new();
    for p in &peers {
        let events = client.commit_events(p, &channel, Some(start_block)).await?;
        let counter = Arc::new(Mutex::new(Committed::default()));
        counters.push(counter.clone());
        let w: Waiters = Arc::default();
        waiters.insert(p.clone(), w.clone());
        tokio::spawn(count_commits(events, counter, w));
    }

    let cpu_start = CpuSample::take(&cluster);
    let started = Instant::now();
    let deadline = started + a.duration;
    let mut slots = Vec::new();
    for s in 0..a.in_flight {
        let client = client.clone();
        let (endorsers, channel) = (endorsers(s), channel.clone());
        let waiters: Vec<Waiters> = endorsers.iter().map(|p| waiters[p].clone()).collect();
        // Each slot starts with a different orderer, so that all of them take clients.
        let mut orderers = orderers.clone();
        let n = orderers.len().max(1);
        orderers.rotate_left(s % n);
        slots.push(tokio::spawn(async move {
            slot(client, s, endorsers, orderers, channel, waiters, deadline).await
        }));
    }
    let mut latencies = Vec::new();
    let mut stages = Stages::default();
    let mut errors = 0u64;
    let mut first_error = None;
    for t in slots {
        let (lat, st, errs, first) = t.await?;
        latencies.extend(lat);
        stages.endorse.extend(st.endorse);
        stages.order.extend(st.order);
        stages.commit.extend(st.commit);
        errors += errs;
        first_error = first_error.or(first);
    }
    let submitted_valid = latencies.len() as u64;

    // Every peer must commit everything; the slowest peer sets the pace.
    let wait_until = Instant::now() + Duration::from_secs(60);
    let per_peer = loop {
        let now: Vec<Committed> = counters
            .iter()
            .map(|c| c.lock().expect("counter").clone())
            .collect();
        if now.iter().all(|c| c.valid >= submitted_valid) || Instant::now() > wait_until {
            break now;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let cpu = CpuSample::take(&cluster);
    let slowest = per_peer
        .iter()
        .min_by_key(|c| c.valid)
        .cloned()
        .unwrap_or_default();
    let elapsed = per_peer
        .iter()
        .filter_map(|c| c.last)
        .max()
        .map(|t| t.duration_since(started))
        .unwrap_or_else(|| started.elapsed())
        .as_secs_f64();
    latencies.sort_by(|x, y| x.total_cmp(y));
    let mut hashes = Vec::new();
    for (i, p) in peers.iter().enumerate() {
        let msp = &layout.peers[i].msp_id;
        let s = cluster.admin_of(msp)?.status(p, &channel).await?;
        hashes.push(hex::encode(&s.commit_hash));
    }
    hashes.dedup();
    let result = json!({
        "orgs": a.orgs,
        "peers": peers.len(),
        "orderers": a.orderers,
        "in_flight": a.in_flight,
        "policy": policy,
        "key_algorithm": a.key_algorithm.as_str(),
        "seconds": elapsed,
        "committed_valid_on_every_peer": slowest.valid,
        "invalid": per_peer.iter().map(|c| c.invalid).max().unwrap_or(0),
        "errors": errors,
        "first_error": first_error,
        "tx_per_s": slowest.valid as f64 / elapsed,
        // Blocks cut while the previous one replicates grow with load: per-block costs
        // (fsyncs, Raft rounds, commits) are shared by this many transactions.
        "tx_per_block": (slowest.valid + slowest.invalid) as f64 / slowest.blocks.max(1) as f64,
        "p50_ms": percentile(&latencies, 0.50),
        "p99_ms": percentile(&latencies, 0.99),
        "peers_agree": hashes.len() == 1,
        "cpu_ms_per_tx": cpu.per_transaction(&cpu_start, slowest.valid),
        "p50_stage_ms": {
            "endorse": median(stages.endorse),
            "order": median(stages.order),
            "commit": median(stages.commit),
        },
    });
    print_result(&result, a.json);
    Ok(())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|x, y| x.total_cmp(y));
    percentile(&v, 0.5)
}

async fn submit_retry(
    client: &Client,
    peers: &[String],
    orderers: &[String],
    channel: &str,
    chaincode: &str,
    args: &[String],
) -> anyhow::Result<Outcome> {
    let started = Instant::now();
    loop {
        match client
            .submit_transaction(peers, orderers, channel, chaincode, args, START_TIMEOUT)
            .await
        {
            Err(e) if started.elapsed() < START_TIMEOUT => {
                tracing::debug!("retrying deploy: {e:#}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            r => return r,
        }
    }
}

async fn count_commits(
    mut events: tonic::Streaming<crate::proto::peer::FilteredBlock>,
    counter: Arc<Mutex<Committed>>,
    waiters: Waiters,
) {
    while let Ok(Some(fb)) = events.message().await {
        let now = Instant::now();
        let valid = fb
            .transactions
            .iter()
            .filter(|t| t.code == TxValidationCode::Valid as i32)
            .count() as u64;
        {
            let mut c = counter.lock().expect("counter");
            c.valid += valid;
            c.invalid += fb.transactions.len() as u64 - valid;
            c.blocks += 1;
            c.last = Some(now);
        }
        let mut w = waiters.lock().expect("waiters");
        for t in &fb.transactions {
            if let Some(tx) = w.remove(&t.tx_id) {
                let _ = tx.send((fb.number, t.code));
            }
        }
    }
}

/// Milliseconds spent endorsing, ordering (until the orderer's SUCCESS) and waiting for the
/// commit events, per valid transaction.
#[derive(Default)]
struct Stages {
    endorse: Vec<f64>,
    order: Vec<f64>,
    commit: Vec<f64>,
}

/// One in-flight slot: endorse, order, wait for the commit, repeat until `deadline`.
/// Returns latencies (ms) of valid commits, the number of failures and the first one.
async fn slot(
    client: Arc<Client>,
    s: usize,
    endorsers: Vec<String>,
    orderers: Vec<String>,
    channel: String,
    waiters: Vec<Waiters>,
    deadline: Instant,
) -> (Vec<f64>, Stages, u64, Option<String>) {
    let mut latencies = Vec::new();
    let mut stages = Stages::default();
    let mut errors = 0;
    let mut first = None;
    let mut k = 0usize;
    while Instant::now() < deadline {
        // Back and forth between the slot's two accounts.
        let (from, to) = if k.is_multiple_of(2) {
            (format!("x{s}"), format!("y{s}"))
        } else {
            (format!("y{s}"), format!("x{s}"))
        };
        k += 1;
        let t0 = Instant::now();
        let args = vec!["invoke".to_string(), from, to, "1".to_string()];
        match one(&client, &endorsers, &orderers, &channel, &args, &waiters).await {
            Ok((code, [endorsed, ordered])) if code == TxValidationCode::Valid as i32 => {
                let ms = |a: Instant, b: Instant| b.duration_since(a).as_secs_f64() * 1000.0;
                let now = Instant::now();
                latencies.push(ms(t0, now));
                stages.endorse.push(ms(t0, endorsed));
                stages.order.push(ms(endorsed, ordered));
                stages.commit.push(ms(ordered, now));
            }
            Ok((code, _)) => {
                errors += 1;
                first.get_or_insert_with(|| format!("committed with code {code}"));
            }
            Err(e) => {
                errors += 1;
                first.get_or_insert_with(|| format!("{e:#}"));
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    (latencies, stages, errors, first)
}

/// One transaction; its code once every endorsing peer has committed it, and when it was
/// endorsed and ordered.
async fn one(
    client: &Client,
    endorsers: &[String],
    orderers: &[String],
    channel: &str,
    args: &[String],
    waiters: &[Waiters],
) -> anyhow::Result<(i32, [Instant; 2])> {
    let call = client.proposal(channel, CONTRACT, args)?;
    let responses = client.endorse(endorsers, &call).await?;
    let env = client.endorsed_envelope(&call, &responses, endorsers)?;
    let endorsed = Instant::now();
    let id = call.tx_id().to_string();
    let mut pending = Vec::new();
    for w in waiters {
        let (tx, rx) = oneshot::channel();
        w.lock().expect("waiters").insert(id.clone(), tx);
        pending.push(rx);
    }
    let forget = || {
        for w in waiters {
            w.lock().expect("waiters").remove(&id);
        }
    };
    if let Err(e) = client.order(orderers, &env).await {
        forget();
        return Err(e);
    }
    let ordered = Instant::now();
    let all = futures::future::join_all(pending);
    match tokio::time::timeout(Duration::from_secs(30), all).await {
        Ok(results) => {
            let codes: Vec<i32> = results
                .into_iter()
                .map(|r| r.map(|(_, code)| code))
                .collect::<Result<_, _>>()
                .context("a peer's event stream ended")?;
            Ok((codes[0], [endorsed, ordered]))
        }
        Err(_) => {
            forget();
            bail!("not committed within 30s")
        }
    }
}
