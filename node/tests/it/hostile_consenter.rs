//! A consenter turned hostile: a client holding a real consenter's TLS certificate sends Raft
//! messages that consenters never send each other. Each is refused and counted; the channel
//! keeps its leader and term, keeps ordering, and commits nothing forged.

use std::time::Duration;

use protobuf::Message as _;
use raft::prelude::{Entry, Message, MessageType};
use raftnet_node::config::NodeConfig;
use raftnet_node::network::ordering::OrderingSpec;
use raftnet_node::proto::cluster::{cluster_client::ClusterClient, StepRequest, SubmitRequest};
use raftnet_node::proto::common::Status;
use raftnet_node::tls::TlsMaterial;

use crate::support::{self, scrape};

const FORGED: &[u8] = b"an entry proposed over Raft, never validated";

fn raft_message(t: MessageType, from: u64, to: u64, term: u64) -> Message {
    let mut m = Message::default();
    m.set_msg_type(t);
    m.from = from;
    m.to = to;
    m.term = term;
    m
}

/// Refusals counted on an orderer's /metrics for `kind`.
fn refused(ops: &str, channel: &str, kind: &str) -> f64 {
    scrape(ops)
        .samples
        .iter()
        .filter(|s| s.metric == "raftnet_cluster_refused_messages_total")
        .filter(|s| s.labels.get("channel") == Some(channel) && s.labels.get("type") == Some(kind))
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Untyped(v) => v,
            _ => 0.0,
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_consenter_is_refused_and_the_channel_keeps_ordering() {
    let net = support::start(OrderingSpec {
        orderers: 3,
        ..Default::default()
    })
    .await;
    let ch = net.channel();
    net.submit(0, 3, 32).await;
    let leader = net.leader().await;
    let (victim, hostile) = ((leader + 1) % 3, (leader + 2) % 3);
    let status = |i: usize| {
        let (admin, addr, ch) = (&net.admin, net.addr(i), ch.clone());
        async move { admin.status(&addr, &ch).await.unwrap() }
    };
    let before = status(victim).await;
    let me = before.node_id;
    let from = status(hostile).await.node_id;
    let term = before.term;

    let mut propose = raft_message(MessageType::MsgPropose, from, me, term);
    propose.mut_entries().push(Entry {
        data: FORGED.to_vec().into(),
        ..Entry::default()
    });
    // Forces an election past pre-vote and the leader's lease.
    let timeout_now = raft_message(MessageType::MsgTimeoutNow, from, me, term);
    // raft-rs would commit past the end of the log and panic the chain's thread.
    let mut heartbeat = raft_message(MessageType::MsgHeartbeat, from, me, term);
    heartbeat.commit = before.commit_index + 1000;
    let misaddressed = raft_message(MessageType::MsgAppend, from, before.leader_id, term);
    let local_only = raft_message(MessageType::MsgHup, from, me, term);
    // A snapshot far ahead whose membership is the victim alone: applied, it would let the
    // victim elect itself with no one else's vote.
    let mut snapshot = raft_message(MessageType::MsgSnapshot, from, me, term);
    let meta = snapshot.mut_snapshot().mut_metadata();
    meta.index = before.commit_index + 1000;
    meta.term = term;
    meta.mut_conf_state().voters = vec![me];
    let hostile_msgs = [
        propose,
        timeout_now,
        heartbeat,
        misaddressed,
        local_only,
        snapshot,
    ];

    let cfg = NodeConfig::load(&net.cluster.nodes[hostile].config).unwrap();
    let tls = TlsMaterial::load(&cfg.tls).unwrap();
    let mut cluster = ClusterClient::new(tls.channel(&net.addr(victim)).unwrap());
    let requests: Vec<StepRequest> = hostile_msgs
        .iter()
        .map(|m| StepRequest {
            channel_id: ch.clone(),
            message: m.write_to_bytes().unwrap(),
        })
        .collect();
    cluster
        .step(futures::stream::iter(requests))
        .await
        .expect("refusals do not end the stream with an error");

    // Longer than an election timeout: a forced election or a halt would show by now.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = status(victim).await;
    assert_eq!(after.halt_error, "", "the victim's chain halted");
    assert_eq!(
        (after.leader_id, after.term),
        (before.leader_id, before.term),
        "the leader or term changed"
    );
    let ops = net.cluster.nodes[victim].operations_address().unwrap();
    for kind in [
        "MsgPropose",
        "MsgTimeoutNow",
        "MsgHeartbeat",
        "MsgAppend",
        "MsgHup",
        "MsgSnapshot",
    ] {
        assert_eq!(refused(&ops, &ch, kind), 1.0, "refusals of {kind}");
    }

    // A forwarded transaction is validated by the leader again: one whose signature was
    // tampered with after signing is refused, not ordered.
    let (mut env, _) = net.client.envelope(&ch, FORGED.to_vec()).unwrap();
    let last = env.signature.len() - 1;
    env.signature[last] ^= 1;
    let mut to_leader = ClusterClient::new(tls.channel(&net.addr(leader)).unwrap());
    let forwarded = SubmitRequest {
        channel_id: ch.clone(),
        envelope: Some(env),
        request_id: 7,
    };
    let mut answers = to_leader
        .submit(futures::stream::iter([forwarded]))
        .await
        .unwrap()
        .into_inner();
    let answer = answers.message().await.unwrap().expect("an answer");
    assert_ne!(
        answer.status,
        Status::Success as i32,
        "a tampered forwarded envelope was ordered"
    );
    assert!(
        answer.info.contains("refused by the leader"),
        "{}",
        answer.info
    );

    // The channel keeps ordering, through the victim too, and nothing forged is in a block.
    net.submit(victim, 5, 32).await;
    let height = status(leader).await.height;
    for i in 0..3 {
        net.wait_height(i, height).await;
        for block in net.blocks(i).await {
            let txs = block.data.map(|d| d.transactions).unwrap_or_default();
            assert!(
                !txs.iter()
                    .any(|tx| tx.windows(FORGED.len()).any(|w| w == FORGED)),
                "orderer {i} holds the forged entry"
            );
        }
    }
}
