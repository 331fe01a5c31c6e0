//! Deliver follows the ledger as blocks are written, and the command-line client shows status.

use std::process::Command;

use futures::StreamExt;
use raftnet_node::client::DeliverItem;
use raftnet_node::network::ordering::OrderingSpec;

use crate::support::{self, TIMEOUT};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliver_waits_for_new_blocks_and_the_cli_reports_the_leader() {
    let net = support::start(OrderingSpec {
        orderers: 3,
        ..Default::default()
    })
    .await;
    let ch = net.channel();
    let height = net.admin.status(&net.addr(0), &ch).await.unwrap().height;
    let mut follow = net
        .client
        .deliver_stream(&net.addr(2), &ch, height, None, false)
        .await
        .unwrap();
    let acked = net.submit(0, 5, 64).await;
    let next = tokio::time::timeout(TIMEOUT, follow.next())
        .await
        .expect("no block delivered");
    let Some(Ok(DeliverItem::Block(block))) = next else {
        panic!("expected a block");
    };
    assert_eq!(block.header.as_ref().unwrap().number, height);
    assert!(support::tx_ids(&[Default::default(), *block])
        .iter()
        .any(|id| acked.contains(id)));

    // A block that is not there yet, asked for with FAIL_IF_NOT_READY, ends at once.
    let far = net
        .client
        .deliver(&net.addr(0), &ch, height + 1000, None, true)
        .await
        .unwrap();
    assert!(far.is_empty());

    // `raftnet channel status -o json` shows one leader, as each orderer sees it.
    let addrs: Vec<String> = (0..3).map(|i| net.addr(i)).collect();
    let raftnet = std::path::Path::new(env!("CARGO_BIN_EXE_raftnet"));
    let out = tokio::task::spawn_blocking({
        let admin = net.cluster.layout.admin.clone();
        let ch = ch.clone();
        let raftnet = raftnet.to_path_buf();
        move || {
            Command::new(raftnet)
                .args([
                    "channel",
                    "status",
                    "-o",
                    "json",
                    "--channel",
                    &ch,
                    "--orderer",
                    &addrs.join(","),
                ])
                .arg("--identity")
                .arg(admin)
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows.len(), 3);
    let leaders: Vec<&str> = rows.iter().map(|r| r["leader"].as_str().unwrap()).collect();
    assert!(
        leaders.iter().all(|l| *l == leaders[0] && !l.is_empty()),
        "{leaders:?}"
    );
    assert_eq!(rows.iter().filter(|r| r["role"] == "Leader").count(), 1);

    // A missing identity is a clear error, not a panic.
    let out = Command::new(raftnet)
        .args([
            "channel",
            "status",
            "--channel",
            &ch,
            "--orderer",
            &net.addr(0),
        ])
        .env_remove("RAFTNET_IDENTITY")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--identity"), "{err}");
}
