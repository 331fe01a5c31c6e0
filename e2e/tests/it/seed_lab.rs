//! The seed lab on a real cluster, then what only Kubernetes adds: the operator's pod deleted
//! mid-way, a node's pod recreated with its identity and data, evictions held back by the
//! PodDisruptionBudget, and repeated leader pod deletions timed.
//!
//! Needs a cluster with the images loaded: `e2e/run.sh` makes one and runs this; against any
//! other cluster, `KUBECONFIG=... cargo nextest run -p raftnet-e2e --run-ignored only`.

use std::time::Instant;

use anyhow::{ensure, Context};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, Secret};
use kube::api::ListParams;
use raftnet_e2e::cluster::Cluster;
use raftnet_e2e::install::{self, OPERATOR_NAMESPACE};
use raftnet_e2e::kubectl::Kubectl;
use raftnet_e2e::lab::{Lab, STEP_TIMEOUT};
use raftnet_e2e::{diagnose, wait};

const NEEDS_CLUSTER: &str = "needs a cluster with the images loaded: run e2e/run.sh";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a cluster with the images loaded: run e2e/run.sh"]
async fn seed_lab_with_kubectl() {
    let namespace = std::env::var("RAFTNET_E2E_NAMESPACE").unwrap_or_else(|_| "raftnet-lab".into());
    let cluster = Cluster::connect(&namespace).await.expect(NEEDS_CLUSTER);
    let started = Instant::now();
    if let Err(e) = prepare(&cluster).await {
        fail(&namespace, format!("{e:#}")).await;
    }
    let mut stdout = std::io::stdout();
    let mut lab = Lab::new(cluster.clone(), &install::node_image(), &mut stdout);
    lab.play().await;
    lab.summary(started.elapsed());
    if !lab.passed() {
        fail(
            &namespace,
            "a step of the seed lab failed (FAIL lines above)".into(),
        )
        .await;
    }
    let scenarios = async {
        watched_from_the_client_pod(&lab.cluster).await?;
        lab.restore().await.context("restoring every orderer")?;
        timed_failovers(&mut lab, 4)
            .await
            .context("leader pod deletions")?;
        operator_away(&mut lab)
            .await
            .context("the operator's pod deleted")?;
        node_pod_recreated(&mut lab)
            .await
            .context("a peer's pod deleted")?;
        evictions_held_back(&lab.cluster)
            .await
            .context("evictions")?;
        anyhow::Ok(())
    };
    if let Err(e) = scenarios.await {
        fail(&namespace, format!("{e:#}")).await;
    }
    println!(
        "e2e suite passed in {:.0} s",
        started.elapsed().as_secs_f64()
    );
}

