//! A network's PodDisruptionBudget: a voluntary disruption (a node drain) may never take down
//! more orderers than the Raft group tolerates. One budget per network over all its orderers
//! (a pod in two budgets cannot be evicted at all), sized for the whole group.
//! policy/v1 where the server has it; Kubernetes 1.20 has only policy/v1beta1, which
//! k8s-openapi no longer types, so the budget is built as JSON for either version.

use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
use serde_json::json;

use crate::labels::{network_labels, COMPONENT};

/// The budget's name: `first-network-orderers`.
pub fn budget_name(network: &str) -> String {
    format!("{network}-orderers")
}

/// How many of `orderers` must stay up: a majority.
pub fn min_available(orderers: u32) -> u32 {
    orderers / 2 + 1
}

/// The API resource of PodDisruptionBudget in `version` (`v1` or `v1beta1`).
pub fn api_resource(version: &str) -> ApiResource {
    ApiResource::from_gvk(&GroupVersionKind::gvk(
        "policy",
        version,
        "PodDisruptionBudget",
    ))
}

/// The budget of a network with `orderers` orderers, owned by the network.
pub fn budget(
    resource: &ApiResource,
    network: &str,
    namespace: &str,
    orderers: u32,
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
            "minAvailable": min_available(orderers),
            "selector": { "matchLabels": selector },
        }
    });
    object
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn majority_stays_up() {
        assert_eq!(min_available(1), 1);
        assert_eq!(min_available(3), 2);
        assert_eq!(min_available(5), 3);
        assert_eq!(min_available(9), 5);
    }
}
