//! What nodes report, as the status of raftnet's resources: the one derivation that the
//! operator writes to the API server and `raftnet get` prints, so that both show the same
//! words for the same cluster. The words and the group's health come from
//! `raftnet_crds::health`; this module reads the nodes' admin API answers into them.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use raftnet_crds::health::{set_conditions, ConditionState, ConsenterView, GroupHealth};
use raftnet_crds::status::{quorum, role, DEGRADED, QUORUM_AVAILABLE, READY};
use raftnet_crds::{
    ChannelStatus as ChannelResourceStatus, ConsenterStatus, NetworkStatus, OrdererChannelStatus,
    OrdererStatus, PeerStatus,
};

use crate::proto::admin::{ChannelStatus, NodeInfoResponse, Role};

/// What one node said: its `NodeInfo` (None: no answer or not asked) and its status of each
/// channel (None: no answer for it).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NodeReport {
    pub info: Option<NodeInfoResponse>,
    pub channels: BTreeMap<String, Option<ChannelStatus>>,
}

impl NodeReport {
    /// Whether the node answers.
    pub fn reachable(&self) -> bool {
        self.info.is_some() || self.channels.values().any(Option::is_some)
    }

    /// Whether the node says it serves `channel`.
    pub fn joined(&self, channel: &str) -> bool {
        self.info
            .as_ref()
            .is_some_and(|i| i.channels.iter().any(|c| c == channel))
            || self.channels.get(channel).is_some_and(Option::is_some)
    }

    /// Whether it answers and no channel of it halted.
    pub fn up(&self) -> bool {
        self.reachable()
            && self
                .channels
                .values()
                .flatten()
                .all(|s| s.halt_error.is_empty())
    }

    /// What it said about `channel`.
    pub fn channel(&self, channel: &str) -> Option<&ChannelStatus> {
        self.channels.get(channel).and_then(Option::as_ref)
    }
}

/// The status word of a node's Raft role in a channel; `Unavailable` when it said nothing.
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

/// A consenter as the shared derivation takes it.
pub fn consenter_view(name: &str, status: Option<&ChannelStatus>) -> ConsenterView {
    let Some(s) = status else {
        return ConsenterView::unavailable(name);
    };
    ConsenterView {
        name: name.to_owned(),
        role: role_word(Some(s)).to_owned(),
        leader: (!s.leader_name.is_empty()).then(|| s.leader_name.clone()),
        term: s.term,
        height: s.height,
        halt_error: s.halt_error.clone(),
    }
}

/// A channel's Raft group from what each consenter said about it.
pub fn channel_health<'a>(
    channel: &str,
    consenters: impl IntoIterator<Item = (&'a str, &'a NodeReport)>,
) -> GroupHealth {
    let views: Vec<ConsenterView> = consenters
        .into_iter()
        .map(|(name, report)| consenter_view(name, report.channel(channel)))
        .collect();
    GroupHealth::of(&views)
}

/// The `Ready` condition of a node.
pub fn node_ready(name: &str, report: &NodeReport) -> ConditionState {
    if !report.reachable() {
        return ConditionState::new(
            READY,
            false,
            "NodeUnavailable",
            format!("{name} does not answer its admin API"),
        );
    }
    let failing = |pick: fn(&ChannelStatus) -> &str| {
        report.channels.iter().find_map(|(c, s)| {
            let s = s.as_ref()?;
            let reason = pick(s);
            (!reason.is_empty()).then(|| (c.clone(), reason.to_owned()))
        })
    };
    if let Some((channel, error)) = failing(|s| &s.halt_error) {
        return ConditionState::new(
            READY,
            false,
            "Halted",
            format!("channel {channel} halted: {error}"),
        );
    }
    if let Some((channel, error)) = failing(|s| &s.commit_error) {
        return ConditionState::new(
            READY,
            false,
            "CommitFailing",
            format!("channel {channel}: {error}"),
        );
    }
    let channels = report.channels.len();
    ConditionState::new(
        READY,
        true,
        "NodeAnswers",
        format!("{name} answers; {channels} channel(s)"),
    )
}

/// When the first of a node's certificates expires (RFC 3339).
pub fn certificate_expiry(report: &NodeReport) -> Option<String> {
    let seconds = report
        .info
        .as_ref()?
        .certificates
        .iter()
        .map(|c| c.not_after)
        .min()?;
    k8s_openapi::jiff::Timestamp::from_second(seconds)
        .ok()
        .map(|t| t.to_string())
}

fn with_conditions(
    current: &[Condition],
    states: Vec<ConditionState>,
    now: &Time,
    generation: Option<i64>,
) -> Vec<Condition> {
    let mut conditions = current.to_vec();
    set_conditions(&mut conditions, states, now.clone(), generation);
    conditions
}

