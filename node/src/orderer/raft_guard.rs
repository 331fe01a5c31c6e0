//! Which Raft messages another consenter may send. Raft trusts its members, and the Cluster
//! service already binds a message's `from` to the sender's TLS certificate; these checks keep
//! one compromised or buggy consenter from making this node skip validation, skip pre-vote, or
//! crash its chain thread. A refused message is counted and logged, never fatal.

use raft::prelude::{Message, MessageType};

/// A refused message: `kind` is its Raft type (the metric's label), `reason` says why.
#[derive(Debug)]
pub struct Refused {
    pub kind: &'static str,
    pub reason: String,
}

/// The message types consenters exchange. Not in the list: `MsgPropose` (followers forward
/// transactions with `Submit`, where the leader validates them: an entry proposed over Raft
/// would skip that), `MsgTransferLeader` (handoffs are asked of the leader through its admin
/// API), `MsgReadIndex*` (unused), and the types raft-rs only makes locally (`MsgHup`,
/// `MsgBeat`, `MsgUnreachable`, `MsgSnapStatus`, `MsgCheckQuorum`).
const FROM_CONSENTERS: [MessageType; 10] = [
    MessageType::MsgAppend,
    MessageType::MsgAppendResponse,
    MessageType::MsgRequestVote,
    MessageType::MsgRequestVoteResponse,
    MessageType::MsgRequestPreVote,
    MessageType::MsgRequestPreVoteResponse,
    MessageType::MsgSnapshot,
    MessageType::MsgHeartbeat,
    MessageType::MsgHeartbeatResponse,
    MessageType::MsgTimeoutNow,
];

/// The metric label of a message type.
pub fn kind(m: &Message) -> &'static str {
    match m.get_msg_type() {
        MessageType::MsgHup => "MsgHup",
        MessageType::MsgBeat => "MsgBeat",
        MessageType::MsgPropose => "MsgPropose",
        MessageType::MsgAppend => "MsgAppend",
        MessageType::MsgAppendResponse => "MsgAppendResponse",
        MessageType::MsgRequestVote => "MsgRequestVote",
        MessageType::MsgRequestVoteResponse => "MsgRequestVoteResponse",
        MessageType::MsgSnapshot => "MsgSnapshot",
        MessageType::MsgHeartbeat => "MsgHeartbeat",
        MessageType::MsgHeartbeatResponse => "MsgHeartbeatResponse",
        MessageType::MsgUnreachable => "MsgUnreachable",
        MessageType::MsgSnapStatus => "MsgSnapStatus",
        MessageType::MsgCheckQuorum => "MsgCheckQuorum",
        MessageType::MsgTransferLeader => "MsgTransferLeader",
        MessageType::MsgTimeoutNow => "MsgTimeoutNow",
        MessageType::MsgReadIndex => "MsgReadIndex",
        MessageType::MsgReadIndexResp => "MsgReadIndexResp",
        MessageType::MsgRequestPreVote => "MsgRequestPreVote",
        MessageType::MsgRequestPreVoteResponse => "MsgRequestPreVoteResponse",
    }
}

/// Counts and logs a refusal (a hostile consenter could send many: they cost a counter and
/// a log line each, and the stream goes on).
pub fn count(channel: &str, from: u64, r: &Refused) {
    crate::operations::metrics::metrics()
        .cluster_refused_messages
        .with_label_values(&[channel, r.kind])
        .inc();
    tracing::warn!(channel, from, kind = r.kind, reason = %r.reason, "refused a Raft message from a consenter");
}

fn refused(m: &Message, reason: String) -> Result<(), Refused> {
    Err(Refused {
        kind: kind(m),
        reason,
    })
}

/// Checks that need no Raft state (the Cluster service): a type consenters send, for this node.
pub fn check_addressing(m: &Message, me: u64) -> Result<(), Refused> {
    if m.to != me {
        return refused(m, format!("addressed to node {}, this is node {me}", m.to));
    }
    if !FROM_CONSENTERS.contains(&m.get_msg_type()) {
        return refused(m, "a type consenters do not send to each other".into());
    }
    Ok(())
}

/// Checks against this node's Raft state, just before the message is stepped: who leads and
/// how long the log is.
pub fn check_against_state(m: &Message, leader: u64, last_index: u64) -> Result<(), Refused> {
    match m.get_msg_type() {
        // A transfer's last step, which skips pre-vote and the leader lease: only the leader
        // this node follows may ask for it.
        MessageType::MsgTimeoutNow if m.from != leader => refused(
            m,
            format!(
                "only the leader (node {leader}) may hand over leadership, not node {}",
                m.from
            ),
        ),
        // raft-rs commits a heartbeat's index unchecked and panics beyond the log's end; a
        // leader never sends more than what this node acknowledged.
        MessageType::MsgHeartbeat if m.commit > last_index => refused(
            m,
            format!(
                "commit index {} is beyond this node's log (last index {last_index})",
                m.commit
            ),
        ),
        _ => Ok(()),
    }
}

