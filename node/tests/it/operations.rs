//! The operations endpoint and NodeInfo on real orderer and peer processes: liveness,
//! readiness, Prometheus metrics with Fabric's names, certificate expiry.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::peers::Lab;
use crate::support::{http_get, metric, scrape};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_report_health_readiness_metrics_and_who_they_are() {
    let lab = Lab::start(3).await;
    let net = &lab.net;
    let ch = net.channel();
    let leader = net.leader().await;
    let follower = (leader + 1) % 3;
    let outcome = lab
        .invoke(&lab.endorsers(), &["invoke", "a", "b", "10"])
        .await
        .unwrap();
    assert!(outcome.is_valid(), "{outcome:?}");
    let ops = |i: usize| net.cluster.nodes[i].operations_address().unwrap();

    // Liveness and readiness, with the channel named.
    for i in [leader, follower, net.cluster.peer_index(0)] {
        let (code, body) = http_get(&ops(i), "/healthz");
        assert_eq!(code, 200, "{body}");
        let (code, body) = http_get(&ops(i), "/readyz");
        assert_eq!(code, 200, "{body}");
        let ready: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(ready["status"], "ready");
        assert_eq!(ready["channels"][0]["channel"], ch.as_str());
        assert_eq!(ready["channels"][0]["state"], "running");
    }

    // Orderer metrics: who leads, how big the group is, what was ordered.
    let m = scrape(&ops(leader));
    assert_eq!(metric(&m, "consensus_etcdraft_is_leader", &ch), Some(1.0));
    assert_eq!(
        metric(&m, "consensus_etcdraft_cluster_size", &ch),
        Some(3.0)
    );
    assert_eq!(
        metric(&m, "consensus_etcdraft_active_nodes", &ch),
        Some(3.0)
    );
    let height = net
        .admin
        .status(&net.addr(leader), &ch)
        .await
        .unwrap()
        .height;
    assert!(height >= 3, "deploy and invoke are blocks 1 and 2");
    assert_eq!(
        metric(&m, "consensus_etcdraft_committed_block_number", &ch),
        Some((height - 1) as f64)
    );
    assert_eq!(
        metric(&m, "ledger_blockchain_height", &ch),
        Some(height as f64)
    );
    assert!(metric(&m, "consensus_etcdraft_leader_changes", &ch).unwrap() >= 1.0);
    assert!(
        metric(&m, "consensus_etcdraft_data_persist_duration_count", &ch).unwrap() > 0.0,
        "Raft writes are timed"
    );
    let f = scrape(&ops(follower));
    assert_eq!(metric(&f, "consensus_etcdraft_is_leader", &ch), Some(0.0));
    // Deliver served the peers' block pulls; broadcasts were counted where they arrived.
    let sent: f64 = (0..3)
        .map(|i| metric(&scrape(&ops(i)), "deliver_blocks_sent", &ch).unwrap_or(0.0))
        .sum();
    assert!(sent >= 4.0 * 2.0, "4 peers pulled blocks 1 and 2: {sent}");
    let processed: f64 = (0..3)
        .map(|i| metric(&scrape(&ops(i)), "broadcast_processed_count", &ch).unwrap_or(0.0))
        .sum();
    assert!(
        processed >= 2.0,
        "deploy and invoke were broadcast: {processed}"
    );

    // Peer metrics: the endorser and the ledger.
    let p = scrape(&ops(net.cluster.peer_index(0)));
    assert!(metric(&p, "endorser_proposals_received", &ch).unwrap() >= 2.0);
    assert!(metric(&p, "endorser_successful_proposals", &ch).unwrap() >= 2.0);
    assert_eq!(
        metric(&p, "ledger_blockchain_height", &ch),
        Some(height as f64)
    );
    let valid = p
        .samples
        .iter()
        .find(|s| {
            s.metric == "ledger_transaction_count"
                && s.labels.get("validation_code") == Some("VALID")
        })
        .expect("valid transactions are counted");
    assert!(matches!(valid.value, prometheus_parse::Value::Counter(v) if v >= 2.0));

    // NodeInfo: who the node is, and when its certificates expire.
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let info = net.admin.node_info(&net.addr(leader)).await.unwrap();
    assert_eq!(info.name, format!("orderer{}", leader + 1));
    assert_eq!(
        (info.msp_id.as_str(), info.role.as_str()),
        ("OrdererMSP", "orderer")
    );
    assert_eq!(info.version, env!("CARGO_PKG_VERSION"));
    assert_eq!(info.channels, vec![ch.clone()]);
    let usages: Vec<&str> = info.certificates.iter().map(|c| c.usage.as_str()).collect();
    assert_eq!(usages, ["tls", "signing"]);
    let tls = &info.certificates[0];
    assert!(
        tls.not_before <= now && tls.not_after > now + 300 * 86_400,
        "{tls:?}"
    );
    let peer_info = lab
        .admin_of_peer(0)
        .node_info(&lab.peer_addr(0))
        .await
        .unwrap();
    assert_eq!(
        (peer_info.name.as_str(), peer_info.role.as_str()),
        ("peer0.org1", "peer")
    );
    let usages: Vec<&str> = peer_info
        .certificates
        .iter()
        .map(|c| c.usage.as_str())
        .collect();
    assert_eq!(usages, ["tls", "signing"]);
    // Commit events, like Deliver, are for signed requests of channel readers.
    let mut events = raftnet_node::proto::peer::events_client::EventsClient::new(
        lab.org1.channel(&lab.peer_addr(0)).unwrap(),
    );
    let refused = events
        .commit_events(raftnet_node::proto::peer::CommitEventsRequest {
            channel_id: ch.clone(),
            start: Some(0),
            signature: None,
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::PermissionDenied);
    assert!(
        refused.message().contains("not signed"),
        "{}",
        refused.message()
    );

    // Another organisation's admin is refused, as on every admin call.
    let err = lab
        .admin_of_peer(2)
        .node_info(&lab.peer_addr(0))
        .await
        .unwrap_err();
    assert!(format!("{err:#}").contains("OU=admin"), "{err:#}");
}
