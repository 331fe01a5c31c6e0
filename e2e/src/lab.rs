//! The seed lab (`../shared/docs/seed-lab.md`) with Kubernetes verbs: `kubectl apply` of
//! `deploy/first-network.yaml`, the operator's status as `kubectl get orderers` shows it, a
//! leader's pod deleted (a crash: the StatefulSet brings it back), StatefulSets scaled to 0
//! (`docker stop`), and queries and invokes from the client pod. Every step is narrated and
//! checked; the e2e test and `kube-lab` run this same code.

use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};

use crate::cli_pod::CliPod;
use crate::cluster::{network_condition, Cluster, CHANNEL, CONTRACT, FIRST_NETWORK_YAML, NETWORK};
use crate::wait;
use raftnet_crds::status::{QUORUM_AVAILABLE, READY};

/// Bound of one step's waits: a node pod's restart on a loaded 2-core machine included.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(180);

/// The seed lab's steps, numbered as `seed-lab.md` numbers them.
pub const STEPS: [&str; 12] = [
    "kubectl apply -f deploy/first-network.yaml: the operator issues every organisation's CAs and certificates",
    "The ordering service's Raft options (Fabric's defaults), from the Network",
    "The genesis block of channel mychannel",
    "5 orderers and 4 peers run as StatefulSets and are Ready",
    "mychannel is created on the orderers; a Raft leader is elected",
    "The peers of Org1 and Org2 join mychannel",
    "mycc (example02) is deployed with AND('Org1MSP.peer','Org2MSP.peer')",
    "Query a (100); invoke a b 10 with both organisations; query a (90)",
    "Delete the Raft leader's pod; another orderer is elected",
    "With one orderer down invoke and query work; scale the new leader's StatefulSet to 0: a third is elected, and it still works",
    "Scale down orderers until 3 of 5 are down: quorum Lost; queries answer, invokes fail",
    "Scale one stopped orderer back: a leader is elected and invokes work again",
];

/// The lab in progress.
pub struct Lab<'o> {
    pub cluster: Cluster,
    out: &'o mut dyn Write,
    node_image: String,
    cli: Option<CliPod>,
    pub results: Vec<(usize, String, Result<(), String>)>,
    /// Elections timed: what caused them, and how long until every orderer's status named the
    /// new leader.
    pub elections: Vec<(String, Duration)>,
    /// Time from `kubectl apply` until the Network was Ready with a leader.
    pub ready_after: Option<Duration>,
    applied: Option<Instant>,
    /// Orderers whose StatefulSets the lab scaled to 0, in order.
    pub scaled_down: Vec<String>,
    /// The value of `a` the lab expects next.
    a: i64,
}

impl<'o> Lab<'o> {
    pub fn new(cluster: Cluster, node_image: &str, out: &'o mut dyn Write) -> Self {
        Self {
            cluster,
            out,
            node_image: node_image.to_owned(),
            cli: None,
            results: Vec::new(),
            elections: Vec::new(),
            ready_after: None,
            applied: None,
            scaled_down: Vec::new(),
            a: 100,
        }
    }

    pub fn say(&mut self, text: impl AsRef<str>) {
        for line in text.as_ref().lines() {
            let _ = writeln!(self.out, "        {line}");
        }
    }

    pub fn passed(&self) -> bool {
        self.results.len() == STEPS.len() && self.results.iter().all(|(_, _, r)| r.is_ok())
    }

