//! Planned leadership handoff on real orderer processes: TransferLeadership with and without
//! a target, its refusals, and SIGTERM of the leader under load failing no transaction.

use std::sync::Arc;
use std::time::{Duration, Instant};

use raftnet_node::cli::bench::load::Load;
use raftnet_node::client::Client;
use raftnet_node::network::ordering::OrderingSpec;

use crate::support::{self, tx_ids, TIMEOUT};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leadership_moves_where_asked_and_is_refused_with_reasons() {
    let mut net = support::start(OrderingSpec {
        orderers: 3,
        ..Default::default()
    })
    .await;
    let ch = net.channel();
    let admin = &net.admin;
    let l1 = net.cluster.wait_leader(admin, &[], TIMEOUT).await.unwrap();
    let target = l1 % 3 + 1;

    // To a named orderer, asked through a follower (the client finds the leader).
    let via = net.addr(target as usize - 1);
    let done = admin
        .transfer_leadership(&via, &ch, Some(&format!("orderer{target}")))
        .await
        .unwrap();
    assert_eq!(done.previous_leader, format!("orderer{l1}"));
    assert_eq!(done.new_leader, format!("orderer{target}"));
    assert_eq!(
        net.cluster.wait_leader(admin, &[], TIMEOUT).await.unwrap(),
        target
    );

    // Without a target: the most caught-up other orderer.
    let done = admin.transfer_leadership(&via, &ch, None).await.unwrap();
    assert_eq!(done.previous_leader, format!("orderer{target}"));
    assert_ne!(done.new_leader, done.previous_leader);
    let l3 = net.cluster.wait_leader(admin, &[], TIMEOUT).await.unwrap();
    assert_eq!(done.new_leader, format!("orderer{l3}"));
    // Ordering works under the new leader.
    assert_eq!(net.submit(0, 5, 64).await.len(), 5);

    // Refusals change nothing: an unknown target, itself, a stopped one.
    let leader_addr = net.addr(l3 as usize - 1);
    let err = admin
        .transfer_leadership(&leader_addr, &ch, Some("orderer9"))
        .await
        .unwrap_err();
    assert!(format!("{err:#}").contains("not a consenter"), "{err:#}");
    let err = admin
        .transfer_leadership(&leader_addr, &ch, Some(&format!("orderer{l3}")))
        .await
        .unwrap_err();
    assert!(
        format!("{err:#}").contains("this orderer itself"),
        "{err:#}"
    );
    let down = (l3 % 3 + 1) as usize - 1;
    net.cluster.kill(down).unwrap();
    let err = admin
        .transfer_leadership(&leader_addr, &ch, Some(&format!("orderer{}", down + 1)))
        .await
        .unwrap_err();
    assert!(format!("{err:#}").contains("not active"), "{err:#}");
    assert_eq!(
        net.cluster
            .wait_leader(admin, &[down], TIMEOUT)
            .await
            .unwrap(),
        l3,
        "a refused transfer leaves the leader in place"
    );

    // Without a quorum there is nothing to hand over to.
    let other = (0..3).find(|&i| i != down && i as u64 + 1 != l3).unwrap();
    net.cluster.kill(other).unwrap();
    let err = admin
        .transfer_leadership(&leader_addr, &ch, None)
        .await
        .unwrap_err();
    let text = format!("{err:#}");
    assert!(
        text.contains("no quorum") || text.contains("no leader") || text.contains("not active"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_of_the_leader_under_load_hands_over_and_fails_no_transaction() {
    let mut net = support::start(OrderingSpec {
        orderers: 3,
        ..Default::default()
    })
    .await;
    let admin = Client::load(&net.cluster.layout.admin).unwrap();
    let l1 = net.cluster.wait_leader(&admin, &[], TIMEOUT).await.unwrap() as usize - 1;
    let orderers = (0..3).map(|i| net.addr(i)).collect();
    let client = Arc::new(Client::load(&net.cluster.layout.client).unwrap());
    let running = Load::start(client, &net.channel(), orderers, 8, 128);
    tokio::time::sleep(Duration::from_millis(800)).await;

    let started = Instant::now();
    net.cluster.terminate(l1, Duration::from_secs(10)).unwrap();
    let took = started.elapsed();
    let l2 = net
        .cluster
        .wait_leader(&admin, &[l1], TIMEOUT)
        .await
        .unwrap() as usize
        - 1;
    assert_ne!(l2, l1);
    tokio::time::sleep(Duration::from_millis(800)).await;
    let report = running.stop().await;
    let (acked, failed) = (report.ids(), &report.failed);
    assert!(
        failed.is_empty(),
        "{} failed, e.g. {:?}",
        failed.len(),
        failed.first()
    );
    assert!(acked.len() > 50, "only {} ordered", acked.len());
    eprintln!("SIGTERM to exit: {took:?}");
    let log = std::fs::read_to_string(&net.cluster.nodes[l1].log).unwrap();
    assert!(
        log.contains("handed leadership over before stopping"),
        "{log}"
    );

    // The stopped orderer comes back; every acknowledged transaction is there once.
    net.cluster.start(l1).unwrap();
    net.cluster.wait_ready(l1, &admin, TIMEOUT).await.unwrap();
    let tip = admin
        .status(&net.addr(l2), &net.channel())
        .await
        .unwrap()
        .height;
    for i in 0..3 {
        net.wait_height(i, tip).await;
        let ids = tx_ids(&net.blocks(i).await);
        assert_eq!(
            ids.len(),
            acked.len(),
            "orderer {i}: no more, no less than acknowledged"
        );
        let unique: std::collections::HashSet<&String> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len(), "orderer {i} ordered a tx twice");
        for id in &acked {
            assert!(unique.contains(id), "orderer {i} lacks {id}");
        }
    }
}
