//! The Kubernetes objects a node runs as, built by pure functions (tested without a cluster):
//! its config, its headless Service, its StatefulSet, and a network's disruption budget.

pub mod budget;
pub mod layout;
pub mod node_config;
pub mod workload;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

/// Whether a node is an orderer or a peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NodeKind {
    Orderer,
    Peer,
}

impl NodeKind {
    /// `orderer` or `peer`: the `raftnet-node` subcommand and the component label.
    pub fn as_str(self) -> &'static str {
        match self {
            NodeKind::Orderer => "orderer",
            NodeKind::Peer => "peer",
        }
    }
}

/// What every object of a node is made from.
#[derive(Clone, Debug)]
pub struct NodeObjects {
    pub kind: NodeKind,
    /// The node's resource name, which is also its name in Raft and in status.
    pub name: String,
    pub namespace: String,
    pub network: String,
    pub msp_id: String,
    /// The resource that owns the objects (the `Orderer` or `Peer`).
    pub owner: OwnerReference,
}