/// A snapshot replaces this node's log and its view of the membership: it is taken only from
/// the leader this node follows (once it knows one), naming exactly the channel's consenters
/// as voters (raftnet changes no membership through Raft).
pub fn check_snapshot(m: &Message, leader: u64, consenters: &[u64]) -> Result<(), Refused> {
    if m.get_msg_type() != MessageType::MsgSnapshot {
        return Ok(());
    }
    if leader != 0 && m.from != leader {
        return refused(
            m,
            format!(
                "only the leader (node {leader}) sends snapshots, not node {}",
                m.from
            ),
        );
    }
    let conf = m.get_snapshot().get_metadata().get_conf_state();
    let mut voters = conf.voters.clone();
    voters.sort_unstable();
    let mut want = consenters.to_vec();
    want.sort_unstable();
    if voters != want
        || !conf.learners.is_empty()
        || !conf.voters_outgoing.is_empty()
        || !conf.learners_next.is_empty()
    {
        return refused(
            m,
            format!(
                "its membership (voters {voters:?}, learners {:?}) is not the channel's consenters {want:?}",
                conf.learners
            ),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(t: MessageType, from: u64, to: u64) -> Message {
        let mut m = Message::default();
        m.set_msg_type(t);
        m.from = from;
        m.to = to;
        m
    }

    #[test]
    fn consenters_may_send_raft_traffic_but_not_proposals_or_local_types() {
        for t in [
            MessageType::MsgAppend,
            MessageType::MsgHeartbeat,
            MessageType::MsgRequestPreVote,
            MessageType::MsgSnapshot,
        ] {
            assert!(check_addressing(&msg(t, 2, 1), 1).is_ok(), "{t:?}");
        }
        for t in [
            MessageType::MsgPropose,
            MessageType::MsgHup,
            MessageType::MsgBeat,
            MessageType::MsgCheckQuorum,
            MessageType::MsgTransferLeader,
            MessageType::MsgReadIndex,
        ] {
            let r = check_addressing(&msg(t, 2, 1), 1).unwrap_err();
            assert_eq!(r.kind, kind(&msg(t, 2, 1)));
        }
        let r = check_addressing(&msg(MessageType::MsgAppend, 2, 3), 1).unwrap_err();
        assert!(r.reason.contains("addressed to node 3"), "{}", r.reason);
    }

    #[test]
    fn timeout_now_only_from_the_leader_and_commits_only_within_the_log() {
        let now = msg(MessageType::MsgTimeoutNow, 2, 1);
        assert!(check_against_state(&now, 2, 10).is_ok());
        assert!(check_against_state(&now, 3, 10).is_err());
        let mut beat = msg(MessageType::MsgHeartbeat, 2, 1);
        beat.commit = 10;
        assert!(check_against_state(&beat, 2, 10).is_ok());
        beat.commit = 11;
        let r = check_against_state(&beat, 2, 10).unwrap_err();
        assert!(r.reason.contains("beyond this node's log"), "{}", r.reason);
    }

    #[test]
    fn snapshots_only_from_the_leader_and_with_the_channels_consenters() {
        let mut snap = msg(MessageType::MsgSnapshot, 2, 1);
        snap.mut_snapshot().mut_metadata().mut_conf_state().voters = vec![3, 1, 2];
        assert!(check_snapshot(&snap, 2, &[1, 2, 3]).is_ok());
        // Leader not known yet (just restarted): the membership check still holds.
        assert!(check_snapshot(&snap, 0, &[1, 2, 3]).is_ok());
        let r = check_snapshot(&snap, 3, &[1, 2, 3]).unwrap_err();
        assert!(r.reason.contains("only the leader"), "{}", r.reason);
        // A snapshot that would remove node 3 or add a learner is refused.
        snap.mut_snapshot().mut_metadata().mut_conf_state().voters = vec![1, 2];
        let r = check_snapshot(&snap, 2, &[1, 2, 3]).unwrap_err();
        assert!(r.reason.contains("membership"), "{}", r.reason);
        let conf = snap.mut_snapshot().mut_metadata().mut_conf_state();
        conf.voters = vec![1, 2, 3];
        conf.learners = vec![9];
        assert!(check_snapshot(&snap, 2, &[1, 2, 3]).is_err());
        // Other types are not its business.
        assert!(check_snapshot(&msg(MessageType::MsgAppend, 3, 1), 2, &[1]).is_ok());
    }
}
