//! A killed orderer recovers from its own storage; one that missed many snapshots catches up
//! from a snapshot plus blocks pulled from the others.

use std::time::Duration;

use raftnet_node::ledger::header_hash;
use raftnet_node::network::ordering::OrderingSpec;

use crate::support::{self, TIMEOUT};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_far_behind_orderer_catches_up_through_a_snapshot() {
    let mut spec = OrderingSpec {
        orderers: 3,
        ..Default::default()
    };
    // Small snapshots and blocks, so that the log is compacted many times.
    spec.raft.snapshot_interval_size = 8 * 1024;
    spec.batch.max_message_count = 10;
    let mut net = support::start(spec).await;
    let leader = net
        .cluster
        .wait_leader(&net.admin, &[], TIMEOUT)
        .await
        .unwrap();
    let lagger = (0..3).find(|&i| i as u64 + 1 != leader).unwrap();
    let other = (0..3)
        .find(|&i| i != lagger && i as u64 + 1 != leader)
        .unwrap();

    net.submit(other, 20, 256).await;
    net.cluster.kill(lagger).unwrap();
    let acked = net.submit(other, 300, 256).await;
    assert_eq!(acked.len(), 300);
    let height = net
        .admin
        .status(&net.addr(other), &net.channel())
        .await
        .unwrap()
        .height;

    net.cluster.start(lagger).unwrap();
    net.wait_height(lagger, height).await;
    let a = net.blocks(lagger).await;
    let b = net.blocks(other).await;
    let n = height as usize;
    assert!(a.len() >= n && b.len() >= n);
    assert_eq!(
        header_hash(a[n - 1].header.as_ref().unwrap()),
        header_hash(b[n - 1].header.as_ref().unwrap())
    );
    // The restarted node takes part again: new transactions reach it.
    net.submit(lagger, 10, 256).await;
    let logs = std::fs::read_to_string(&net.cluster.nodes[lagger].log).unwrap();
    assert!(
        logs.contains("catching up from a snapshot"),
        "expected a snapshot catch-up in the log"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_cluster_killed_at_once_restarts_from_its_own_storage() {
    let mut net = support::start(OrderingSpec {
        orderers: 3,
        ..Default::default()
    })
    .await;
    let acked = net.submit(0, 50, 256).await;
    let (retry, retry_id) = net
        .client
        .envelope(&net.channel(), b"before".to_vec())
        .unwrap();
    let first = net
        .client
        .broadcast(&net.addr(1), vec![retry.clone()])
        .await
        .unwrap();
    assert_eq!(first[0].tx_id, retry_id);
    let height = net
        .admin
        .status(&net.addr(0), &net.channel())
        .await
        .unwrap()
        .height;
    let before = net.blocks(0).await;

    // One stops cleanly on SIGTERM, the others crash.
    let status = net.cluster.terminate(0, Duration::from_secs(5)).unwrap();
    assert!(status.success(), "SIGTERM exit: {status}");
    for i in 1..3 {
        net.cluster.kill(i).unwrap();
    }
    net.cluster.start_all().unwrap();
    for i in 0..3 {
        net.cluster
            .wait_ready(i, &net.admin, TIMEOUT)
            .await
            .unwrap();
    }
    net.cluster
        .wait_leader(&net.admin, &[], TIMEOUT)
        .await
        .unwrap();
    for i in 0..3 {
        net.wait_height(i, height).await;
    }
    // Nothing acknowledged was lost, and the blocks are the same ones.
    let after = net.blocks(2).await;
    for (a, b) in before.iter().zip(&after) {
        assert_eq!(a, b);
    }
    let ids = support::tx_ids(&after);
    assert!(acked.iter().all(|id| ids.contains(id)));
    // A retry from before the restart is recognised, not ordered again.
    let again = net
        .client
        .broadcast(&net.addr(2), vec![retry])
        .await
        .unwrap();
    assert_eq!(
        again[0].block_number, first[0].block_number,
        "{}",
        again[0].info
    );
    assert_eq!(
        support::tx_ids(&net.blocks(0).await)
            .iter()
            .filter(|id| **id == retry_id)
            .count(),
        1
    );
    // And ordering goes on.
    net.submit(1, 10, 256).await;
}
