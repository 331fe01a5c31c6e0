//! Labels, annotations and field managers the operator puts on what it makes.

use std::collections::BTreeMap;

/// Field manager of the objects the operator applies (server-side apply).
pub const MANAGER: &str = "raftnet-operator";

/// Field manager of status: Kubernetes 1.20 does not tell a status apply from an object apply
/// in `managedFields`, so one manager for both would take the spec's fields away.
pub const STATUS_MANAGER: &str = "raftnet-operator-status";

/// The network a node or object belongs to.
pub const NETWORK: &str = "raftnet.dev/network";
/// `orderer` or `peer`.
pub const COMPONENT: &str = "raftnet.dev/component";
/// The node (resource name) a pod runs.
pub const NODE: &str = "raftnet.dev/node";
pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";

/// Loopback addressing only: the gRPC and operations ports picked for a node, `GRPC,OPS`.
pub const LOOPBACK_PORTS: &str = "raftnet.dev/loopback-ports";

/// The labels of a node's objects and pod.
pub fn node_labels(network: &str, component: &str, node: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (NETWORK.to_owned(), network.to_owned()),
        (COMPONENT.to_owned(), component.to_owned()),
        (NODE.to_owned(), node.to_owned()),
        (MANAGED_BY.to_owned(), MANAGER.to_owned()),
    ])
}

/// The labels of a network's own objects (CA and user Secrets, budgets).
pub fn network_labels(network: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (NETWORK.to_owned(), network.to_owned()),
        (MANAGED_BY.to_owned(), MANAGER.to_owned()),
    ])
}
