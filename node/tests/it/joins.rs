//! Channels on disk that an orderer cannot open: a corrupt marker (a crash mid-write) is
//! reported as a halted channel, with why, and the orderer still serves its other channels; a
//! join that never wrote its marker is not reopened.

use raftnet_node::config::NodeConfig;
use raftnet_node::network::ordering::OrderingSpec;
use raftnet_node::proto::admin::Role;

use crate::support::{self, TIMEOUT};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_channel_is_reported_and_the_others_are_served() {
    let mut net = support::start(OrderingSpec {
        orderers: 3,
        ..Default::default()
    })
    .await;
    let ch = net.channel();
    net.submit(0, 3, 32).await;
    let victim = (net.leader().await + 1) % 3;
    net.cluster.kill(victim).unwrap();

    let data = NodeConfig::load(&net.cluster.nodes[victim].config)
        .unwrap()
        .data_dir;
    let broken = data.join("channels/broken");
    std::fs::create_dir_all(&broken).unwrap();
    std::fs::write(broken.join("genesis.block"), b"\x0a\xff\xff half a block").unwrap();
    let unfinished = data.join("channels/unfinished");
    std::fs::create_dir_all(&unfinished).unwrap();
    std::fs::write(unfinished.join("genesis.block.tmp"), b"never renamed").unwrap();

    net.cluster.start(victim).unwrap();
    let addr = net.addr(victim);
    let started = std::time::Instant::now();
    let serving = loop {
        if let Ok(s) = net.admin.status(&addr, &ch).await {
            if s.leader_id != 0 {
                break s;
            }
        }
        assert!(
            started.elapsed() < TIMEOUT,
            "the orderer does not serve {ch} with a broken channel beside it"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_ne!(serving.role, Role::Halted as i32);

    let status = net.admin.status(&addr, "broken").await.unwrap();
    assert_eq!(status.role, Role::Halted as i32);
    assert!(
        status.halt_error.contains("could not be opened") && status.halt_error.contains("corrupt"),
        "{}",
        status.halt_error
    );
    let listed: Vec<String> = net
        .admin
        .list_channels(&addr)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.channel_id)
        .collect();
    assert!(listed.contains(&"broken".to_string()), "{listed:?}");
    assert!(!listed.contains(&"unfinished".to_string()), "{listed:?}");

    // The channel it serves still orders, through it too.
    net.submit(victim, 3, 32).await;
}
