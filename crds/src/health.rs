//! From what the nodes report to what status says: the leader of a Raft group, its quorum
//! (`Healthy`/`Degraded`/`Lost`) and the conditions of channels and networks, with messages
//! that name who is down. The operator and `raftnet get` both derive status here, so they show
//! the same words for the same cluster.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use crate::status::{quorum, role, DEGRADED, QUORUM_AVAILABLE, READY};

/// What one consenter of a channel said about it, or that it did not answer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConsenterView {
    /// The orderer's name (its `Orderer` resource).
    pub name: String,
    /// Its role, as one of the words of [`role`]; `Unavailable` when it did not answer.
    pub role: String,
    /// The leader it knows, if any.
    pub leader: Option<String>,
    pub term: u64,
    /// Blocks in its ledger.
    pub height: u64,
    /// Why its chain halted (role `Halted`).
    pub halt_error: String,
}

impl ConsenterView {
    /// A consenter that did not answer.
    pub fn unavailable(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            role: role::UNAVAILABLE.to_owned(),
            ..Self::default()
        }
    }

    /// Whether it takes part in Raft: it answered and its chain runs.
    pub fn is_up(&self) -> bool {
        self.role != role::UNAVAILABLE && self.role != role::HALTED
    }
}

/// A Raft group's state, derived from its consenters' views.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupHealth {
    /// The leader, when one is known: the one a consenter that leads names itself, at the
    /// highest term; else the one most up consenters name.
    pub leader: Option<String>,
    /// The highest term any up consenter reports.
    pub term: Option<u64>,
    /// The greatest height any consenter reports.
    pub height: Option<u64>,
    /// Consenters that take part in Raft.
    pub up: usize,
    pub total: usize,
    /// Consenters that do not (unavailable or halted), by name.
    pub down: Vec<String>,
    /// One of the words of [`quorum`].
    pub quorum: &'static str,
}

impl GroupHealth {
    /// How many consenters a leader needs: a majority.
    pub fn needed(&self) -> usize {
        self.total / 2 + 1
    }

    /// Derives the group's state from its consenters' views.
    pub fn of(views: &[ConsenterView]) -> Self {
        let total = views.len();
        let up = views.iter().filter(|v| v.is_up()).count();
        let down = views
            .iter()
            .filter(|v| !v.is_up())
            .map(|v| v.name.clone())
            .collect();
        let self_leader = views
            .iter()
            .filter(|v| v.role == role::LEADER)
            .max_by_key(|v| v.term)
            .map(|v| (v.name.clone(), v.term));
        let term = views.iter().filter(|v| v.is_up()).map(|v| v.term).max();
        let leader = match self_leader {
            // A deposed leader that has not heard of the new term yet still says it leads;
            // the others' higher term wins.
            Some((name, t)) if Some(t) == term => Some(name),
            _ => most_named_leader(views),
        };
        let height = views.iter().map(|v| v.height).max().filter(|_| total > 0);
        let needed = total / 2 + 1;
        let quorum = if total == 0 || up < needed {
            quorum::LOST
        } else if up < total {
            quorum::DEGRADED
        } else {
            quorum::HEALTHY
        };
        Self {
            leader,
            term,
            height,
            up,
            total,
            down,
            quorum,
        }
    }

    /// "2 of 5 orderers down (orderer4, orderer5); quorum needs 3", or "all 5 orderers up".
    pub fn describe(&self) -> String {
        if self.down.is_empty() {
            return format!("all {} orderers up", self.total);
        }
        format!(
            "{} of {} orderers down ({}); quorum needs {}",
            self.down.len(),
            self.total,
            self.down.join(", "),
            self.needed()
        )
    }

    /// The `Ready`, `QuorumAvailable` and `Degraded` conditions of a channel or network.
    pub fn conditions(&self) -> Vec<ConditionState> {
        let described = self.describe();
        let quorum_available = match (self.quorum, &self.leader) {
            (quorum::LOST, _) => ConditionState::new(
                QUORUM_AVAILABLE,
                false,
                "QuorumLost",
                format!("{described}: no leader can be elected and nothing is ordered"),
            ),
            (_, None) => ConditionState::new(
                QUORUM_AVAILABLE,
                false,
                "NoLeader",
                format!("{described}; electing a leader"),
            ),
            (_, Some(leader)) => ConditionState::new(
                QUORUM_AVAILABLE,
                true,
                "LeaderElected",
                format!("{leader} leads; {described}"),
            ),
        };
        let ready = quorum_available.status && self.quorum == quorum::HEALTHY;
        vec![
            ConditionState::new(
                READY,
                ready,
                if ready {
                    "AllOrderersUp"
                } else if quorum_available.status {
                    "OrderersDown"
                } else {
                    quorum_available.reason
                },
                described.clone(),
            ),
            quorum_available,
            ConditionState::new(
                DEGRADED,
                self.quorum == quorum::DEGRADED,
                if self.quorum == quorum::DEGRADED {
                    "OrderersDown"
                } else if self.quorum == quorum::LOST {
                    "QuorumLost"
                } else {
                    "AllOrderersUp"
                },
                described,
            ),
        ]
    }
}

fn most_named_leader(views: &[ConsenterView]) -> Option<String> {
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for leader in views
        .iter()
        .filter(|v| v.is_up())
        .filter_map(|v| v.leader.as_deref())
    {
        match counts.iter_mut().find(|(name, _)| *name == leader) {
            Some((_, n)) => *n += 1,
            None => counts.push((leader, 1)),
        }
    }
    counts
        .into_iter()
        .max_by_key(|(_, n)| *n)
        .map(|(name, _)| name.to_owned())
}

