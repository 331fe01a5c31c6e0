//! The seed lab's network through the operator: `kubectl apply -f deploy/first-network.yaml`
//! → every object; its nodes (started here from those objects) → a leader in status; the
//! leader killed → the new one shown; three of five down → quorum lost, with a message; back
//! → healthy. Objects deleted are made again, certificates never change, and a restarted
//! operator changes nothing.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
use kube::api::{Api, DeleteParams, DynamicObject, ListParams};
use kube::{Client, Resource, ResourceExt};
use raftnet_crds::status::{find_condition, is_true, quorum, role, QUORUM_AVAILABLE, READY};
use raftnet_crds::{Channel, Network, Orderer, Peer};
use raftnet_node::proto::admin::admin_client::AdminClient;
use raftnet_node::proto::admin::ChannelStatusRequest;
use raftnet_node::tls::TlsMaterial;

use crate::apiserver::ApiServer;
use crate::harness::{apply_manifests, namespace, repo_file, wait_for, Operator, OperatorProcess};
use crate::nodes::Node;

const NS: &str = "lab";
const NETWORK: &str = "first-network";
const CHANNEL: &str = "mychannel";
const ORDERERS: [&str; 5] = ["orderer1", "orderer2", "orderer3", "orderer4", "orderer5"];
const PEERS: [&str; 4] = ["peer0-org1", "peer1-org1", "peer0-org2", "peer1-org2"];

fn api<K>(client: &Client) -> Api<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
{
    Api::namespaced(client.clone(), NS)
}

/// What must exist once the manifests are applied, by kind and name.
fn expected_objects() -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    for msp in ["orderermsp", "org1msp", "org2msp"] {
        out.push(("Secret", format!("{NETWORK}-{msp}-ca")));
        out.push(("Secret", format!("{NETWORK}-{msp}-admin")));
    }
    for msp in ["org1msp", "org2msp"] {
        out.push(("Secret", format!("{NETWORK}-{msp}-client")));
    }
    for node in ORDERERS.iter().chain(&PEERS) {
        out.push(("Secret", format!("{node}-crypto")));
        out.push(("ConfigMap", format!("{node}-config")));
        out.push(("Service", node.to_string()));
        out.push(("StatefulSet", node.to_string()));
    }
    out.push(("ConfigMap", format!("{CHANNEL}-genesis")));
    out
}

async fn missing_objects(client: &Client) -> Vec<String> {
    let mut missing = Vec::new();
    for (kind, name) in expected_objects() {
        let there = match kind {
            "Secret" => api::<Secret>(client)
                .get_opt(&name)
                .await
                .ok()
                .flatten()
                .is_some(),
            "ConfigMap" => api::<ConfigMap>(client)
                .get_opt(&name)
                .await
                .ok()
                .flatten()
                .is_some(),
            "Service" => api::<Service>(client)
                .get_opt(&name)
                .await
                .ok()
                .flatten()
                .is_some(),
            _ => api::<StatefulSet>(client)
                .get_opt(&name)
                .await
                .ok()
                .flatten()
                .is_some(),
        };
        if !there {
            missing.push(format!("{kind} {name}"));
        }
    }
    missing
}

/// Waits (at most 60 s) until every object the manifests call for exists.
async fn every_object(client: &Client, what: &str) {
    wait_for(what, Duration::from_secs(60), || async {
        let missing = missing_objects(client).await;
        if missing.is_empty() {
            Ok(())
        } else {
            Err(missing.join(", "))
        }
    })
    .await;
}

/// Every object's resourceVersion in the namespace, by kind and name.
async fn versions(client: &Client) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    macro_rules! collect {
        ($kind:ty, $label:expr) => {
            for o in api::<$kind>(client)
                .list(&ListParams::default())
                .await
                .unwrap()
                .items
            {
                out.insert(
                    format!("{} {}", $label, o.name_any()),
                    o.resource_version().unwrap_or_default(),
                );
            }
        };
    }
    collect!(Network, "Network");
    collect!(Channel, "Channel");
    collect!(Orderer, "Orderer");
    collect!(Peer, "Peer");
    collect!(Secret, "Secret");
    collect!(ConfigMap, "ConfigMap");
    collect!(Service, "Service");
    collect!(StatefulSet, "StatefulSet");
    out
}

