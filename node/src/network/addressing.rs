//! Where a generated network's nodes listen and by which names the others reach them: on one
//! machine, 127.0.0.1 and free ports; on Kubernetes, 0.0.0.0 and fixed ports, reached by the
//! stable DNS name of the node's StatefulSet pod behind its headless Service.

use super::ports::free_ports;

/// The gRPC port of an orderer on Kubernetes (Fabric's).
pub const ORDERER_PORT: u16 = 7050;
/// The gRPC port of a peer on Kubernetes (Fabric's).
pub const PEER_PORT: u16 = 7051;
/// The operations endpoint's port on Kubernetes (Fabric's).
pub const OPERATIONS_PORT: u16 = 9443;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Addressing {
    /// 127.0.0.1 and free ports: `raftnet up`, `raftnet bootstrap`, the tests.
    #[default]
    Local,
    /// Kubernetes: node `N` runs as the single pod `N-0` of StatefulSet `N`, governed by the
    /// headless Service `N`, in `namespace`.
    ClusterDns {
        namespace: String,
        /// The cluster's DNS domain (`cluster.local` unless the cluster says otherwise).
        cluster_domain: String,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeKind {
    Orderer,
    Peer,
}

/// One node's addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeAddress {
    /// What the node binds for gRPC.
    pub listen: String,
    /// What the node binds for its operations endpoint.
    pub operations: String,
    /// The host others dial (consenter and peer endpoints).
    pub host: String,
    pub port: u16,
    /// Every name its TLS certificate must carry.
    pub tls_hosts: Vec<String>,
}

impl NodeAddress {
    /// `host:port`, as clients and other nodes dial it.
    pub fn endpoint(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

pub use raftnet_crds::names::kube_name;

impl Addressing {
    pub fn cluster(namespace: &str) -> Self {
        Self::ClusterDns {
            namespace: namespace.to_string(),
            cluster_domain: "cluster.local".into(),
        }
    }

    /// Addresses for `nodes`, in order. Local ports are drawn in one call, so that none is
    /// handed out twice.
    pub fn assign(&self, nodes: &[(String, NodeKind)]) -> anyhow::Result<Vec<NodeAddress>> {
        match self {
            Addressing::Local => {
                let ports = free_ports(nodes.len() * 2)?;
                let (grpc, ops) = ports.split_at(nodes.len());
                Ok(nodes
                    .iter()
                    .zip(grpc.iter().zip(ops))
                    .map(|((name, _), (&port, &ops))| NodeAddress {
                        listen: format!("127.0.0.1:{port}"),
                        operations: format!("127.0.0.1:{ops}"),
                        host: "127.0.0.1".into(),
                        port,
                        tls_hosts: vec!["localhost".into(), "127.0.0.1".into(), name.clone()],
                    })
                    .collect())
            }
            Addressing::ClusterDns {
                namespace,
                cluster_domain,
            } => {
                check_kube_names(nodes)?;
                Ok(nodes
                    .iter()
                    .map(|(name, kind)| {
                        let port = match kind {
                            NodeKind::Orderer => ORDERER_PORT,
                            NodeKind::Peer => PEER_PORT,
                        };
                        let service = kube_name(name);
                        let pod = format!("{service}-0.{service}");
                        // Short, namespaced, .svc and fully qualified names of the pod and of its
                        // Service, and the node's own name: only names the node is reached by.
                        // Not localhost: any process could serve there (probes are plain HTTP
                        // on the operations port and need no certificate).
                        let mut tls_hosts = Vec::new();
                        for base in [&pod, &service] {
                            tls_hosts.push(base.clone());
                            tls_hosts.push(format!("{base}.{namespace}"));
                            tls_hosts.push(format!("{base}.{namespace}.svc"));
                            tls_hosts.push(format!("{base}.{namespace}.svc.{cluster_domain}"));
                        }
                        if !tls_hosts.contains(name) {
                            tls_hosts.push(name.clone());
                        }
                        NodeAddress {
                            listen: format!("0.0.0.0:{port}"),
                            operations: format!("0.0.0.0:{OPERATIONS_PORT}"),
                            host: format!("{pod}.{namespace}.svc.{cluster_domain}"),
                            port,
                            tls_hosts,
                        }
                    })
                    .collect())
            }
        }
    }
}

/// The longest StatefulSet name Kubernetes takes in practice (its pods get a
/// `controller-revision-hash` label of the name plus 11 characters, within 63).
const MAX_KUBE_NAME: usize = 52;

/// Every node must have a Kubernetes name of its own, short enough and a DNS label.
fn check_kube_names(nodes: &[(String, NodeKind)]) -> anyhow::Result<()> {
    let mut seen = std::collections::HashMap::new();
    for (name, _) in nodes {
        let k = kube_name(name);
        anyhow::ensure!(
            k.len() <= MAX_KUBE_NAME,
            "node {name}: its Kubernetes name {k} is longer than {MAX_KUBE_NAME} characters; use a shorter organisation MSP id"
        );
        anyhow::ensure!(
            k.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !k.starts_with('-')
                && !k.ends_with('-'),
            "node {name}: {k} is not a DNS label (lowercase letters, digits and '-', not at either end); rename its organisation"
        );
        if let Some(other) = seen.insert(k.clone(), name) {
            anyhow::bail!(
                "nodes {other} and {name} would both be {k} on Kubernetes; give their organisations MSP ids that differ in more than '.' and '-'"
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_nodes_get_distinct_loopback_ports() {
        let nodes = [
            ("orderer1".to_string(), NodeKind::Orderer),
            ("peer0.org1".to_string(), NodeKind::Peer),
        ];
        let a = Addressing::Local.assign(&nodes).unwrap();
        let mut ports: Vec<String> = a
            .iter()
            .flat_map(|n| [n.listen.clone(), n.operations.clone()])
            .collect();
        assert!(ports.iter().all(|p| p.starts_with("127.0.0.1:")));
        ports.sort();
        ports.dedup();
        assert_eq!(ports.len(), 4);
        assert_eq!(a[0].endpoint(), a[0].listen);
    }

    #[test]
    fn cluster_names_that_collide_or_are_too_long_are_refused() {
        let cluster = Addressing::cluster("ledger");
        let clash = [
            ("peer0.org1-a".to_string(), NodeKind::Peer),
            ("peer0.org1.a".to_string(), NodeKind::Peer),
        ];
        let err = cluster.assign(&clash).unwrap_err().to_string();
        assert!(err.contains("would both be peer0-org1-a"), "{err}");
        let long = [(format!("peer0.{}", "o".repeat(60)), NodeKind::Peer)];
        let err = cluster.assign(&long).unwrap_err().to_string();
        assert!(err.contains("longer than 52"), "{err}");
        // Local addressing has no such limits.
        assert!(Addressing::Local.assign(&clash).is_ok());
    }

    #[test]
    fn cluster_nodes_are_reached_by_pod_dns_names() {
        let nodes = [
            ("orderer1".to_string(), NodeKind::Orderer),
            ("peer0.org1".to_string(), NodeKind::Peer),
        ];
        let a = Addressing::cluster("ledger").assign(&nodes).unwrap();
        assert_eq!(a[0].listen, "0.0.0.0:7050");
        assert_eq!(a[0].operations, "0.0.0.0:9443");
        assert_eq!(
            a[0].endpoint(),
            "orderer1-0.orderer1.ledger.svc.cluster.local:7050"
        );
        assert_eq!(
            a[1].endpoint(),
            "peer0-org1-0.peer0-org1.ledger.svc.cluster.local:7051"
        );
        for name in [
            "orderer1-0.orderer1",
            "orderer1-0.orderer1.ledger",
            "orderer1-0.orderer1.ledger.svc.cluster.local",
            "orderer1",
            "orderer1.ledger.svc",
        ] {
            assert!(a[0].tls_hosts.iter().any(|h| h == name), "{name} missing");
        }
        for node in &a {
            assert!(
                !node
                    .tls_hosts
                    .iter()
                    .any(|h| h == "localhost" || h == "127.0.0.1"),
                "a cluster node's certificate names loopback: {:?}",
                node.tls_hosts
            );
        }
        assert!(a[1].tls_hosts.iter().any(|h| h == "peer0.org1"));
    }
}
