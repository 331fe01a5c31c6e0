//! The `raftnet` binary against a network with peers, as a Fabric user would drive it:
//! `chaincode query|invoke|deploy` and `channel status --peer`.

use std::path::Path;

use tokio::io::{AsyncBufReadExt, BufReader};

use crate::peers::Lab;
use crate::support::TIMEOUT;

/// What a run of `raftnet` printed and whether it succeeded.
struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ok={} stdout={:?} stderr={:?}",
            self.ok, self.stdout, self.stderr
        )
    }
}

/// Runs `raftnet` with `args` and `env` only: the test's own environment must not choose an
/// identity or an address.
async fn raftnet(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_raftnet"));
    cmd.args(args);
    for var in [
        "RAFTNET_IDENTITY",
        "CORE_PEER_MSPCONFIGPATH",
        "CORE_PEER_ADDRESS",
        "ORDERER_ADDRESS",
    ] {
        cmd.env_remove(var);
    }
    cmd.envs(env.iter().copied());
    let out = cmd.output().await.expect("raftnet runs");
    Run {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn path(p: &Path) -> &str {
    p.to_str().expect("UTF-8 temp path")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn chaincode_and_channel_commands_on_peers() {
    let lab = Lab::start(3).await;
    let layout = &lab.net.cluster.layout;
    let channel = lab.net.channel();
    let (org1_client, org1_admin) = (&layout.org_clients[0].1, &layout.org_admins[0].1);
    // The Fabric way: the user's directory, not the profile file.
    let org1_client_dir = path(org1_client.parent().unwrap());
    let org1_admin_dir = path(org1_admin.parent().unwrap());
    let orderers = lab.orderers().join(",");
    let (p0, p1, p2) = (lab.peer_addr(0), lab.peer_addr(1), lab.peer_addr(2));
    let query_a = [
        "chaincode",
        "query",
        "-C",
        &channel,
        "-n",
        "mycc",
        "-c",
        r#"{"Args":["query","a"]}"#,
    ];

    // Query on peer0.org1, the peer given by Fabric's variable.
    let r = raftnet(
        &[&query_a[..], &["--msp-dir", org1_client_dir]].concat(),
        &[("CORE_PEER_ADDRESS", &p0)],
    )
    .await;
    assert!(r.ok, "{r:?}");
    assert_eq!(r.stdout.trim(), "100", "{r:?}");

    // Endorsed by both organisations: committed as valid.
    let invoke = [
        "chaincode",
        "invoke",
        "-C",
        &channel,
        "-n",
        "mycc",
        "-c",
        r#"{"Args":["invoke","a","b","10"]}"#,
        "-o",
        &orderers,
    ];
    let r = raftnet(
        &[
            &invoke[..],
            &["--peerAddresses", &p0, "--peerAddresses", &p2],
            &["--identity", path(org1_client)],
        ]
        .concat(),
        &[],
    )
    .await;
    assert!(r.ok, "{r:?}");
    assert!(
        r.stdout.contains("committed in block") && r.stdout.contains("VALID"),
        "{r:?}"
    );

    let r = raftnet(
        &[
            &query_a[..],
            &["--peer", &p0, "--identity", path(org1_client)],
        ]
        .concat(),
        &[],
    )
    .await;
    assert!(r.ok, "{r:?}");
    assert_eq!(r.stdout.trim(), "90", "{r:?}");

    // Endorsed by Org1 only: ordered, but invalid, and the exit status says so.
    let r = raftnet(
        &[
            &invoke[..],
            &[
                "--peer",
                &format!("{p0},{p1}"),
                "--msp-dir",
                org1_client_dir,
            ],
        ]
        .concat(),
        &[],
    )
    .await;
    assert!(!r.ok, "{r:?}");
    assert!(
        format!("{}{}", r.stdout, r.stderr).contains("ENDORSEMENT_POLICY_FAILURE"),
        "{r:?}"
    );
    assert!(r.stderr.contains("endorsement policy"), "{r:?}");

    // A call that is not JSON: the error shows the expected form.
    let mut bad = query_a.to_vec();
    bad[7] = "not json";
    let r = raftnet(
        &[&bad[..], &["--peer", &p0, "--msp-dir", org1_client_dir]].concat(),
        &[],
    )
    .await;
    assert!(!r.ok, "{r:?}");
    assert!(r.stderr.contains(r#"{"Args""#), "{r:?}");

    // No identity at all.
    let r = raftnet(&[&query_a[..], &["--peer", &p0]].concat(), &[]).await;
    assert!(!r.ok, "{r:?}");
    assert!(r.stderr.contains("no identity"), "{r:?}");
    assert!(r.stderr.contains("--msp-dir"), "{r:?}");

    // Deploy a second contract as Org1's admin, then use it: JSON output throughout.
    let r = raftnet(
        &[
            "chaincode",
            "deploy",
            "-C",
            &channel,
            "-n",
            "cc2",
            "--contract",
            "example02",
            "-P",
            "AND('Org1MSP.peer','Org2MSP.peer')",
            "--init",
            r#"["x","5","y","6"]"#,
            "--peer",
            &p0,
            "--peer",
            &p2,
            "-o",
            &orderers,
            "--msp-dir",
            org1_admin_dir,
            "--output",
            "json",
        ],
        &[],
    )
    .await;
    assert!(r.ok, "{r:?}");
    let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("JSON");
    assert_eq!(v["valid"], true, "{r:?}");
    assert_eq!(v["code"], "VALID", "{r:?}");
    let deploy_block = v["block"].as_u64().unwrap();
    let r = raftnet(
        &[
            "chaincode",
            "query",
            "-C",
            &channel,
            "-n",
            "cc2",
            "-c",
            r#"["query","y"]"#,
            "--peer",
            &p2,
            "--identity",
            path(&layout.org_clients[1].1),
            "--output",
            "json",
        ],
        &[],
    )
    .await;
    assert!(r.ok, "{r:?}");
    let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("JSON");
    assert_eq!(v["payload"], "6", "{r:?}");

    // Peer status: the height covers the deploy (on peer0.org1, which reported its commit),
    // and each peer names the orderer it pulls from.
    let r = raftnet(
        &[
            "channel",
            "status",
            "--channel",
            &channel,
            "--peer",
            &format!("{p0},{p1}"),
            "-o",
            "json",
            "--identity",
            path(org1_admin),
        ],
        &[],
    )
    .await;
    assert!(r.ok, "{r:?}");
    let rows: Vec<serde_json::Value> = serde_json::from_str(&r.stdout).expect("JSON");
    assert_eq!(rows.len(), 2, "{r:?}");
    assert_eq!(rows[0]["address"], p0.as_str(), "{r:?}");
    assert!(
        rows[0]["height"].as_u64().unwrap() > deploy_block,
        "{r:?} vs block {deploy_block}"
    );
    for row in &rows {
        assert!(row["height"].as_u64().unwrap() > 0, "{row}");
        assert!(!row["commitHash"].as_str().unwrap().is_empty(), "{row}");
        assert!(!row["name"].as_str().unwrap().is_empty(), "{row}");
    }
    assert!(
        lab.orderers()
            .contains(&rows[0]["orderer"].as_str().unwrap().to_string()),
        "{r:?}"
    );

    // The table shows the same, with the commit hash shortened to 8 bytes.
    let r = raftnet(
        &[
            "channel",
            "status",
            "-c",
            &channel,
            "--peer",
            &p0,
            "--msp-dir",
            org1_admin_dir,
        ],
        &[],
    )
    .await;
    assert!(r.ok, "{r:?}");
    assert!(r.stdout.contains("COMMIT HASH"), "{r:?}");
    let hash = rows[0]["commitHash"].as_str().unwrap();
    assert!(
        r.stdout.contains(&hash[..16]) && !r.stdout.contains(hash),
        "{r:?}"
    );

    // Watching a peer prints its status at once.
    let mut watch = tokio::process::Command::new(env!("CARGO_BIN_EXE_raftnet"))
        .args(["channel", "status", "-w", "-o", "json", "-c", &channel])
        .args(["--peer", &p0, "--identity", path(org1_admin)])
        .env_remove("RAFTNET_IDENTITY")
        .env_remove("CORE_PEER_MSPCONFIGPATH")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(watch.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(TIMEOUT, lines.next_line())
        .await
        .expect("a status line")
        .unwrap()
        .expect("a status line");
    let v: serde_json::Value = serde_json::from_str(&first).expect("JSON line");
    assert_eq!(v["address"], p0.as_str(), "{first}");
    assert!(v["height"].as_u64().unwrap() > deploy_block, "{first}");
    watch.kill().await.unwrap();
}