/// `kubectl get orderers`: the table the API server prints from the CRD's printer columns.
async fn orderer_table(client: &Client) -> Vec<BTreeMap<String, String>> {
    let request = http::Request::get(format!(
        "/apis/raftnet.dev/v1alpha1/namespaces/{NS}/orderers"
    ))
    .header("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io")
    .body(Vec::new())
    .unwrap();
    let table: serde_json::Value = client.request(request).await.expect("table");
    let columns: Vec<String> = table["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_owned())
        .collect();
    table["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            columns
                .iter()
                .zip(row["cells"].as_array().unwrap())
                .map(|(c, v)| {
                    (
                        c.clone(),
                        v.as_str()
                            .map(str::to_owned)
                            .unwrap_or_else(|| v.to_string()),
                    )
                })
                .collect()
        })
        .collect()
}

async fn network(client: &Client) -> Result<Network, String> {
    api::<Network>(client)
        .get(NETWORK)
        .await
        .map_err(|e| e.to_string())
}

async fn channel(client: &Client) -> Result<Channel, String> {
    api::<Channel>(client)
        .get(CHANNEL)
        .await
        .map_err(|e| e.to_string())
}

/// The leader every surviving orderer's resource shows, once they agree.
async fn shown_leader(client: &Client, survivors: &[&str]) -> Result<String, String> {
    let orderers = api::<Orderer>(client)
        .list(&ListParams::default())
        .await
        .map_err(|e| e.to_string())?;
    let leaders: Vec<Option<String>> = orderers
        .items
        .iter()
        .filter(|o| survivors.contains(&o.name_any().as_str()))
        .map(|o| o.status.as_ref().and_then(|s| s.leader.clone()))
        .collect();
    match leaders.first() {
        Some(Some(first)) if leaders.iter().all(|l| l.as_ref() == Some(first)) => Ok(first.clone()),
        _ => Err(format!("{leaders:?}")),
    }
}

/// Follows one orderer's own status stream and records when it first names a leader other
/// than `old`: the moment the survivors know the new leader.
fn watch_new_leader(
    tls: TlsMaterial,
    endpoint: String,
    old: String,
) -> Arc<Mutex<Option<(String, Instant)>>> {
    let seen = Arc::new(Mutex::new(None));
    let out = seen.clone();
    tokio::spawn(async move {
        let mut admin = AdminClient::new(tls.channel(&endpoint).unwrap());
        let request = ChannelStatusRequest {
            channel_id: CHANNEL.into(),
        };
        let Ok(stream) = admin.watch_status(request).await else {
            return;
        };
        let mut stream = stream.into_inner();
        while let Ok(Some(status)) = stream.message().await {
            if !status.leader_name.is_empty() && status.leader_name != old {
                *out.lock().unwrap() = Some((status.leader_name, Instant::now()));
                return;
            }
        }
    });
    seen
}

async fn orderer_admin_tls(client: &Client) -> TlsMaterial {
    let secret = api::<Secret>(client)
        .get(&format!("{NETWORK}-orderermsp-admin"))
        .await
        .unwrap();
    let data = secret.data.unwrap();
    let text = |k: &str| data[k].0.clone();
    let mut roots = Vec::new();
    for msp in ["OrdererMSP", "Org1MSP", "Org2MSP"] {
        roots.extend(text(&format!("tlsca-{msp}.pem")));
        roots.push(b'\n');
    }
    TlsMaterial {
        cert_pem: text("tls-cert.pem"),
        key_pem: text("tls-key.pem"),
        roots_pem: roots,
    }
}

async fn endpoint(client: &Client, node: &str) -> String {
    let orderer = api::<Orderer>(client).get(node).await.unwrap();
    let ports = &orderer.annotations()["raftnet.dev/loopback-ports"];
    format!("127.0.0.1:{}", ports.split(',').next().unwrap())
}

async fn peer_endpoint(client: &Client, node: &str) -> String {
    let peer = api::<Peer>(client).get(node).await.unwrap();
    let ports = &peer.annotations()["raftnet.dev/loopback-ports"];
    format!("127.0.0.1:{}", ports.split(',').next().unwrap())
}

/// Org1's client, from the Secret the operator issued (laid out as a mounted Secret).
async fn org1_client(client: &Client) -> raftnet_node::client::Client {
    let secret = api::<Secret>(client)
        .get(&format!("{NETWORK}-org1msp-client"))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap().keep();
    for (name, value) in secret.data.unwrap() {
        std::fs::write(dir.join(name), value.0).unwrap();
    }
    raftnet_node::client::Client::load(&dir.join("profile.yaml"))
        .expect("the client's profile loads")
}

