//! `raftnet up` and `raftnet lab`: networks from the manifests in `deploy/`, run as local
//! processes that outlive the command, through the same code the CLI runs.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use raftnet_node::client::Client;
use raftnet_node::local::{lab, LocalNetwork};
use raftnet_node::network::manifest;

fn deploy(file: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy")
        .join(file)
}

fn node_binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_raftnet-node"))
}

/// Stops the network whatever happens to the test.
struct Down<'a>(&'a Path);

impl Drop for Down<'_> {
    fn drop(&mut self) {
        if let Ok(Some(net)) = LocalNetwork::open(self.0, node_binary()) {
            let _ = net.down(false);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_seed_lab_passes_every_step() {
    let dir = tempfile::tempdir().unwrap();
    let _down = Down(dir.path());
    let mut out = Vec::new();
    let passed = lab::run(Some(dir.path().to_path_buf()), false, &mut out)
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out);
    assert!(passed, "{text}");
    for step in 1..=12 {
        assert!(
            text.contains(&format!("PASS  step {step:>2}")),
            "step {step}:\n{text}"
        );
    }
    assert!(text.contains("Raft leader changed: 0 -> orderer"), "{text}");
    assert!(text.contains("query a on peer0.org2: 90"), "{text}");
    assert!(
        text.contains("invoke a b 10 fails: the ordering service is unavailable"),
        "{text}"
    );
    // Without --keep the lab cleans up after itself.
    assert!(LocalNetwork::open(dir.path(), node_binary())
        .unwrap()
        .is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn up_down_up_keeps_the_ledger_and_state() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let _down = Down(data);
    let manifests = manifest::read_files(&[deploy("minimal.yaml")]).unwrap();
    let plan = manifest::plan(&manifests).unwrap();
    let (net, generated) = LocalNetwork::create_or_open(data, &plan, node_binary()).unwrap();
    assert!(generated);
    net.save_manifests(&manifests).unwrap();
    let report = net.up().await.unwrap();
    assert_eq!(report.started.len(), 4, "{report:?}");
    assert_eq!(report.deployed, ["mychannel/kv"]);

    let client = Client::load(&net.layout.org_clients[0].1).unwrap();
    let peer = net.address("peer0.org1").unwrap().to_string();
    let orderers: Vec<String> = net
        .layout
        .orderers
        .iter()
        .map(|o| o.address.clone())
        .collect();
    let put = client
        .submit_transaction(
            std::slice::from_ref(&peer),
            &orderers,
            "mychannel",
            "kv",
            &["put".into(), "colour".into(), "blue".into()],
            Duration::from_secs(30),
        )
        .await
        .unwrap();
    assert!(put.is_valid(), "{put:?}");

    // `raftnet get` shows who leads, live, as the objects `kubectl get -o json` prints; stop
    // and start act on one node.
    let orderers_now = get(data, "orderers");
    assert_eq!(orderers_now.len(), 3, "{orderers_now:?}");
    assert!(orderers_now
        .iter()
        .all(|o| o["apiVersion"] == "raftnet.dev/v1alpha1"
            && o["kind"] == "Orderer"
            && o["spec"]["network"] == "minimal"));
    let leaders: Vec<&serde_json::Value> = orderers_now
        .iter()
        .filter(|o| o["status"]["role"] == "Leader")
        .collect();
    assert_eq!(leaders.len(), 1, "{orderers_now:?}");
    assert!(
        orderers_now.iter().all(|o| condition(o, "Ready") == "True"),
        "{orderers_now:?}"
    );
    assert!(
        orderers_now
            .iter()
            .all(|o| o["status"]["leader"] == leaders[0]["metadata"]["name"]
                && o["status"]["term"].is_u64()),
        "{orderers_now:?}"
    );
    let follower = orderers_now
        .iter()
        .find(|o| o["status"]["role"] == "Follower")
        .and_then(|o| o["metadata"]["name"].as_str())
        .unwrap()
        .to_string();
    raftnet(data, &["stop", &follower]);
    let network = &get(data, "networks")[0];
    assert_eq!(network["status"]["orderers"], "2/3", "{network}");
    assert_eq!(network["status"]["quorum"], "Degraded", "{network}");
    assert_eq!(condition(network, "QuorumAvailable"), "True", "{network}");
    raftnet(data, &["start", &follower]);
    let started = std::time::Instant::now();
    while get(data, "networks")[0]["status"]["quorum"] != "Healthy" {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{follower} did not rejoin"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Again on a running network: nothing to do.
    let again = net.up().await.unwrap();
    assert!(
        again.started.is_empty() && again.joined.is_empty() && again.deployed.is_empty(),
        "{again:?}"
    );
    // Another network on the same data dir is refused.
    let other =
        manifest::plan(&manifest::read_files(&[deploy("first-network.yaml")]).unwrap()).unwrap();
    let err = LocalNetwork::create_or_open(data, &other, node_binary())
        .err()
        .unwrap();
    assert!(
        format!("{err:#}").contains("already holds network minimal"),
        "{err:#}"
    );

    // Down, then up from the same files: same ledger, same state.
    let stopped = net.down(false).unwrap();
    assert_eq!(stopped.len(), 4);
    // A port taken meanwhile is reported with the node's name.
    let taken = std::net::TcpListener::bind(net.address("orderer2").unwrap()).unwrap();
    let (net, generated) = LocalNetwork::create_or_open(data, &plan, node_binary()).unwrap();
    assert!(!generated);
    let err = net.up().await.unwrap_err();
    let msg = format!("{err:#}");
    assert!(
        msg.contains("orderer2") && msg.contains("port in use"),
        "{msg}"
    );
    drop(taken);
    let report = net.up().await.unwrap();
    assert!(
        report.joined.is_empty() && report.deployed.is_empty(),
        "{report:?}"
    );
    let got = client
        .query(&peer, "mychannel", "kv", &["get".into(), "colour".into()])
        .await
        .unwrap();
    assert_eq!(got, b"blue");
}

/// Runs `raftnet ARGS --data-dir DATA`, which must succeed; returns its stdout.
fn raftnet(data: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_raftnet"))
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "raftnet {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// `raftnet get WHAT -o json`: the items of the `List` it prints.
fn get(data: &Path, what: &str) -> Vec<serde_json::Value> {
    let list: serde_json::Value =
        serde_json::from_str(&raftnet(data, &["get", what, "-o", "json"])).unwrap();
    assert_eq!(list["kind"], "List", "{list}");
    list["items"].as_array().cloned().unwrap_or_default()
}

/// The status (`True`/`False`) of an object's condition of `type_`, or "" without one.
fn condition(object: &serde_json::Value, type_: &str) -> String {
    object["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == type_)
        .and_then(|c| c["status"].as_str())
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn bad_manifests_are_refused_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("orderers: 4", "spec.ordererOrganization.orderers"),
        (
            "organizations:\n    - Org1MSP\n    - Org3MSP",
            "Org3MSP is not an organisation",
        ),
        (
            "endorsementPolicy: OR('Org1MSP.peer')\n      polcy: x",
            "polcy",
        ),
    ];
    let base = std::fs::read_to_string(deploy("minimal.yaml")).unwrap();
    for (i, (change, expect)) in cases.iter().enumerate() {
        let text = match i {
            0 => base.replace("orderers: 3", change),
            1 => base.replace("organizations:\n    - Org1MSP", change),
            _ => base.replace("endorsementPolicy: OR('Org1MSP.peer')", change),
        };
        assert_ne!(text, base, "case {i} changed nothing");
        let file = dir.path().join(format!("bad{i}.yaml"));
        std::fs::write(&file, text).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_raftnet"))
            .args(["up", "-f"])
            .arg(&file)
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "case {i} was accepted");
        assert!(err.contains(expect), "case {i}: {err}");
    }
    // Nothing was generated for refused manifests.
    assert!(!dir.path().join("data").exists());
}
