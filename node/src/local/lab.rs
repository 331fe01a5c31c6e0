//! The seed lab (`../shared/docs/seed-lab.md`), played on a fresh network of its own from
//! `deploy/first-network.yaml`: every step narrated as the lab tells it and checked, ending
//! with a PASS/FAIL line per step and the time each election took. `raftnet lab` and the
//! integration test run this same code.

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use super::network::LocalNetwork;
use super::process::node_binary;
use crate::client::Client;
use crate::gateway::Outcome;
use crate::network::manifest;

/// The lab's network: the manifest users apply.
const FIRST_NETWORK: &str = include_str!("../../../deploy/first-network.yaml");
const CHANNEL: &str = "mychannel";
const CONTRACT: &str = "mycc";
const STEP_TIMEOUT: Duration = Duration::from_secs(60);

/// The seed lab's steps, as `seed-lab.md` numbers them.
const STEPS: [&str; 12] = [
    "Generate the crypto material of every organisation",
    "The ordering service's Raft options (Fabric's defaults)",
    "The genesis block of channel mychannel",
    "Start 5 orderers and 4 peers",
    "Create mychannel on the orderers; a Raft leader is elected",
    "Join the peers of Org1 and Org2 to mychannel",
    "Instantiate mycc (example02) with AND('Org1MSP.peer','Org2MSP.peer')",
    "Query a (100); invoke a b 10 with both organisations; query a (90)",
    "Stop the Raft leader; another orderer is elected",
    "With one orderer down invoke and query work; stop the new leader too: a third is elected, and it still works",
    "Stop a third orderer (3 of 5 down): no leader; queries answer, invokes fail",
    "Start one stopped orderer: a leader is elected and invokes work again",
];

struct Lab<'o, W: Write> {
    net: LocalNetwork,
    out: &'o mut W,
    client: Client,
    results: Vec<(usize, String, Result<(), String>)>,
    elections: Vec<(String, Duration)>,
    /// Orderers the lab stopped, in order.
    stopped: Vec<String>,
}

/// Plays the lab; Ok(true) when every step passed. Leaves the network running with `keep`.
pub async fn run<W: Write>(
    data_dir: Option<PathBuf>,
    keep: bool,
    out: &mut W,
) -> anyhow::Result<bool> {
    let data_dir = match data_dir {
        Some(d) => d,
        None => tempfile::Builder::new()
            .prefix("raftnet-lab")
            .tempdir()?
            .keep(),
    };
    let m = raftnet_crds::load_manifests(FIRST_NETWORK).context("deploy/first-network.yaml")?;
    let plan = manifest::plan(&m)?;
    writeln!(
        out,
        "The seed lab on network {} in {}\n",
        plan.name,
        data_dir.display()
    )?;
    let started = Instant::now();
    let (net, _) = LocalNetwork::create_or_open(&data_dir, &plan, &node_binary()?)?;
    net.save_manifests(&m)?;
    let client = Client::load(&net.layout.org_clients[0].1)?;
    let mut lab = Lab {
        net,
        out,
        client,
        results: Vec::new(),
        elections: Vec::new(),
        stopped: Vec::new(),
    };
    lab.play().await;
    let passed = lab.results.iter().all(|(_, _, r)| r.is_ok());
    lab.summary(started.elapsed())?;
    if keep {
        writeln!(
            lab.out,
            "\nThe network keeps running: raftnet get orderers --data-dir {0}; raftnet down --purge --data-dir {0}",
            data_dir.display()
        )?;
    } else {
        lab.net.down(true)?;
    }
    Ok(passed)
}