/// An orderer's status. `lag` is how far it is behind its first channel's leader (None when
/// unknown), `last_contact` when it was last heard from (shown only while it does not answer);
/// `current` is the status shown so far, whose condition times are kept while they hold.
pub fn orderer_status(
    name: &str,
    report: &NodeReport,
    lag: Option<u64>,
    last_contact: Option<String>,
    current: &OrdererStatus,
    now: &Time,
    generation: Option<i64>,
) -> OrdererStatus {
    let channels: Vec<OrdererChannelStatus> = report
        .channels
        .iter()
        .map(|(channel, status)| OrdererChannelStatus {
            name: channel.clone(),
            role: role_word(status.as_ref()).to_owned(),
            leader: status
                .as_ref()
                .map(|s| s.leader_name.clone())
                .filter(|l| !l.is_empty()),
            term: status.as_ref().map_or(0, |s| s.term),
            height: status.as_ref().map_or(0, |s| s.height),
        })
        .collect();
    let reachable = report.reachable();
    let first = channels.first();
    let role = if !reachable {
        Some(role::UNAVAILABLE.to_owned())
    } else if channels.iter().any(|c| c.role == role::HALTED) {
        Some(role::HALTED.to_owned())
    } else {
        first.map(|c| c.role.clone())
    };
    OrdererStatus {
        observed_generation: generation,
        role,
        leader: first.and_then(|c| c.leader.clone()),
        term: first.map(|c| c.term).filter(|_| reachable),
        height: first.map(|c| c.height).filter(|_| reachable),
        lag: lag.filter(|_| reachable),
        // Only while it does not answer: "down since" is what a person needs, and a
        // timestamp that moved on every poll would rewrite status all the time.
        last_contact: if reachable {
            None
        } else {
            last_contact.or(current.last_contact.clone())
        },
        certificate_expiry: certificate_expiry(report).or(current.certificate_expiry.clone()),
        channels,
        conditions: with_conditions(
            &current.conditions,
            vec![node_ready(name, report)],
            now,
            generation,
        ),
    }
}

/// A peer's status.
pub fn peer_status(
    name: &str,
    report: &NodeReport,
    current: &PeerStatus,
    now: &Time,
    generation: Option<i64>,
) -> PeerStatus {
    let joined = report
        .info
        .as_ref()
        .map(|i| i.channels.len())
        .unwrap_or_else(|| report.channels.len());
    PeerStatus {
        observed_generation: generation,
        channels: report.reachable().then_some(joined as u32),
        height: report.channels.values().flatten().map(|s| s.height).max(),
        conditions: with_conditions(
            &current.conditions,
            vec![node_ready(name, report)],
            now,
            generation,
        ),
    }
}

/// A channel's status: its group's health, each consenter as it reports itself, who joined
/// (`missing`: members that have not), and the contracts deployed (`pending`: not yet).
#[allow(clippy::too_many_arguments)]
pub fn channel_status(
    channel: &str,
    consenters: &[(&str, &NodeReport)],
    joined: Vec<String>,
    missing: &[&str],
    deployed: Vec<String>,
    pending: &[String],
    current: &ChannelResourceStatus,
    now: &Time,
    generation: Option<i64>,
) -> ChannelResourceStatus {
    let health = channel_health(channel, consenters.iter().copied());
    let mut states = health.conditions();
    if let Some(ready) = states.iter_mut().find(|s| s.type_ == READY && s.status) {
        if !missing.is_empty() {
            ready.status = false;
            ready.reason = "Joining";
            ready.message = format!("not joined yet: {}; {}", missing.join(", "), ready.message);
        } else if !pending.is_empty() {
            ready.status = false;
            ready.reason = "Deploying";
            ready.message = format!("deploying {}", pending.join(", "));
        }
    }
    ChannelResourceStatus {
        observed_generation: generation,
        leader: health.leader.clone(),
        term: health.term,
        height: health.height,
        quorum: Some(health.quorum.to_owned()),
        consenters: consenters
            .iter()
            .map(|(name, report)| {
                let view = consenter_view(name, report.channel(channel));
                ConsenterStatus {
                    name: (*name).to_owned(),
                    active: view.is_up(),
                    role: view.role,
                    height: view.height,
                }
            })
            .collect(),
        joined,
        deployed,
        conditions: with_conditions(&current.conditions, states, now, generation),
    }
}

/// A network's status: its orderers and peers up, and its channels' health (the least
/// healthy one speaks for the network; the leader is that of its first channel).
pub fn network_status(
    orderers: &[(&str, &NodeReport)],
    peers: &[(&str, &NodeReport)],
    channels: &[(String, GroupHealth)],
    current: &NetworkStatus,
    now: &Time,
    generation: Option<i64>,
) -> NetworkStatus {
    let rank = |q: &str| match q {
        quorum::LOST => 0,
        quorum::DEGRADED => 1,
        _ => 2,
    };
    let worst = channels.iter().min_by_key(|(_, h)| rank(h.quorum));
    let mut states = match worst {
        Some((channel, health)) => {
            let mut states = health.conditions();
            if channels.len() > 1 {
                for state in &mut states {
                    state.message = format!("channel {channel}: {}", state.message);
                }
            }
            states
        }
        None => {
            let message = "no channel yet: the orderers form one Raft group per channel".to_owned();
            vec![
                ConditionState::new(READY, false, "NoChannel", message.clone()),
                ConditionState::new(QUORUM_AVAILABLE, false, "NoChannel", message.clone()),
                ConditionState::new(DEGRADED, false, "NoChannel", message),
            ]
        }
    };
    let down: Vec<&str> = peers
        .iter()
        .filter(|(_, r)| !r.up())
        .map(|(n, _)| *n)
        .collect();
    if !down.is_empty() {
        if let Some(ready) = states.iter_mut().find(|s| s.type_ == READY) {
            ready.status = false;
            ready.reason = "PeersDown";
            ready.message = format!(
                "{} of {} peers down ({}); {}",
                down.len(),
                peers.len(),
                down.join(", "),
                ready.message
            );
        }
    }
    let up = |nodes: &[(&str, &NodeReport)]| nodes.iter().filter(|(_, r)| r.up()).count();
    NetworkStatus {
        observed_generation: generation,
        orderers: Some(format!("{}/{}", up(orderers), orderers.len())),
        peers: Some(format!("{}/{}", up(peers), peers.len())),
        leader: channels.first().and_then(|(_, h)| h.leader.clone()),
        quorum: worst.map(|(_, h)| h.quorum.to_owned()),
        conditions: with_conditions(&current.conditions, states, now, generation),
    }
}
