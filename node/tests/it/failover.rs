//! The seed lab's ordering steps: kill leaders one by one, lose quorum, get it back.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use raftnet_node::ledger::header_hash;
use raftnet_node::network::ordering::OrderingSpec;
use raftnet_node::proto::admin::Role;
use raftnet_node::proto::common::Status;

use crate::support::{self, tx_ids, TIMEOUT};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_orderers_survive_two_leader_kills_and_stop_without_quorum() {
    let mut net = support::start(OrderingSpec {
        orderers: 5,
        ..Default::default()
    })
    .await;
    let admin = &net.admin;
    let l1 = net.cluster.wait_leader(admin, &[], TIMEOUT).await.unwrap();
    let st = admin.status(&net.addr(0), &net.channel()).await.unwrap();
    assert_eq!(st.leader_id, l1);
    assert_eq!(st.consenters.len(), 5);

    // Ordered through a follower and through the leader.
    let follower = (0..5).find(|&i| i as u64 + 1 != l1).unwrap();
    let mut acked = net.submit(follower, 30, 256).await;
    acked.extend(net.submit(l1 as usize - 1, 30, 256).await);
    assert_eq!(acked.len(), 60);

    // Kill the leader: another is elected and ordering goes on.
    let mut down = vec![l1 as usize - 1];
    net.cluster.kill(down[0]).unwrap();
    let l2 = net
        .cluster
        .wait_leader(admin, &down, TIMEOUT)
        .await
        .unwrap();
    assert_ne!(l2, l1);
    let live = (0..5).find(|i| !down.contains(i)).unwrap();
    acked.extend(net.submit(live, 20, 256).await);

    // Kill the second leader: a third is elected.
    down.push(l2 as usize - 1);
    net.cluster.kill(l2 as usize - 1).unwrap();
    let l3 = net
        .cluster
        .wait_leader(admin, &down, TIMEOUT)
        .await
        .unwrap();
    assert!(l3 != l1 && l3 != l2);
    let live = (0..5).find(|i| !down.contains(i)).unwrap();
    acked.extend(net.submit(live, 20, 256).await);

    // A third orderer down: 2 of 5 cannot elect a leader.
    down.push(l3 as usize - 1);
    net.cluster.kill(l3 as usize - 1).unwrap();
    let survivors: Vec<usize> = (0..5).filter(|i| !down.contains(i)).collect();
    let started = Instant::now();
    loop {
        let mut leaderless = true;
        for &i in &survivors {
            let s = admin.status(&net.addr(i), &net.channel()).await.unwrap();
            leaderless &= s.leader_id == 0 && !s.quorum && s.role != Role::Leader as i32;
        }
        if leaderless {
            break;
        }
        assert!(
            started.elapsed() < TIMEOUT,
            "survivors still report a leader"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (env, _) = net
        .client
        .envelope(&net.channel(), b"no quorum".to_vec())
        .unwrap();
    let asked = Instant::now();
    let r = net
        .client
        .broadcast(&net.addr(survivors[0]), vec![env])
        .await
        .unwrap();
    assert_eq!(r[0].status, Status::ServiceUnavailable as i32);
    assert!(r[0].info.contains("no Raft leader"), "{}", r[0].info);
    assert!(
        asked.elapsed() < Duration::from_secs(2),
        "UNAVAILABLE must come at once"
    );
    // Deliver still serves what was written.
    let blocks = net.blocks(survivors[0]).await;
    assert!(tx_ids(&blocks).len() >= acked.len());

    // Bring one back: a majority again, a leader, ordering works.
    let back = down.pop().unwrap();
    net.cluster.start(back).unwrap();
    net.cluster
        .wait_leader(admin, &down, TIMEOUT)
        .await
        .unwrap();
    acked.extend(net.submit(back, 20, 256).await);

    // Everyone back: all five hold identical ledgers with every acknowledged tx exactly once.
    for i in down.drain(..) {
        net.cluster.start(i).unwrap();
    }
    let height = admin
        .status(&net.addr(back), &net.channel())
        .await
        .unwrap()
        .height;
    for i in 0..5 {
        net.wait_height(i, height).await;
    }
    let reference = net.blocks(0).await;
    for i in 1..5 {
        let other = net.blocks(i).await;
        let n = reference.len().min(other.len());
        for h in 0..n {
            assert_eq!(
                header_hash(reference[h].header.as_ref().unwrap()),
                header_hash(other[h].header.as_ref().unwrap()),
                "orderer {} differs at block {h}",
                i + 1
            );
        }
    }
    for (h, b) in reference.iter().enumerate().skip(1) {
        assert_eq!(
            b.header.as_ref().unwrap().previous_hash,
            header_hash(reference[h - 1].header.as_ref().unwrap())
        );
    }
    let mut counts: HashMap<String, usize> = HashMap::new();
    for id in tx_ids(&reference) {
        *counts.entry(id).or_default() += 1;
    }
    for id in &acked {
        assert_eq!(
            counts.get(id),
            Some(&1),
            "acknowledged tx {id} must be in the ledger exactly once"
        );
    }
}