impl<W: Write> Lab<'_, W> {
    fn say(&mut self, text: impl AsRef<str>) {
        let _ = writeln!(self.out, "        {}", text.as_ref());
    }

    /// Plays the steps in order; a failed step ends the lab (the later steps build on it).
    async fn play(&mut self) {
        for (i, title) in STEPS.iter().enumerate() {
            let n = i + 1;
            if self.results.iter().any(|(_, _, r)| r.is_err()) {
                let skipped = Err("not run: an earlier step failed".to_string());
                self.results.push((n, title.to_string(), skipped));
                continue;
            }
            let _ = writeln!(self.out, "Step {n:>2}  {title}");
            let r = match n {
                1 => self.crypto(),
                2 => self.raft_options(),
                3 => self.channel_block(),
                4 => self.start().await,
                5 => self.create_channel().await,
                6 => self.join_peers().await,
                7 => self.instantiate().await,
                8 => self.query_invoke_query(100).await,
                9 => self.kill_leader().await,
                10 => self.second_leader().await,
                11 => self.lose_quorum().await,
                _ => self.recover().await,
            }
            .map_err(|e| format!("{e:#}"));
            let _ = match &r {
                Ok(()) => writeln!(self.out, "        PASS\n"),
                Err(e) => writeln!(self.out, "        FAIL: {e}\n"),
            };
            self.results.push((n, title.to_string(), r));
        }
    }

    fn crypto(&mut self) -> anyhow::Result<()> {
        let mut orgs = vec![self.net.layout.admin.clone()];
        orgs.extend(self.net.layout.org_admins.iter().map(|(_, p)| p.clone()));
        for (msp, _) in self.net.layout.org_admins.clone() {
            self.say(format!(
                "{msp}: CA, TLS CA, peers, admin and client certificates"
            ));
        }
        self.say(format!(
            "OrdererMSP: CA, TLS CA, {} orderers, admin",
            self.net.layout.orderers.len()
        ));
        for p in orgs {
            Client::load(&p).with_context(|| format!("identity {}", p.display()))?;
        }
        Ok(())
    }

    fn raft_options(&mut self) -> anyhow::Result<()> {
        let block = std::fs::read(&self.net.layout.genesis)?;
        let block: crate::proto::common::Block = prost::Message::decode(&block[..])?;
        let cfg = crate::ledger::channel_config(&block).map_err(anyhow::Error::msg)?;
        let r = cfg.raft.context("no Raft options")?;
        self.say(format!(
            "tick interval {} ms, election tick {}, heartbeat tick {}, {} blocks in flight, snapshots every {} MiB",
            r.tick_interval_ms, r.election_tick, r.heartbeat_tick, r.max_inflight_blocks, r.snapshot_interval_size >> 20
        ));
        if (
            r.tick_interval_ms,
            r.election_tick,
            r.heartbeat_tick,
            r.max_inflight_blocks,
        ) != (500, 10, 1, 5)
        {
            bail!("the lab uses Fabric's 500ms, 10, 1, 5");
        }
        Ok(())
    }

    fn channel_block(&mut self) -> anyhow::Result<()> {
        let ch = &self.net.layout.channels[0];
        let text = format!(
            "{}: organisations {}, consenters {}",
            ch.name,
            ch.orgs.join(", "),
            ch.consenters.join(", ")
        );
        self.say(text);
        anyhow::ensure!(
            self.net.layout.channels[0].genesis.is_file(),
            "no genesis block"
        );
        Ok(())
    }

    async fn start(&mut self) -> anyhow::Result<()> {
        let started = self.net.start_all().await?;
        self.say(format!("running: {}", started.join(", ")));
        Ok(())
    }

    async fn create_channel(&mut self) -> anyhow::Result<()> {
        let t0 = Instant::now();
        self.net.join_orderers(CHANNEL).await?;
        let leader = self.net.wait_leader(CHANNEL, STEP_TIMEOUT).await?;
        let took = t0.elapsed();
        self.say(format!(
            "Raft leader changed: 0 -> {leader} (elected {:.1} s after the orderers joined)",
            took.as_secs_f64()
        ));
        self.elections.push(("first election".into(), took));
        Ok(())
    }

    async fn join_peers(&mut self) -> anyhow::Result<()> {
        let joined = self.net.join_peers(CHANNEL).await?;
        self.say(format!("joined: {}", joined.join(", ")));
        Ok(())
    }

    async fn instantiate(&mut self) -> anyhow::Result<()> {
        let ch = self.net.layout.channels[0].clone();
        let c = ch
            .contracts
            .iter()
            .find(|c| c.name == CONTRACT)
            .context("mycc")?;
        self.net.deploy(CHANNEL, c).await?;
        self.say(format!("init {}", c.init.join(" ")));
        Ok(())
    }

    fn endorsers(&self) -> Vec<String> {
        ["peer0.org1", "peer0.org2"]
            .iter()
            .filter_map(|n| self.net.address(n).map(String::from))
            .collect()
    }

    fn orderers(&self) -> Vec<String> {
        self.net
            .layout
            .orderers
            .iter()
            .map(|o| o.address.clone())
            .collect()
    }

    async fn query(&mut self, peer: &str) -> anyhow::Result<i64> {
        let addr = self.net.address(peer).context("peer")?.to_string();
        let v = self
            .client
            .query(&addr, CHANNEL, CONTRACT, &["query".into(), "a".into()])
            .await?;
        let text = String::from_utf8_lossy(&v).to_string();
        self.say(format!("query a on {peer}: {text}"));
        text.parse()
            .with_context(|| format!("{text:?} is not a number"))
    }

    /// Invoke a b 10; with `retry_for`, the same transaction is sent again while the
    /// ordering service is electing a leader.
    async fn invoke_retrying(&mut self, retry_for: Duration) -> anyhow::Result<Outcome> {
        let o = self
            .client
            .submit_transaction_retrying(
                &self.endorsers(),
                &self.orderers(),
                CHANNEL,
                CONTRACT,
                &["invoke".into(), "a".into(), "b".into(), "10".into()],
                STEP_TIMEOUT,
                retry_for,
            )
            .await?;
        self.say(format!(
            "invoke a b 10: {} in block {}",
            o.code.as_str_name(),
            o.block
        ));
        anyhow::ensure!(
            o.is_valid(),
            "the invoke was committed as {}",
            o.code.as_str_name()
        );
        Ok(o)
    }

    async fn invoke(&mut self) -> anyhow::Result<Outcome> {
        self.invoke_retrying(Duration::ZERO).await
    }

    /// Query a (expect `before`), invoke, query on the other organisation (expect -10).
    async fn query_invoke_query(&mut self, before: i64) -> anyhow::Result<()> {
        let a = self.query("peer0.org1").await?;
        anyhow::ensure!(a == before, "a is {a}, expected {before}");
        self.invoke().await?;
        let a = self.query("peer0.org2").await?;
        anyhow::ensure!(a == before - 10, "a is {a}, expected {}", before - 10);
        Ok(())
    }

    async fn leader(&mut self) -> anyhow::Result<String> {
        self.net.wait_leader(CHANNEL, STEP_TIMEOUT).await
    }

    /// Kills the current leader and times the election of the next.
    async fn kill_leader_and_time(&mut self) -> anyhow::Result<String> {
        let old = self.leader().await?;
        self.net.daemon(&old)?.kill()?;
        let t0 = Instant::now();
        self.stopped.push(old.clone());
        self.say(format!("stopped the leader, {old} (SIGKILL)"));
        let new = self.net.wait_leader(CHANNEL, STEP_TIMEOUT).await?;
        let took = t0.elapsed();
        anyhow::ensure!(new != old, "{old} still leads");
        self.say(format!(
            "Raft leader changed: {old} -> {new} ({:.2} s after the kill)",
            took.as_secs_f64()
        ));
        self.elections.push((format!("after stopping {old}"), took));
        Ok(new)
    }

    async fn kill_leader(&mut self) -> anyhow::Result<()> {
        self.kill_leader_and_time().await.map(|_| ())
    }

    async fn second_leader(&mut self) -> anyhow::Result<()> {
        self.query_invoke_query(90).await?;
        self.kill_leader_and_time().await?;
        self.query_invoke_query(80).await
    }

    async fn lose_quorum(&mut self) -> anyhow::Result<()> {
        let leader = self.leader().await?;
        // Stop a follower, so that the survivors must notice the loss themselves.
        let victim = self
            .net
            .layout
            .orderers
            .iter()
            .map(|o| o.name.clone())
            .find(|n| *n != leader && !self.stopped.contains(n))
            .context("no third orderer to stop")?;
        self.net.daemon(&victim)?.kill()?;
        self.stopped.push(victim.clone());
        self.say(format!(
            "stopped {victim}; down: {}",
            self.stopped.join(", ")
        ));
        let t0 = Instant::now();
        loop {
            let statuses = crate::cli::get::poll(&self.net).await;
            let leaders: Vec<String> = statuses
                .iter()
                .filter(|((n, c), _)| c == CHANNEL && n.starts_with("orderer"))
                .filter_map(|(_, s)| s.as_ref())
                .filter(|s| s.leader_id != 0)
                .map(|s| s.leader_name.clone())
                .collect();
            if leaders.is_empty() {
                break;
            }
            anyhow::ensure!(
                t0.elapsed() < STEP_TIMEOUT,
                "orderers still report a leader: {leaders:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.say(format!(
            "no leader: the 2 survivors cannot form a majority of 5 ({:.1} s after the stop)",
            t0.elapsed().as_secs_f64()
        ));
        let a = self.query("peer1.org1").await?;
        anyhow::ensure!(a == 70, "a is {a}, expected 70");
        match self.invoke().await {
            Ok(o) => bail!("the invoke succeeded without a quorum: {o:?}"),
            Err(e) => {
                let msg = format!("{e:#}");
                self.say(format!("invoke a b 10 fails: {}", first_line(&msg)));
                anyhow::ensure!(
                    msg.contains("ordering service is unavailable"),
                    "unexpected error: {msg}"
                );
            }
        }
        Ok(())
    }

    async fn recover(&mut self) -> anyhow::Result<()> {
        let back = self.stopped.first().cloned().context("nothing stopped")?;
        self.net.daemon(&back)?.start(&self.net.binary)?;
        let t0 = Instant::now();
        self.say(format!("started {back} again"));
        let leader = self.net.wait_leader(CHANNEL, STEP_TIMEOUT).await?;
        let took = t0.elapsed();
        self.say(format!(
            "Raft leader changed: 0 -> {leader} ({:.1} s after the start)",
            took.as_secs_f64()
        ));
        self.elections
            .push((format!("after starting {back}"), took));
        // The first invoke may still meet the end of the election.
        self.invoke_retrying(STEP_TIMEOUT).await?;
        let a = self.query("peer1.org2").await?;
        anyhow::ensure!(a == 60, "a is {a}, expected 60");
        Ok(())
    }

    fn summary(&mut self, took: Duration) -> anyhow::Result<()> {
        writeln!(self.out, "Summary ({:.0} s)", took.as_secs_f64())?;
        let mut results = std::mem::take(&mut self.results);
        results.sort_by_key(|(n, _, _)| *n);
        for (n, title, r) in &results {
            let verdict = if r.is_ok() { "PASS" } else { "FAIL" };
            writeln!(self.out, "  {verdict}  step {n:>2}  {title}")?;
        }
        writeln!(self.out, "Elections")?;
        for (what, d) in &self.elections {
            writeln!(self.out, "  {:>6.2} s  {what}", d.as_secs_f64())?;
        }
        self.results = results;
        Ok(())
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}