/// Kills the leader and measures how long after the last survivor knew the new one (from
/// its own stream) the resources showed it. Returns the new leader and that delay.
async fn kill_leader(
    client: &Client,
    nodes: &mut BTreeMap<String, Node>,
    down: &mut Vec<String>,
) -> (String, Duration) {
    let old = channel(client)
        .await
        .unwrap()
        .status
        .unwrap()
        .leader
        .expect("a leader");
    down.push(old.clone());
    let survivors: Vec<&str> = ORDERERS
        .iter()
        .copied()
        .filter(|o| !down.iter().any(|d| d == o))
        .collect();
    // Every survivor's own stream: when did the last of them learn the new leader? (With
    // heartbeats every 500 ms tick they learn it up to a tick apart; the operator can show
    // it in a survivor's status only after that survivor knows.)
    let tls = orderer_admin_tls(client).await;
    let mut witnesses = Vec::new();
    for survivor in &survivors {
        witnesses.push(watch_new_leader(
            tls.clone(),
            endpoint(client, survivor).await,
            old.clone(),
        ));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    nodes.get_mut(&old).unwrap().kill();
    let new = wait_for(
        "the resources to show a new leader",
        Duration::from_secs(60),
        || async {
            let shown = shown_leader(client, &survivors).await?;
            let channel_leader = channel(client).await?.status.and_then(|s| s.leader);
            if shown != old && channel_leader.as_deref() == Some(shown.as_str()) {
                Ok(shown)
            } else {
                Err(format!(
                    "orderers show {shown}, channel shows {channel_leader:?}"
                ))
            }
        },
    )
    .await;
    let shown_at = Instant::now();
    let known = wait_for(
        "every survivor to have seen it",
        Duration::from_secs(5),
        || async {
            let seen: Vec<Option<(String, Instant)>> = witnesses
                .iter()
                .map(|w| w.lock().unwrap().clone())
                .collect();
            match seen
                .iter()
                .map(|s| s.clone().ok_or("not yet"))
                .collect::<Result<Vec<_>, _>>()
            {
                Ok(all) => Ok(all),
                Err(e) => Err(e.to_owned()),
            }
        },
    )
    .await;
    assert!(
        known.iter().all(|(leader, _)| *leader == new),
        "the resources show the leader the nodes elected: {known:?}"
    );
    let last_known = known.iter().map(|(_, at)| *at).max().unwrap();
    (new, shown_at.saturating_duration_since(last_known))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn first_network_runs_and_shows_its_leader() {
    let (server, client) = ApiServer::start().await;
    raftnet_operator::crd_install::install(&client)
        .await
        .expect("CRDs install");
    namespace(&client, NS).await;
    let operator = Operator::start(&client, Some(NS));

    // kubectl apply -f deploy/first-network.yaml → every object, owned by its parent.
    let applied = Instant::now();
    apply_manifests(&client, NS, &repo_file("deploy/first-network.yaml")).await;
    every_object(&client, "every object of first-network").await;
    println!(
        "apply → every object: {:.2} s",
        applied.elapsed().as_secs_f64()
    );

    let net = network(&client).await.unwrap();
    let orderer1 = api::<Orderer>(&client).get("orderer1").await.unwrap();
    let owner = &orderer1.owner_references()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str()),
        ("Network", NETWORK)
    );
    assert_eq!(owner.uid, net.uid().unwrap());
    assert_eq!(orderer1.spec.consenter_id, 1);
    let set = api::<StatefulSet>(&client).get("orderer1").await.unwrap();
    assert_eq!(set.owner_references()[0].uid, orderer1.uid().unwrap());
    let pod = set.spec.template.spec.unwrap();
    assert_eq!(pod.containers[0].args.as_ref().unwrap()[0], "orderer");
    let service = api::<Service>(&client)
        .get("orderer1")
        .await
        .unwrap()
        .spec
        .unwrap();
    assert_eq!(service.publish_not_ready_addresses, Some(true));
    let budget_version = raftnet_operator::operator::budget_version(&client).await;
    let budgets: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        NS,
        &raftnet_operator::objects::budget::api_resource(budget_version),
    );
    let budget = budgets
        .get(&format!("{NETWORK}-orderers"))
        .await
        .expect("a disruption budget");
    assert_eq!(
        budget.data["spec"]["maxUnavailable"], 1,
        "a drain takes one orderer at a time"
    );
    let ca_before = api::<Secret>(&client)
        .get(&format!("{NETWORK}-orderermsp-ca"))
        .await
        .unwrap();

    // The nodes, started from the objects the operator wrote.
    let root = tempfile::tempdir().unwrap();
    let mut nodes = BTreeMap::new();
    for name in ORDERERS {
        nodes.insert(
            name.to_owned(),
            Node::prepare(&client, NS, name, "orderer", root.path()).await,
        );
    }
    for name in PEERS {
        nodes.insert(
            name.to_owned(),
            Node::prepare(&client, NS, name, "peer", root.path()).await,
        );
    }
    nodes.values_mut().for_each(Node::start);
    let started = Instant::now();
    let logs = |nodes: &BTreeMap<String, Node>| {
        nodes
            .values()
            .map(|n| format!("--- {} ---\n{}", n.name, n.log_tail()))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let leader = wait_for(
        "a Ready network with a leader",
        Duration::from_secs(90),
        || async {
            let net = network(&client).await?;
            let status = net.status.unwrap_or_default();
            if status.quorum.as_deref() == Some(quorum::HEALTHY)
                && status.orderers.as_deref() == Some("5/5")
                && status.peers.as_deref() == Some("4/4")
                && is_true(&status.conditions, READY)
            {
                status.leader.clone().ok_or_else(|| "no leader".into())
            } else {
                Err(format!("{status:?}"))
            }
        },
    )
    .await;
    println!(
        "nodes started → network Ready with leader {leader}: {:.2} s",
        started.elapsed().as_secs_f64()
    );
    // The channel's contract, deployed by the operator; used with the client identity from
    // its Secret, as a user would.
    let ch = wait_for("mycc deployed", Duration::from_secs(60), || async {
        let status = channel(&client).await?.status.unwrap_or_default();
        if status.deployed == ["mycc@1.0"] && is_true(&status.conditions, READY) {
            Ok(status)
        } else {
            Err(format!("{status:?}"))
        }
    })
    .await;
    let user = org1_client(&client).await;
    let peer0 = peer_endpoint(&client, "peer0-org1").await;
    let peer1 = peer_endpoint(&client, "peer0-org2").await;
    let answer = user
        .query(&peer0, CHANNEL, "mycc", &["query".into(), "a".into()])
        .await
        .expect("query a");
    assert_eq!(String::from_utf8(answer).unwrap(), "100");
    let outcome = user
        .submit_transaction(
            &[peer0.clone(), peer1.clone()],
            &[endpoint(&client, &leader).await],
            CHANNEL,
            "mycc",
            &["invoke".into(), "a".into(), "b".into(), "10".into()],
            Duration::from_secs(30),
        )
        .await
        .expect("invoke a b 10");
    assert!(outcome.is_valid(), "{outcome:?}");
    let answer = user
        .query(&peer1, CHANNEL, "mycc", &["query".into(), "a".into()])
        .await
        .expect("query a");
    assert_eq!(String::from_utf8(answer).unwrap(), "90");
    assert_eq!(
        ch.joined.len(),
        9,
        "every orderer and peer joined: {:?}",
        ch.joined
    );
    assert_eq!(ch.consenters.len(), 5);
    let table = orderer_table(&client).await;
    let leading: Vec<&String> = table
        .iter()
        .filter(|r| r["ROLE"] == role::LEADER)
        .map(|r| &r["Name"])
        .collect();
    assert_eq!(
        leading,
        vec![&leader],
        "kubectl get orderers shows one leader: {table:?}"
    );
    assert!(table.iter().all(|r| r["LEADER"] == leader), "{table:?}");

    // Kill leaders one by one, as the lab does.
    let mut down = Vec::new();
    let mut delays = Vec::new();
    for round in 1..=2 {
        let (new, delay) = kill_leader(&client, &mut nodes, &mut down).await;
        println!(
            "round {round}: {} killed, {new} leads; shown {:.0} ms after the survivors knew",
            down.last().unwrap(),
            delay.as_secs_f64() * 1000.0
        );
        delays.push(delay);
    }
    wait_for(
        "3 of 5 orderers up, quorum Degraded",
        Duration::from_secs(10),
        || async {
            let status = network(&client).await?.status.unwrap_or_default();
            if status.quorum.as_deref() == Some(quorum::DEGRADED)
                && status.orderers.as_deref() == Some("3/5")
            {
                Ok(())
            } else {
                Err(format!("{status:?}"))
            }
        },
    )
    .await;

    for row in orderer_table(&client).await {
        let cells: Vec<&str> = [
            "Name", "NETWORK", "ROLE", "LEADER", "TERM", "HEIGHT", "READY",
        ]
        .iter()
        .map(|c| row.get(*c).map(String::as_str).unwrap_or("-"))
        .collect();
        println!("kubectl get orderers: {}", cells.join("  "));
    }

    // A third orderer down: no quorum, said with who is down.
    let third = channel(&client)
        .await
        .unwrap()
        .status
        .unwrap()
        .leader
        .unwrap();
    nodes.get_mut(&third).unwrap().kill();
    down.push(third);
    let message = wait_for("quorum Lost", Duration::from_secs(30), || async {
        let status = network(&client).await?.status.unwrap_or_default();
        let q = find_condition(&status.conditions, QUORUM_AVAILABLE).cloned();
        match (status.quorum.as_deref(), q) {
            (Some(quorum::LOST), Some(c)) if c.status == "False" => Ok(c.message),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    for name in &down {
        assert!(
            message.contains(name.as_str()),
            "the message names {name}: {message}"
        );
    }
    assert!(message.contains("3 of 5 orderers down"), "{message}");
    let gone = api::<Orderer>(&client)
        .get(&down[0])
        .await
        .unwrap()
        .status
        .unwrap();
    assert_eq!(gone.role.as_deref(), Some(role::UNAVAILABLE));

    // One back: a quorum again; all back: healthy.
    nodes.get_mut(&down[0]).unwrap().start();
    wait_for("a quorum again", Duration::from_secs(60), || async {
        let status = network(&client).await?.status.unwrap_or_default();
        if is_true(&status.conditions, QUORUM_AVAILABLE) && status.leader.is_some() {
            Ok(())
        } else {
            Err(format!("{status:?}"))
        }
    })
    .await;
    for name in &down[1..] {
        nodes.get_mut(name).unwrap().start();
    }
    wait_for(
        "a healthy network again",
        Duration::from_secs(60),
        || async {
            let status = network(&client).await?.status.unwrap_or_default();
            if status.quorum.as_deref() == Some(quorum::HEALTHY)
                && is_true(&status.conditions, READY)
            {
                Ok(())
            } else {
                Err(format!("{status:?}"))
            }
        },
    )
    .await;

    // Deleted children are made again; certificates stay as they were.
    api::<Service>(&client)
        .delete("orderer2", &DeleteParams::default())
        .await
        .unwrap();
    api::<ConfigMap>(&client)
        .delete("peer0-org1-config", &DeleteParams::default())
        .await
        .unwrap();
    every_object(&client, "the deleted objects made again").await;
    let ca_after = api::<Secret>(&client)
        .get(&format!("{NETWORK}-orderermsp-ca"))
        .await
        .unwrap();
    assert_eq!(ca_before.data, ca_after.data, "the CA is never regenerated");
    assert_eq!(ca_before.resource_version(), ca_after.resource_version());

    // A restarted operator converges to the same objects: nothing changes.
    tokio::time::sleep(Duration::from_secs(2)).await;
    operator.stop().await;
    let before = versions(&client).await;
    // This time the real binary, as a pod would run it.
    let mut binary = OperatorProcess::start(&server, NS);
    let reconciles = r#"raftnet_operator_reconciles_total"#;
    wait_for(
        "the restarted operator to reconcile everything",
        Duration::from_secs(60),
        || async {
            let count = binary.metric_sum(reconciles).await;
            if count >= 11.0 {
                Ok(())
            } else {
                Err(format!("{count} reconciles"))
            }
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = versions(&client).await;
    let changed: Vec<&String> = before
        .keys()
        .filter(|k| before.get(*k) != after.get(*k))
        .collect();
    assert!(
        changed.is_empty(),
        "a restarted operator changed {changed:?}"
    );

    println!("operator process RSS: {} KiB", binary.rss_kib());
    for controller in ["network", "channel", "orderer", "peer"] {
        let sum = binary
            .metric_sum(&format!(
                "raftnet_operator_reconcile_duration_seconds_sum{{controller=\"{controller}\"}}"
            ))
            .await;
        let count = binary
            .metric_sum(&format!(
                "raftnet_operator_reconcile_duration_seconds_count{{controller=\"{controller}\"}}"
            ))
            .await;
        println!(
            "{controller}: {count} reconciles after the restart, mean {:.1} ms",
            if count > 0.0 {
                sum / count * 1000.0
            } else {
                0.0
            }
        );
    }
    binary.stop();
    let mut ms: Vec<f64> = delays.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
    ms.sort_by(f64::total_cmp);
    println!("leader change → shown in status: {ms:?} ms");
    for delay in &delays {
        assert!(
            *delay < Duration::from_secs(1),
            "status showed the new leader {delay:?} after the nodes knew it:\n{}",
            logs(&nodes)
        );
    }
    drop(nodes);
    drop(server);
}