    /// Plays the steps in order; a failed step ends the lab (the later ones build on it).
    pub async fn play(&mut self) {
        for (i, title) in STEPS.iter().enumerate() {
            let n = i + 1;
            if self.results.iter().any(|(_, _, r)| r.is_err()) {
                let skipped = Err("not run: an earlier step failed".to_string());
                self.results.push((n, title.to_string(), skipped));
                continue;
            }
            let _ = writeln!(self.out, "Step {n:>2}  {title}");
            let r = match n {
                1 => self.apply().await,
                2 => self.raft_options().await,
                3 => self.genesis().await,
                4 => self.nodes_ready().await,
                5 => self.leader_elected().await,
                6 => self.peers_joined().await,
                7 => self.contract_deployed().await,
                8 => self.query_invoke_query().await,
                9 => self.delete_leader_pod().await.map(|_| ()),
                10 => self.scale_down_leader().await,
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

    /// The PASS/FAIL line of every step and the elections' times.
    pub fn summary(&mut self, took: Duration) {
        let _ = writeln!(self.out, "Summary ({:.0} s)", took.as_secs_f64());
        for (n, title, r) in &self.results {
            let verdict = if r.is_ok() { "PASS" } else { "FAIL" };
            let _ = writeln!(self.out, "  {verdict}  step {n:>2}  {title}");
        }
        if let Some(t) = self.ready_after {
            let _ = writeln!(
                self.out,
                "Network Ready with a leader {:.1} s after kubectl apply",
                t.as_secs_f64()
            );
        }
        let _ = writeln!(
            self.out,
            "Elections (until every orderer's status names the new leader)"
        );
        for (what, took) in &self.elections {
            let _ = writeln!(self.out, "  {:>7.2} s  {what}", took.as_secs_f64());
        }
    }

    fn cli(&self) -> anyhow::Result<&CliPod> {
        self.cli.as_ref().context("the client pod is not running")
    }

    /// `kubectl ARGS`, narrated.
    async fn kubectl(&mut self, args: &[&str]) -> anyhow::Result<String> {
        let line = self.cluster.kubectl.line(args);
        self.say(format!("$ {line}"));
        self.cluster.kubectl.run(args).await
    }

    /// Prints `kubectl get orderers` as a person watching would see it.
    async fn show_orderers(&mut self) {
        match self.kubectl(&["get", "orderers"]).await {
            Ok(table) => self.say(table.trim_end()),
            Err(e) => self.say(format!("(kubectl get orderers failed: {e:#})")),
        }
    }

    async fn apply(&mut self) -> anyhow::Result<()> {
        self.say(format!(
            "$ {}",
            self.cluster
                .kubectl
                .line(&["apply", "-f", "deploy/first-network.yaml"])
        ));
        let out = self
            .cluster
            .kubectl
            .run_with_input(&["apply", "-f", "-"], Some(FIRST_NETWORK_YAML))
            .await?;
        self.applied = Some(Instant::now());
        self.say(out.trim_end());
        let secrets = self.cluster.api::<Secret>();
        let names = ["orderermsp", "org1msp", "org2msp"].map(|org| format!("{NETWORK}-{org}-ca"));
        for name in &names {
            wait::until(&format!("Secret {name}"), STEP_TIMEOUT, || async {
                Ok(secrets.get_opt(name).await?.map(|_| ()))
            })
            .await?;
        }
        self.say(format!(
            "CA Secrets (created once, never regenerated): {}",
            names.join(", ")
        ));
        Ok(())
    }

    async fn raft_options(&mut self) -> anyhow::Result<()> {
        let network = self.cluster.network().await?;
        let r = &network.spec.raft;
        let b = &network.spec.batch;
        self.say(format!(
            "tickInterval {}, electionTick {}, heartbeatTick {}, maxInflightBlocks {}, snapshotIntervalSize {}",
            r.tick_interval, r.election_tick, r.heartbeat_tick, r.max_inflight_blocks, r.snapshot_interval_size
        ));
        self.say(format!(
            "batchTimeout {}, maxMessageCount {}, preferredMaxBytes {}, absoluteMaxBytes {}",
            b.batch_timeout, b.max_message_count, b.preferred_max_bytes, b.absolute_max_bytes
        ));
        ensure!(
            r.tick_interval == "500ms" && r.election_tick == 10,
            "not the lab's Raft timing"
        );
        Ok(())
    }

    async fn genesis(&mut self) -> anyhow::Result<()> {
        let maps = self.cluster.api::<ConfigMap>();
        let name = format!("{CHANNEL}-genesis");
        let map = wait::until(&format!("ConfigMap {name}"), STEP_TIMEOUT, || async {
            Ok(maps.get_opt(&name).await?)
        })
        .await?;
        let bytes: usize = map
            .binary_data
            .iter()
            .flatten()
            .map(|(_, v)| v.0.len())
            .chain(map.data.iter().flatten().map(|(_, v)| v.len()))
            .sum();
        self.say(format!(
            "ConfigMap {name}: the genesis block, {bytes} bytes (built once by the operator)"
        ));
        Ok(())
    }

    async fn nodes_ready(&mut self) -> anyhow::Result<()> {
        let cluster = self.cluster.clone();
        wait::until("every orderer and peer Ready", STEP_TIMEOUT, || async {
            let orderers = cluster.orderers().await?;
            let peers = cluster.peers().await?;
            let ready =
                |c: Option<&Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition>>| {
                    c.and_then(|c| {
                        raftnet_crds::status::find_condition(c, "Ready").map(|c| c.status == "True")
                    })
                    .unwrap_or(false)
                };
            let all = orderers.len() == 5
                && peers.len() == 4
                && orderers
                    .iter()
                    .all(|o| ready(o.status.as_ref().map(|s| &s.conditions)))
                && peers
                    .iter()
                    .all(|p| ready(p.status.as_ref().map(|s| &s.conditions)));
            Ok(all.then_some(()))
        })
        .await?;
        let took = self.applied.map(|t| t.elapsed()).unwrap_or_default();
        self.say(format!(
            "5 orderers and 4 peers Ready {:.1} s after kubectl apply",
            took.as_secs_f64()
        ));
        let pods = self.kubectl(&["get", "statefulsets"]).await?;
        self.say(pods.trim_end());
        Ok(())
    }

    /// Waits until every reporting orderer names the same leader; returns it.
    async fn wait_leader(&self, not: Option<&str>) -> anyhow::Result<String> {
        let cluster = self.cluster.clone();
        let what = match not {
            Some(old) => format!("a leader other than {old}"),
            None => "a Raft leader".to_owned(),
        };
        wait::until(&what, STEP_TIMEOUT, || async {
            Ok(cluster
                .agreed_leader()
                .await?
                .filter(|l| Some(l.as_str()) != not))
        })
        .await
    }

    async fn leader_elected(&mut self) -> anyhow::Result<()> {
        let leader = self.wait_leader(None).await?;
        let cluster = self.cluster.clone();
        wait::until("the Network Ready with a leader", STEP_TIMEOUT, || async {
            let network = cluster.network().await?;
            let ready = network_condition(&network, READY).is_some_and(|(holds, _)| holds);
            let leads = network
                .status
                .as_ref()
                .and_then(|s| s.leader.clone())
                .is_some();
            Ok((leads && ready).then_some(()))
        })
        .await?;
        self.ready_after = self.applied.map(|t| t.elapsed());
        if let Some(t) = self.ready_after {
            self.elections
                .push(("first election (from kubectl apply)".into(), t));
        }
        self.say(format!("Raft leader: {leader}"));
        self.show_orderers().await;
        let networks = self.kubectl(&["get", "networks"]).await?;
        self.say(networks.trim_end());
        Ok(())
    }

    async fn peers_joined(&mut self) -> anyhow::Result<()> {
        let cluster = self.cluster.clone();
        let joined = wait::until("the peers joined to mychannel", STEP_TIMEOUT, || async {
            let channel = cluster.channel().await?;
            let joined = channel.status.map(|s| s.joined).unwrap_or_default();
            let peers = joined.iter().filter(|n| n.starts_with("peer")).count();
            Ok((peers == 4).then_some(joined))
        })
        .await?;
        self.say(format!("joined: {}", joined.join(", ")));
        Ok(())
    }

    async fn contract_deployed(&mut self) -> anyhow::Result<()> {
        let cluster = self.cluster.clone();
        let deployed = wait::until("mycc deployed", STEP_TIMEOUT, || async {
            let channel = cluster.channel().await?;
            let deployed = channel.status.map(|s| s.deployed).unwrap_or_default();
            Ok(deployed
                .iter()
                .any(|d| d.starts_with(&format!("{CONTRACT}@")))
                .then_some(deployed))
        })
        .await?;
        self.say(format!("deployed: {}", deployed.join(", ")));
        self.say(format!(
            "$ {}",
            self.cluster
                .kubectl
                .line(&["apply", "-f", "-  # the client pod raftnet-cli"])
        ));
        let cli = CliPod::start(
            &self.cluster,
            &self.node_image,
            &["org1".into(), "org2".into()],
            5,
        )
        .await?;
        self.cli = Some(cli);
        self.say("client pod raftnet-cli runs `raftnet channel status --watch` (kubectl logs -f raftnet-cli)");
        Ok(())
    }

    async fn query(&mut self, peer: &str) -> anyhow::Result<i64> {
        let answer = self.cli()?.query("org1", peer, &["query", "a"]).await?;
        let a: i64 = answer
            .lines()
            .last()
            .unwrap_or_default()
            .trim()
            .parse()
            .with_context(|| format!("query a answered {answer:?}, not a number"))?;
        self.say(format!("query a on {peer}: {a}"));
        Ok(a)
    }

    async fn invoke(&mut self) -> anyhow::Result<()> {
        let done = self
            .cli()?
            .invoke(
                "org1",
                &["peer0-org1", "peer0-org2"],
                &["invoke", "a", "b", "10"],
            )
            .await?;
        self.say(format!(
            "invoke a b 10: {}",
            done.output.lines().last().unwrap_or_default()
        ));
        self.a -= 10;
        Ok(())
    }

    /// Query a, invoke a b 10, query a on the other organisation's peer.
    pub async fn query_invoke_query(&mut self) -> anyhow::Result<()> {
        let before = self.a;
        let a = self.query("peer0-org1").await?;
        ensure!(a == before, "a is {a}, expected {before}");
        self.invoke().await?;
        let a = self.query("peer0-org2").await?;
        ensure!(a == before - 10, "a is {a}, expected {}", before - 10);
        Ok(())
    }

    /// Deletes the leader's pod (a crash; the StatefulSet recreates it with its data) and
    /// times until every orderer's status names another leader.
    pub async fn delete_leader_pod(&mut self) -> anyhow::Result<String> {
        let old = self.wait_leader(None).await?;
        let pod = format!("{old}-0");
        self.kubectl(&["delete", "pod", &pod, "--wait=false"])
            .await?;
        self.next_leader(&old, "the delete", format!("after deleting pod {pod}"))
            .await
    }

    /// Times until every orderer's status names a leader other than `old` (from now: call it
    /// right after the action that deposed `old`), narrates it and records the election.
    async fn next_leader(
        &mut self,
        old: &str,
        action: &str,
        cause: String,
    ) -> anyhow::Result<String> {
        let t0 = Instant::now();
        let new = self.wait_leader(Some(old)).await?;
        let took = t0.elapsed();
        self.say(format!(
            "Raft leader changed: {old} -> {new} ({:.2} s after {action})",
            took.as_secs_f64()
        ));
        self.elections.push((cause, took));
        self.show_orderers().await;
        Ok(new)
    }

    async fn scale(&mut self, orderer: &str, replicas: u32) -> anyhow::Result<()> {
        let replicas = format!("--replicas={replicas}");
        self.kubectl(&["scale", "statefulset", orderer, &replicas])
            .await?;
        Ok(())
    }

    async fn scale_down_leader(&mut self) -> anyhow::Result<()> {
        self.query_invoke_query().await?;
        let old = self.wait_leader(None).await?;
        self.scale(&old, 0).await?;
        self.scaled_down.push(old.clone());
        self.next_leader(&old, "the scale", format!("after scaling {old} to 0"))
            .await?;
        self.query_invoke_query().await
    }

    async fn lose_quorum(&mut self) -> anyhow::Result<()> {
        // The pod deleted in step 9 comes back (Kubernetes restarts what crashes): wait for it,
        // then stop followers until three of five are down; the leader, left running without
        // a majority, must notice the loss itself.
        let cluster = self.cluster.clone();
        let scaled = self.scaled_down.clone();
        let up = wait::until(
            "every orderer not scaled down to be up",
            STEP_TIMEOUT,
            || async {
                let orderers = cluster.orderers().await?;
                let up: Vec<String> = orderers
                    .iter()
                    .filter(|o| !scaled.contains(&o.metadata.name.clone().unwrap_or_default()))
                    .filter(|o| {
                        let role = o.status.as_ref().and_then(|s| s.role.as_deref());
                        role.is_some_and(|r| r == "Leader" || r == "Follower")
                    })
                    .filter_map(|o| o.metadata.name.clone())
                    .collect();
                Ok((up.len() + scaled.len() == 5).then_some(up))
            },
        )
        .await?;
        self.say(format!(
            "up: {} (the pod deleted in step 9 is back)",
            up.join(", ")
        ));
        let leader = self.wait_leader(None).await?;
        let mut up = up;
        up.sort_by_key(|n| *n == leader);
        while self.scaled_down.len() < 3 {
            let victim = up.remove(0);
            self.scale(&victim, 0).await?;
            self.scaled_down.push(victim);
        }
        self.say(format!("down: {} (3 of 5)", self.scaled_down.join(", ")));
        let t0 = Instant::now();
        let cluster = self.cluster.clone();
        let message = wait::until(
            "the Network to report quorum Lost",
            STEP_TIMEOUT,
            || async {
                let network = cluster.network().await?;
                let lost =
                    network.status.as_ref().and_then(|s| s.quorum.as_deref()) == Some("Lost");
                Ok(match network_condition(&network, QUORUM_AVAILABLE) {
                    Some((false, message)) if lost => Some(message),
                    _ => None,
                })
            },
        )
        .await?;
        self.say(format!(
            "Network quorum Lost, QuorumAvailable=False ({:.1} s after the last scale): {message}",
            t0.elapsed().as_secs_f64()
        ));
        // The leader among the survivors steps down once it has not heard from a majority for
        // an election timeout (Raft's check-quorum): until then it still accepts transactions,
        // which it cannot commit (they would be committed later, once a majority is back).
        let cluster = self.cluster.clone();
        wait::until(
            "the surviving leader to step down",
            STEP_TIMEOUT,
            || async {
                let orderers = cluster.orderers().await?;
                let leading = orderers
                    .iter()
                    .filter_map(|o| o.status.as_ref()?.role.as_deref())
                    .any(|role| role == "Leader");
                Ok((!leading).then_some(()))
            },
        )
        .await?;
        self.say(format!(
            "no orderer leads any more ({:.1} s after the last scale): the survivors cannot form a majority of 5",
            t0.elapsed().as_secs_f64()
        ));
        self.show_orderers().await;
        let networks = self.kubectl(&["get", "networks"]).await?;
        self.say(networks.trim_end());
        let a = self.query("peer1-org1").await?;
        ensure!(a == self.a, "a is {a}, expected {}", self.a);
        let deadline = Instant::now() + STEP_TIMEOUT;
        let failed = loop {
            let attempt = self
                .cli()?
                .invoke(
                    "org1",
                    &["peer1-org1", "peer1-org2"],
                    &["invoke", "a", "b", "10"],
                )
                .await;
            let e = match attempt {
                Ok(done) => bail!("an invoke was committed without a quorum: {}", done.output),
                Err(e) => format!("{e:#}"),
            };
            if e.contains("no Raft leader") {
                break e;
            }
            if Instant::now() >= deadline {
                bail!("invokes failed, but never with \"no Raft leader\"; last: {e}");
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        };
        let why = failed
            .lines()
            .find(|l| l.contains("no Raft leader"))
            .unwrap_or(&failed);
        self.say(format!("invoke a b 10 fails: {}", why.trim()));
        Ok(())
    }

    async fn recover(&mut self) -> anyhow::Result<()> {
        let back = self.scaled_down.remove(0);
        self.scale(&back, 1).await?;
        let t0 = Instant::now();
        let leader = self.wait_leader(None).await?;
        let took = t0.elapsed();
        self.say(format!(
            "Raft leader: {leader} ({:.1} s after scaling {back} back)",
            took.as_secs_f64()
        ));
        self.elections
            .push((format!("after scaling {back} back"), took));
        let cluster = self.cluster.clone();
        wait::until("the Network's quorum available", STEP_TIMEOUT, || async {
            let network = cluster.network().await?;
            let quorum = network_condition(&network, QUORUM_AVAILABLE);
            Ok(quorum.filter(|(holds, _)| *holds).map(|_| ()))
        })
        .await?;
        let networks = self.kubectl(&["get", "networks"]).await?;
        self.say(networks.trim_end());
        self.query_invoke_query().await
    }

    /// After the lab: every StatefulSet scaled back, the Network Healthy and Ready again.
    pub async fn restore(&mut self) -> anyhow::Result<()> {
        for orderer in std::mem::take(&mut self.scaled_down) {
            self.scale(&orderer, 1).await?;
        }
        let cluster = self.cluster.clone();
        wait::until("the Network Healthy and Ready", STEP_TIMEOUT, || async {
            let network = cluster.network().await?;
            let healthy =
                network.status.as_ref().and_then(|s| s.quorum.as_deref()) == Some("Healthy");
            let ready = network_condition(&network, READY).is_some_and(|(holds, _)| holds);
            Ok((healthy && ready).then_some(()))
        })
        .await?;
        let networks = self.kubectl(&["get", "networks"]).await?;
        self.say(networks.trim_end());
        Ok(())
    }

    /// The value of `a` the lab expects now.
    pub fn expected_a(&self) -> i64 {
        self.a
    }

    pub fn cli_pod(&self) -> Option<&CliPod> {
        self.cli.as_ref()
    }

    pub fn out(&mut self) -> &mut dyn Write {
        self.out
    }

    /// One more query/invoke/query round (after the lab's scenarios).
    pub async fn round(&mut self) -> anyhow::Result<()> {
        self.query_invoke_query().await
    }
}
