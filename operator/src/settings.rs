//! Operator-wide settings: the node image and how nodes are addressed.

/// How nodes listen and are reached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeAddressing {
    /// In a cluster: each node listens on 0.0.0.0 and is reached by the DNS name of its
    /// StatefulSet pod behind its headless Service.
    ClusterDns { cluster_domain: String },
    /// For tests without a kubelet: each node listens on 127.0.0.1 on ports the operator picks
    /// once and records on the node's resource; the tests start the nodes themselves from the
    /// ConfigMaps and Secrets the operator wrote. Everything else is the production path.
    Loopback,
}

#[derive(Clone, Debug)]
pub struct Settings {
    /// The node image when a network names none.
    pub node_image: String,
    /// `Always`, `IfNotPresent` or `Never`.
    pub image_pull_policy: String,
    pub addressing: NodeAddressing,
    /// Storage of a node's data volume when the network names none.
    pub default_storage: String,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            node_image: format!("raftnet/node:{}", env!("CARGO_PKG_VERSION")),
            image_pull_policy: "IfNotPresent".into(),
            addressing: NodeAddressing::ClusterDns {
                cluster_domain: "cluster.local".into(),
            },
            default_storage: "1Gi".into(),
        }
    }
}
