//! A network's PodDisruptionBudget: a voluntary disruption (a node drain) takes down one
//! orderer at a time. One budget per network over all its orderers (a pod in two budgets
//! cannot be evicted at all).
//! policy/v1 where the server has it; Kubernetes 1.20 has only policy/v1beta1, which
//! k8s-openapi no longer types, so the budget is built as JSON for either version.

use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
use serde_json::json;

use crate::labels::{network_labels, COMPONENT};

/// The budget's name: `first-network-orderers`.
pub fn budget_name(network: &str) -> String {
    format!("{network}-orderers")
}

/// Orderers a voluntary disruption may take down at a time: one. A drain then waits for the
/// evicted orderer to be Ready again before taking the next, so a Raft group of 3 or more keeps
/// its quorum, and a group of 5 or more can still lose a member to a crash mid-drain (a budget
/// of "a majority available" would let a drain take 2 of 5 at once and leave no margin, as the
/// Kubernetes ZooKeeper tutorial's `maxUnavailable: 1` avoids). Groups of 1 or 2 have no
/// margin at all; blocking their drains forever would be worse than the brief outage.
pub const MAX_UNAVAILABLE: u32 = 1;

/// The API resource of PodDisruptionBudget in `version` (`v1` or `v1beta1`).
pub fn api_resource(version: &str) -> ApiResource {
    ApiResource::from_gvk(&GroupVersionKind::gvk(
        "policy",
        version,
        "PodDisruptionBudget",
    ))
}

/// The budget of a network's orderers, owned by the network.
pub fn budget(
    resource: &ApiResource,
    network: &str,
    namespace: &str,
    owner: &k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference,
) -> DynamicObject {
    let mut selector = network_labels(network);
    selector.remove(crate::labels::MANAGED_BY);
    selector.insert(COMPONENT.to_owned(), "orderer".to_owned());
    let mut object = DynamicObject::new(&budget_name(network), resource).within(namespace);
    object.metadata.labels = Some(network_labels(network));
    object.metadata.owner_references = Some(vec![owner.clone()]);
    object.data = json!({
        "spec": {
            "maxUnavailable": MAX_UNAVAILABLE,
            "selector": { "matchLabels": selector },
        }
    });
    object
}
