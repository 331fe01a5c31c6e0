//! Truthful halts: storage failures injected with failpoints into real orderer processes.
//! A halted chain says so (status, readiness, metrics), the others elect a leader and lose
//! nothing acknowledged, and the halted orderer comes back cleanly after a restart.

use std::time::{Duration, Instant};

use raftnet_node::network::ordering::OrderingSpec;
use raftnet_node::proto::admin::Role;
use raftnet_node::proto::common::Status;

use crate::support::{self, http_get, metric, scrape, set_failpoint, tx_ids, TIMEOUT};

/// Waits until orderer `i` reports its chain halted; returns the reason.
async fn wait_halted(net: &support::Net, i: usize) -> String {
    let started = Instant::now();
    loop {
        let s = net
            .admin
            .status(&net.addr(i), &net.channel())
            .await
            .unwrap();
        if s.role == Role::Halted as i32 {
            assert_eq!(s.leader_id, 0, "a halted chain names no leader");
            assert!(!s.quorum);
            return s.halt_error;
        }
        assert!(
            started.elapsed() < TIMEOUT,
            "orderer {i} did not halt: {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_whose_raft_log_fails_halts_says_why_and_recovers_after_restart() {
    let mut net = support::start(OrderingSpec {
        orderers: 3,
        ..Default::default()
    })
    .await;
    let ch = net.channel();
    let l1 = net.leader().await;
    let mut acked = net.submit(l1, 20, 128).await;
    let ops = net.cluster.nodes[l1].operations_address().unwrap();
    let mut watch = net.admin.watch(&net.addr(l1), &ch).await.unwrap();

    // The leader's next Raft log write fails.
    set_failpoint(&ops, "raft_log_write", "return");
    let follower = (l1 + 1) % 3;
    let (env, _) = net.client.envelope(&ch, vec![1; 64]).unwrap();
    let _ = net.client.broadcast(&net.addr(l1), vec![env]).await;
    let reason = wait_halted(&net, l1).await;
    assert!(reason.contains("raft_log_write"), "{reason}");

    // WatchStatus pushed the halt.
    let pushed = tokio::time::timeout(TIMEOUT, async {
        while let Some(s) = watch.message().await.unwrap() {
            if s.role == Role::Halted as i32 {
                return s;
            }
        }
        panic!("status stream ended");
    })
    .await
    .expect("WatchStatus pushes the halt");
    assert_eq!(pushed.halt_error, reason);

    // Readiness fails and says why; liveness holds (the process serves); metrics agree.
    let (code, body) = http_get(&ops, "/readyz");
    assert_eq!(code, 503, "{body}");
    assert!(
        body.contains("halted") && body.contains("raft_log_write"),
        "{body}"
    );
    assert_eq!(http_get(&ops, "/healthz").0, 200);
    let m = scrape(&ops);
    assert_eq!(metric(&m, "raftnet_chain_halted", &ch), Some(1.0));
    assert_eq!(metric(&m, "consensus_etcdraft_is_leader", &ch), Some(0.0));

    // The others elect a leader and order on.
    let l2 = net
        .cluster
        .wait_leader(&net.admin, &[l1], TIMEOUT)
        .await
        .unwrap() as usize
        - 1;
    assert_ne!(l2, l1);
    acked.extend(net.submit(follower, 20, 128).await);

    // Broadcast and Deliver on the halted orderer answer with the reason.
    let (env, _) = net.client.envelope(&ch, vec![2; 64]).unwrap();
    let r = net
        .client
        .broadcast(&net.addr(l1), vec![env])
        .await
        .unwrap();
    assert_eq!(r[0].status, Status::ServiceUnavailable as i32);
    assert!(r[0].info.contains("halted"), "{}", r[0].info);
    let blocks = net
        .client
        .deliver(&net.addr(l1), &ch, 0, None, false)
        .await
        .unwrap_err();
    assert!(format!("{blocks:#}").contains("halted"), "{blocks:#}");

    // Restarted without the failpoint, it catches up; nothing acknowledged is lost or doubled.
    net.cluster.kill(l1).unwrap();
    net.cluster.start(l1).unwrap();
    net.cluster
        .wait_ready(l1, &net.admin, TIMEOUT)
        .await
        .unwrap();
    let tip = net.admin.status(&net.addr(l2), &ch).await.unwrap().height;
    net.wait_height(l1, tip).await;
    assert_eq!(http_get(&ops, "/readyz").0, 200);
    for i in 0..3 {
        let ids = tx_ids(&net.blocks(i).await);
        for id in &acked {
            assert_eq!(
                ids.iter().filter(|t| *t == id).count(),
                1,
                "orderer {i}: {id}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn followers_whose_block_write_fails_or_panics_halt_and_replay_their_log_on_restart() {
    let mut net = support::start(OrderingSpec {
        orderers: 3,
        ..Default::default()
    })
    .await;
    let ch = net.channel();
    let leader = net.leader().await;
    let (f1, f2) = ((leader + 1) % 3, (leader + 2) % 3);
    let mut acked = net.submit(leader, 10, 128).await;
    // f1 persists the Raft log but cannot write blocks; f2 panics in its chain's thread.
    set_failpoint(
        &net.cluster.nodes[f1].operations_address().unwrap(),
        "block_write",
        "return",
    );
    set_failpoint(
        &net.cluster.nodes[f2].operations_address().unwrap(),
        "raft_log_fsync",
        "panic(disk gone)",
    );
    // The leader and f1 persisted the entry: a majority, so it may be acknowledged.
    let (env, id) = net.client.envelope(&ch, vec![3; 64]).unwrap();
    let answer = net.client.broadcast(&net.addr(leader), vec![env]).await;
    if matches!(&answer, Ok(r) if r[0].status == Status::Success as i32) {
        acked.push(id);
    }
    assert!(wait_halted(&net, f1).await.contains("block_write"));
    // A panic in the chain's thread is a halt too, not a silent stop.
    let panicked = wait_halted(&net, f2).await;
    assert!(
        panicked.contains("panicked") && panicked.contains("disk gone"),
        "{panicked}"
    );
    // The leader's channel keeps running (and says so) though it cannot order alone.
    let ops = net.cluster.nodes[leader].operations_address().unwrap();
    assert_eq!(http_get(&ops, "/readyz").0, 200);

    // Restarted, both replay what their Raft logs hold; nothing acknowledged is lost.
    for f in [f1, f2] {
        net.cluster.kill(f).unwrap();
        net.cluster.start(f).unwrap();
    }
    net.cluster
        .wait_leader(&net.admin, &[], TIMEOUT)
        .await
        .unwrap();
    acked.extend(net.submit(f1, 10, 128).await);
    let tip = net.admin.status(&net.addr(f1), &ch).await.unwrap().height;
    for i in 0..3 {
        net.wait_height(i, tip).await;
        let ids = tx_ids(&net.blocks(i).await);
        for id in &acked {
            assert_eq!(
                ids.iter().filter(|t| *t == id).count(),
                1,
                "orderer {i}: {id}"
            );
        }
    }
}
