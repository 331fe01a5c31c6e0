//! The words of a node's Raft role, from its admin API's enum to status.

use raftnet_crds::status::role;
use raftnet_node::proto::admin::{ChannelStatus, Role};

/// The status word for what a node said about a channel; `Unavailable` when it said nothing.
pub fn role_word(status: Option<&ChannelStatus>) -> &'static str {
    let Some(status) = status else {
        return role::UNAVAILABLE;
    };
    match Role::try_from(status.role).unwrap_or(Role::Unspecified) {
        Role::Leader => role::LEADER,
        Role::Follower => role::FOLLOWER,
        Role::Candidate | Role::PreCandidate => role::CANDIDATE,
        Role::Halted => role::HALTED,
        // A node that runs but has not yet taken part in an election.
        Role::Unspecified => role::FOLLOWER,
    }
}

/// The consenter view the shared status derivation takes.
pub fn consenter_view(
    name: &str,
    status: Option<&ChannelStatus>,
) -> raftnet_crds::health::ConsenterView {
    let Some(s) = status else {
        return raftnet_crds::health::ConsenterView::unavailable(name);
    };
    raftnet_crds::health::ConsenterView {
        name: name.to_owned(),
        role: role_word(Some(s)).to_owned(),
        leader: (!s.leader_name.is_empty()).then(|| s.leader_name.clone()),
        term: s.term,
        height: s.height,
        halt_error: s.halt_error.clone(),
    }
}
