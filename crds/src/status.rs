//! What status says, shared by all four resources: the condition types, the words of
//! `role` and `quorum`, and reading conditions.
//!
//! Conditions are Kubernetes' own `Condition` (type, status, reason, message,
//! lastTransitionTime, observedGeneration). The type names the condition, the reason is one
//! CamelCase word and the message is for people.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

/// Condition type: the resource does its job (an orderer orders, a peer commits, a network or
/// channel has every member up).
pub const READY: &str = "Ready";

/// Condition type: a majority of the Raft group is up, so a leader can be elected and
/// transactions ordered.
pub const QUORUM_AVAILABLE: &str = "QuorumAvailable";

/// Condition type: the resource works, but with members down.
pub const DEGRADED: &str = "Degraded";

/// Values of `OrdererStatus.role`, as the orderer's Raft node reports its state.
pub mod role {
    /// Leads the Raft group.
    pub const LEADER: &str = "Leader";
    /// Follows a leader.
    pub const FOLLOWER: &str = "Follower";
    /// Campaigns for leadership.
    pub const CANDIDATE: &str = "Candidate";
    /// Its chain stopped (a storage failure): it answers, but takes no part in Raft until
    /// restarted. The reason is in the `Ready` condition's message.
    pub const HALTED: &str = "Halted";
    /// Does not answer.
    pub const UNAVAILABLE: &str = "Unavailable";
}

/// Values of `quorum` in network and channel status.
pub mod quorum {
    /// Every orderer is up.
    pub const HEALTHY: &str = "Healthy";
    /// A majority is up, not all: ordering works, fewer failures are tolerated.
    pub const DEGRADED: &str = "Degraded";
    /// No majority: no leader can be elected and nothing is ordered.
    pub const LOST: &str = "Lost";
}

/// The condition of this type, if there is one.
pub fn find_condition<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|condition| condition.type_ == type_)
}

/// Whether the condition of this type is there and `True`.
pub fn is_true(conditions: &[Condition], type_: &str) -> bool {
    find_condition(conditions, type_).is_some_and(|condition| condition.status == "True")
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn condition(type_: &str, status: &str) -> Condition {
        Condition {
            type_: type_.to_owned(),
            status: status.to_owned(),
            reason: "Test".to_owned(),
            message: String::new(),
            last_transition_time: Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH),
            observed_generation: None,
        }
    }

    #[test]
    fn reads_conditions() {
        let conditions = [condition(READY, "True"), condition(DEGRADED, "False")];
        assert!(is_true(&conditions, READY));
        assert!(!is_true(&conditions, DEGRADED));
        assert!(!is_true(&conditions, QUORUM_AVAILABLE));
        assert_eq!(
            find_condition(&conditions, DEGRADED).map(|c| c.status.as_str()),
            Some("False")
        );
    }
}