/// Namespace and operator (installed from the chart unless it runs already).
async fn prepare(cluster: &Cluster) -> anyhow::Result<()> {
    let kubectl = Kubectl::new("default");
    if kubectl
        .run(&["get", "namespace", &cluster.namespace])
        .await
        .is_err()
    {
        kubectl
            .run(&["create", "namespace", &cluster.namespace])
            .await?;
    }
    let t0 = Instant::now();
    if install::ensure_operator(cluster).await? {
        println!(
            "helm install raftnet-operator charts/raftnet-operator: operator available after {:.1} s",
            t0.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

async fn fail(namespace: &str, why: String) -> ! {
    eprintln!("{}", diagnose::report(namespace).await);
    panic!("{why}");
}

/// What a person following `kubectl logs -f raftnet-cli` saw: the orderers' roles as they
/// changed, several leaders among them.
async fn watched_from_the_client_pod(cluster: &Cluster) -> anyhow::Result<()> {
    let log = cluster
        .kubectl
        .run(&["logs", raftnet_e2e::cli_pod::POD])
        .await?;
    let leaders: std::collections::BTreeSet<&str> = log
        .lines()
        .filter(|l| l.split_whitespace().nth(2) == Some("Leader"))
        .filter_map(|l| l.split_whitespace().nth(3))
        .collect();
    ensure!(
        leaders.len() >= 2,
        "kubectl logs raftnet-cli shows leaders {leaders:?}, expected the lab's changes:\n{log}"
    );
    println!("kubectl logs raftnet-cli showed the leaders {leaders:?}");
    Ok(())
}

/// Deletes the leader's pod `rounds` times, each after the network is whole again, and prints
/// the median and the slowest time until every orderer's status named the new leader.
async fn timed_failovers(lab: &mut Lab<'_>, rounds: usize) -> anyhow::Result<()> {
    let mut times = Vec::new();
    for _ in 0..rounds {
        let before = lab.elections.len();
        lab.delete_leader_pod().await?;
        times.push(lab.elections[before].1);
        lab.restore().await?;
    }
    lab.round().await?;
    times.sort();
    println!(
        "leader pod deleted -> new leader in kubectl get orderers: median {:.2} s, max {:.2} s ({} deletions)",
        times[times.len() / 2].as_secs_f64(),
        times[times.len() - 1].as_secs_f64(),
        times.len()
    );
    Ok(())
}

/// The operator's pod is deleted: the network keeps ordering without it, and once its
/// Deployment brings it back, status follows the nodes again (a leader change shows).
async fn operator_away(lab: &mut Lab<'_>) -> anyhow::Result<()> {
    let system = Kubectl::new(OPERATOR_NAMESPACE);
    system
        .run(&[
            "delete",
            "pod",
            "-l",
            "app.kubernetes.io/name=raftnet-operator",
            "--wait=false",
        ])
        .await?;
    println!("operator pod deleted; invoking while it is away");
    lab.round().await?;
    install::operator_available(&lab.cluster).await?;
    let new = lab.delete_leader_pod().await?;
    println!("after the operator's restart, status shows the new leader {new}");
    lab.restore().await
}

/// A peer's pod is deleted: the StatefulSet recreates it with the same certificates (its
/// Secret) and the same ledger (its volume), and it answers at the height it had.
async fn node_pod_recreated(lab: &mut Lab<'_>) -> anyhow::Result<()> {
    let cluster = lab.cluster.clone();
    let (node, pod_name) = ("peer1-org2", "peer1-org2-0");
    let pods = cluster.api::<Pod>();
    let uid = |o: &kube::api::ObjectMeta| o.uid.clone().unwrap_or_default();
    let old_pod = uid(&pods.get(pod_name).await?.metadata);
    let secret = uid(&cluster
        .api::<Secret>()
        .get(&format!("{node}-crypto"))
        .await?
        .metadata);
    let claims = cluster.api::<PersistentVolumeClaim>();
    let claim_name = format!("data-{pod_name}");
    let claim = uid(&claims
        .get(&claim_name)
        .await
        .with_context(|| format!("PVC {claim_name}"))?
        .metadata);
    let height = peer_height(&cluster, node)
        .await?
        .context("the peer reports no height")?;
    cluster.kubectl.run(&["delete", "pod", pod_name]).await?;
    wait::until(
        "the peer's pod recreated and Ready",
        STEP_TIMEOUT,
        || async {
            let pod = pods.get(pod_name).await?;
            let ready = pod
                .status
                .as_ref()
                .and_then(|s| s.container_statuses.as_ref())
                .is_some_and(|c| c.iter().all(|c| c.ready));
            Ok((uid(&pod.metadata) != old_pod && ready).then_some(()))
        },
    )
    .await?;
    ensure!(
        uid(&cluster
            .api::<Secret>()
            .get(&format!("{node}-crypto"))
            .await?
            .metadata)
            == secret,
        "the node's certificates were issued again"
    );
    ensure!(
        uid(&claims.get(&claim_name).await?.metadata) == claim,
        "the node's volume is a new one"
    );
    let again = wait::until("the peer to report its height", STEP_TIMEOUT, || async {
        peer_height(&cluster, node).await
    })
    .await?;
    ensure!(
        again == height,
        "height {again} after the restart, {height} before"
    );
    let a = lab
        .cli_pod()
        .context("no client pod")?
        .query("org2", node, &["query", "a"])
        .await?;
    ensure!(
        a.lines().last() == Some(lab.expected_a().to_string().as_str()),
        "{node} answers a = {a} after its restart, expected {}",
        lab.expected_a()
    );
    println!("{pod_name} recreated: same Secret, same volume, height {again}, a = {a}");
    Ok(())
}

async fn peer_height(cluster: &Cluster, node: &str) -> anyhow::Result<Option<u64>> {
    let peer = cluster.api::<raftnet_crds::Peer>().get(node).await?;
    Ok(peer.status.and_then(|s| s.height))
}

/// Two orderers evicted at once (a drain): the first goes, the second is refused by the
/// budget until the first is back.
async fn evictions_held_back(cluster: &Cluster) -> anyhow::Result<()> {
    let version = eviction_version(cluster).await?;
    // A drain starts from a whole group: the budget allows one disruption.
    let budgets = kube::Api::<kube::api::DynamicObject>::namespaced_with(
        cluster.client.clone(),
        &cluster.namespace,
        &kube::api::ApiResource::from_gvk(&kube::api::GroupVersionKind::gvk(
            "policy",
            version.trim_start_matches("policy/"),
            "PodDisruptionBudget",
        )),
    );
    let budget_status = || async {
        let pdb = budgets.get("first-network-orderers").await?;
        anyhow::Ok(pdb.data["status"].clone())
    };
    wait::until(
        "the budget to allow one disruption",
        STEP_TIMEOUT,
        || async {
            let status = budget_status().await?;
            let whole = status["currentHealthy"] == 5 && status["disruptionsAllowed"] == 1;
            Ok(whole.then_some(()))
        },
    )
    .await?;
    let first = evict(cluster, "orderer2-0", &version).await?;
    ensure!(
        first.0 == 201 || first.0 == 200,
        "first eviction: {} {}",
        first.0,
        first.1
    );
    println!(
        "after evicting orderer2-0, the budget: {}",
        budget_status().await?
    );
    let second = evict(cluster, "orderer3-0", &version).await?;
    ensure!(
        second.0 == 429,
        "a second orderer was evicted while the first was away: {} {}",
        second.0,
        second.1
    );
    println!(
        "eviction of orderer2-0 accepted; orderer3-0 refused: {}",
        second.1
    );
    wait::until("orderer2 back", STEP_TIMEOUT, || async {
        let pods = cluster
            .api::<Pod>()
            .list(&ListParams::default().labels("raftnet.dev/component=orderer"))
            .await?;
        let ready = pods.items.iter().filter(|p| {
            p.status
                .as_ref()
                .and_then(|s| s.container_statuses.as_ref())
                .is_some_and(|c| c.iter().all(|c| c.ready))
        });
        Ok((ready.count() == 5).then_some(()))
    })
    .await?;
    Ok(())
}

/// policy/v1 Eviction where served (1.22+), else v1beta1.
async fn eviction_version(cluster: &Cluster) -> anyhow::Result<String> {
    let groups = cluster.client.list_api_group_resources("policy/v1").await;
    Ok(
        if groups.is_ok_and(|r| r.resources.iter().any(|r| r.name == "poddisruptionbudgets")) {
            "policy/v1".into()
        } else {
            "policy/v1beta1".into()
        },
    )
}

/// POSTs an Eviction for `pod` (with kubectl: kube's client retries a 429, which is the answer
/// this test wants to see); the HTTP status and the server's message.
async fn evict(cluster: &Cluster, pod: &str, version: &str) -> anyhow::Result<(u16, String)> {
    let body = serde_json::json!({
        "apiVersion": version,
        "kind": "Eviction",
        "metadata": {"name": pod, "namespace": cluster.namespace},
    });
    let url = format!(
        "/api/v1/namespaces/{}/pods/{pod}/eviction",
        cluster.namespace
    );
    let answer = cluster
        .kubectl
        .run_with_input(
            &["create", "--raw", &url, "-f", "-"],
            Some(&body.to_string()),
        )
        .await;
    match answer {
        Ok(text) => {
            let status: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
            Ok((status["code"].as_u64().unwrap_or(201) as u16, text))
        }
        Err(e) => {
            let e = format!("{e:#}");
            let refused = e.contains("TooManyRequests");
            let message = e.rsplit("): ").next().unwrap_or(&e).trim().to_owned();
            if refused {
                Ok((429, message))
            } else {
                Err(anyhow::anyhow!(e))
            }
        }
    }
}
