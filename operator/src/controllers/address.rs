//! Where a node listens and how others reach it, per the operator's addressing setting.

use kube::api::{Patch, PatchParams};
use kube::{Api, Resource, ResourceExt};
use raftnet_node::network::addressing::{Addressing, NodeKind as AddressKind};
use raftnet_node::network::NodeAddress;
use serde::de::DeserializeOwned;

use crate::labels::LOOPBACK_PORTS;
use crate::objects::NodeKind;
use crate::settings::NodeAddressing;
use crate::{Context, Error, Result};

/// The addresses of a node. With loopback addressing the ports are picked once and kept on
/// the resource (annotation `raftnet.dev/loopback-ports`); `pick` says whether picking is
/// allowed (only the node's own controller picks; others wait for it).
pub async fn node_address<K>(
    ctx: &Context,
    node: &K,
    kind: NodeKind,
    pick: bool,
) -> Result<NodeAddress>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
{
    let name = node.name_any();
    let namespace = super::namespace(node)?;
    match &ctx.settings.addressing {
        NodeAddressing::ClusterDns { cluster_domain } => {
            let addressing = Addressing::ClusterDns {
                namespace,
                cluster_domain: cluster_domain.clone(),
            };
            let kind = match kind {
                NodeKind::Orderer => AddressKind::Orderer,
                NodeKind::Peer => AddressKind::Peer,
            };
            let mut addresses = addressing
                .assign(&[(name.clone(), kind)])
                .map_err(|e| Error::InvalidSpec(format!("{e:#}")))?;
            Ok(addresses.remove(0))
        }
        NodeAddressing::Loopback => {
            let ports = match node.annotations().get(LOOPBACK_PORTS) {
                Some(ports) => parse_ports(ports)?,
                None if pick => {
                    let ports = raftnet_node::network::ports::free_ports(2)
                        .map_err(|e| Error::Waiting(format!("no free port: {e:#}")))?;
                    let value = format!("{},{}", ports[0], ports[1]);
                    let api: Api<K> = Api::namespaced(ctx.client.clone(), &namespace);
                    let patch =
                        serde_json::json!({"metadata": {"annotations": {LOOPBACK_PORTS: value}}});
                    api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                        .await?;
                    (ports[0], ports[1])
                }
                None => {
                    return Err(Error::Waiting(format!("{name} has no ports yet")));
                }
            };
            Ok(loopback(&name, ports))
        }
    }
}

fn parse_ports(value: &str) -> Result<(u16, u16)> {
    let bad = || {
        Error::InvalidSpec(format!(
            "annotation {LOOPBACK_PORTS}={value:?}: expected GRPC,OPS ports"
        ))
    };
    let (grpc, ops) = value.split_once(',').ok_or_else(bad)?;
    Ok((
        grpc.trim().parse().map_err(|_| bad())?,
        ops.trim().parse().map_err(|_| bad())?,
    ))
}

fn loopback(name: &str, (grpc, ops): (u16, u16)) -> NodeAddress {
    NodeAddress {
        listen: format!("127.0.0.1:{grpc}"),
        operations: format!("127.0.0.1:{ops}"),
        host: "127.0.0.1".into(),
        port: grpc,
        tls_hosts: vec!["localhost".into(), "127.0.0.1".into(), name.to_owned()],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_round_trip() {
        assert_eq!(parse_ports("7050, 9443").unwrap(), (7050, 9443));
        assert!(parse_ports("7050").is_err());
        let a = loopback("orderer1", (7050, 9443));
        assert_eq!(a.endpoint(), "127.0.0.1:7050");
        assert_eq!(a.operations, "127.0.0.1:9443");
    }
}