/// A condition before it is stamped with a time: type, status, reason, message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConditionState {
    pub type_: &'static str,
    pub status: bool,
    pub reason: &'static str,
    pub message: String,
}

impl ConditionState {
    pub fn new(type_: &'static str, status: bool, reason: &'static str, message: String) -> Self {
        Self {
            type_,
            status,
            reason,
            message,
        }
    }
}

/// Sets the conditions on `conditions`, keeping each one's `lastTransitionTime` while its status
/// stays the same (so the time says when it last changed, as Kubernetes' convention asks).
pub fn set_conditions(
    conditions: &mut Vec<Condition>,
    states: Vec<ConditionState>,
    now: Time,
    generation: Option<i64>,
) {
    for state in states {
        let status = if state.status { "True" } else { "False" };
        let since = conditions
            .iter()
            .find(|c| c.type_ == state.type_ && c.status == status)
            .map(|c| c.last_transition_time.clone())
            .unwrap_or_else(|| now.clone());
        conditions.retain(|c| c.type_ != state.type_);
        conditions.push(Condition {
            type_: state.type_.to_owned(),
            status: status.to_owned(),
            reason: state.reason.to_owned(),
            message: state.message,
            last_transition_time: since,
            observed_generation: generation,
        });
    }
    conditions.sort_by(|a, b| a.type_.cmp(&b.type_));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(name: &str, role: &str, leader: Option<&str>, term: u64) -> ConsenterView {
        ConsenterView {
            name: name.into(),
            role: role.into(),
            leader: leader.map(Into::into),
            term,
            height: 3,
            halt_error: String::new(),
        }
    }

    fn five(down: &[&str]) -> Vec<ConsenterView> {
        (1..=5)
            .map(|k| format!("orderer{k}"))
            .map(|name| {
                if down.contains(&name.as_str()) {
                    ConsenterView::unavailable(&name)
                } else if name == "orderer3" {
                    view(&name, role::LEADER, Some("orderer3"), 4)
                } else {
                    view(&name, role::FOLLOWER, Some("orderer3"), 4)
                }
            })
            .collect()
    }

    #[test]
    fn all_up_is_healthy_and_ready() {
        let health = GroupHealth::of(&five(&[]));
        assert_eq!(health.quorum, quorum::HEALTHY);
        assert_eq!(health.leader.as_deref(), Some("orderer3"));
        assert_eq!(health.term, Some(4));
        let conditions = health.conditions();
        assert!(conditions.iter().all(|c| c.status != (c.type_ == DEGRADED)));
    }

    #[test]
    fn two_down_is_degraded_and_names_them() {
        let health = GroupHealth::of(&five(&["orderer4", "orderer5"]));
        assert_eq!(health.quorum, quorum::DEGRADED);
        assert_eq!(
            health.describe(),
            "2 of 5 orderers down (orderer4, orderer5); quorum needs 3"
        );
        let conditions = health.conditions();
        let ready = conditions.iter().find(|c| c.type_ == READY).unwrap();
        assert!(!ready.status);
        let degraded = conditions.iter().find(|c| c.type_ == DEGRADED).unwrap();
        assert!(degraded.status);
    }

    #[test]
    fn three_down_loses_quorum() {
        let mut views = five(&["orderer1", "orderer2", "orderer4"]);
        // The survivors no longer know a leader.
        for v in &mut views {
            v.leader = None;
            if v.role == role::LEADER {
                v.role = role::CANDIDATE.into();
            }
        }
        let health = GroupHealth::of(&views);
        assert_eq!(health.quorum, quorum::LOST);
        assert_eq!(health.leader, None);
        let q = health
            .conditions()
            .into_iter()
            .find(|c| c.type_ == QUORUM_AVAILABLE)
            .unwrap();
        assert!(!q.status);
        assert_eq!(q.reason, "QuorumLost");
        assert!(
            q.message.contains("orderer1, orderer2, orderer4"),
            "{}",
            q.message
        );
    }

    #[test]
    fn a_deposed_leader_does_not_outvote_the_new_term() {
        let mut views = five(&[]);
        views[0] = view("orderer1", role::LEADER, Some("orderer1"), 3);
        let health = GroupHealth::of(&views);
        assert_eq!(health.leader.as_deref(), Some("orderer3"));
    }

    #[test]
    fn halted_counts_as_down() {
        let mut views = five(&[]);
        views[1].role = role::HALTED.into();
        let health = GroupHealth::of(&views);
        assert_eq!(health.down, vec!["orderer2".to_string()]);
        assert_eq!(health.quorum, quorum::DEGRADED);
    }

    #[test]
    fn transition_time_kept_while_status_holds() {
        let t0 = Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH);
        let t1 = Time(k8s_openapi::jiff::Timestamp::from_second(100).unwrap());
        let mut conditions = Vec::new();
        let state = |ok| vec![ConditionState::new(READY, ok, "R", "m".into())];
        set_conditions(&mut conditions, state(true), t0.clone(), Some(1));
        set_conditions(&mut conditions, state(true), t1.clone(), Some(2));
        assert_eq!(conditions[0].last_transition_time, t0);
        assert_eq!(conditions[0].observed_generation, Some(2));
        set_conditions(&mut conditions, state(false), t1.clone(), Some(2));
        assert_eq!(conditions[0].last_transition_time, t1);
        assert_eq!(conditions.len(), 1);
    }
}
