//! A node's headless Service and StatefulSet.
//!
//! One pod per node, with a stable name and volume: `orderer1-0`, reached as
//! `orderer1-0.orderer1.NAMESPACE.svc.cluster.local`. The Service publishes the pod before it
//! is ready, because Raft peers must reach each other before any of them can be.
//! Only fields Kubernetes 1.20 knows are set: server-side apply refuses the others there.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetSpec};
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMapVolumeSource, Container, ContainerPort, EnvVar, HTTPGetAction,
    PersistentVolumeClaim, PersistentVolumeClaimSpec, PodSecurityContext, PodSpec, PodTemplateSpec,
    Probe, ResourceRequirements, SeccompProfile, SecretVolumeSource, SecurityContext, Service,
    ServicePort, ServiceSpec, Volume, VolumeMount, VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use raftnet_node::network::addressing::{OPERATIONS_PORT, ORDERER_PORT, PEER_PORT};

use super::layout::{config_path, CONFIG_DIR, CRYPTO_DIR, DATA_DIR, ROOT};
use super::node_config::config_map_name;
use super::{NodeKind, NodeObjects};
use crate::labels::{node_labels, NODE};
use crate::pki::node_secret_name;

/// The unprivileged user the node runs as (the image's `nonroot`).
pub const NODE_UID: i64 = 65532;

/// What the pod runs and how much it asks for.
#[derive(Clone, Debug)]
pub struct PodSettings {
    pub image: String,
    pub image_pull_policy: String,
    /// Size of the data volume: `1Gi`.
    pub storage: String,
    pub storage_class: Option<String>,
}

fn grpc_port(kind: NodeKind) -> i32 {
    i32::from(match kind {
        NodeKind::Orderer => ORDERER_PORT,
        NodeKind::Peer => PEER_PORT,
    })
}

fn metadata(node: &NodeObjects, name: String) -> ObjectMeta {
    ObjectMeta {
        name: Some(name),
        namespace: Some(node.namespace.clone()),
        labels: Some(node_labels(&node.network, node.kind.as_str(), &node.name)),
        owner_references: Some(vec![node.owner.clone()]),
        ..ObjectMeta::default()
    }
}

fn selector(node: &NodeObjects) -> BTreeMap<String, String> {
    BTreeMap::from([(NODE.to_owned(), node.name.clone())])
}

/// The headless Service that gives the node's pod its DNS name.
pub fn service(node: &NodeObjects) -> Service {
    Service {
        metadata: metadata(node, node.name.clone()),
        spec: Some(ServiceSpec {
            cluster_ip: Some("None".into()),
            publish_not_ready_addresses: Some(true),
            selector: Some(selector(node)),
            ports: Some(vec![
                ServicePort {
                    name: Some("grpc".into()),
                    port: grpc_port(node.kind),
                    // Server-side apply on 1.20 needs the list key spelled out.
                    protocol: Some("TCP".into()),
                    target_port: Some(IntOrString::String("grpc".into())),
                    ..ServicePort::default()
                },
                ServicePort {
                    name: Some("operations".into()),
                    port: i32::from(OPERATIONS_PORT),
                    protocol: Some("TCP".into()),
                    target_port: Some(IntOrString::String("operations".into())),
                    ..ServicePort::default()
                },
            ]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

fn http_probe(path: &str, period: i32, failures: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.into()),
            port: IntOrString::String("operations".into()),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(period),
        failure_threshold: Some(failures),
        timeout_seconds: Some(2),
        ..Probe::default()
    }
}

fn mount(name: &str, dir: &str, read_only: bool) -> VolumeMount {
    VolumeMount {
        name: name.into(),
        mount_path: format!("{ROOT}/{dir}"),
        read_only: Some(read_only),
        ..VolumeMount::default()
    }
}

/// The node's StatefulSet: one replica, its config and Secret mounted read-only, its data on
/// a volume of its own, probed on the operations endpoint.
pub fn stateful_set(node: &NodeObjects, pod: &PodSettings) -> StatefulSet {
    let labels = node_labels(&node.network, node.kind.as_str(), &node.name);
    let quantity = |s: &str| Quantity(s.to_owned());
    let container = Container {
        name: "node".into(),
        image: Some(pod.image.clone()),
        image_pull_policy: Some(pod.image_pull_policy.clone()),
        command: Some(vec!["raftnet-node".into()]),
        args: Some(vec![
            node.kind.as_str().into(),
            "--config".into(),
            config_path(),
        ]),
        env: Some(vec![EnvVar {
            name: "RUST_LOG".into(),
            value: Some("info".into()),
            ..EnvVar::default()
        }]),
        ports: Some(vec![
            ContainerPort {
                name: Some("grpc".into()),
                container_port: grpc_port(node.kind),
                protocol: Some("TCP".into()),
                ..ContainerPort::default()
            },
            ContainerPort {
                name: Some("operations".into()),
                container_port: i32::from(OPERATIONS_PORT),
                protocol: Some("TCP".into()),
                ..ContainerPort::default()
            },
        ]),
        // A node replays its Raft log before it serves: give it a minute before liveness counts.
        startup_probe: Some(http_probe("/healthz", 2, 30)),
        liveness_probe: Some(http_probe("/healthz", 10, 3)),
        readiness_probe: Some(http_probe("/readyz", 2, 1)),
        resources: Some(ResourceRequirements {
            requests: Some(BTreeMap::from([
                ("cpu".to_owned(), quantity("100m")),
                ("memory".to_owned(), quantity("128Mi")),
            ])),
            ..ResourceRequirements::default()
        }),
        security_context: Some(SecurityContext {
            run_as_non_root: Some(true),
            read_only_root_filesystem: Some(true),
            allow_privilege_escalation: Some(false),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".into()]),
                ..Capabilities::default()
            }),
            ..SecurityContext::default()
        }),
        volume_mounts: Some(vec![
            mount("config", CONFIG_DIR, true),
            mount("crypto", CRYPTO_DIR, true),
            mount("data", DATA_DIR, false),
        ]),
        ..Container::default()
    };
    let volume_claim = PersistentVolumeClaim {
        metadata: ObjectMeta {
            name: Some("data".into()),
            labels: Some(labels.clone()),
            ..ObjectMeta::default()
        },
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".into()]),
            storage_class_name: pod.storage_class.clone(),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([(
                    "storage".to_owned(),
                    quantity(&pod.storage),
                )])),
                ..VolumeResourceRequirements::default()
            }),
            ..PersistentVolumeClaimSpec::default()
        }),
        ..PersistentVolumeClaim::default()
    };
    StatefulSet {
        metadata: metadata(node, node.name.clone()),
        spec: StatefulSetSpec {
            replicas: Some(1),
            service_name: Some(node.name.clone()),
            pod_management_policy: Some("Parallel".into()),
            selector: LabelSelector {
                match_labels: Some(selector(node)),
                ..LabelSelector::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    containers: vec![container],
                    // A planned stop hands Raft leadership over, then drains.
                    termination_grace_period_seconds: Some(30),
                    automount_service_account_token: Some(false),
                    security_context: Some(PodSecurityContext {
                        run_as_non_root: Some(true),
                        run_as_user: Some(NODE_UID),
                        run_as_group: Some(NODE_UID),
                        fs_group: Some(NODE_UID),
                        // The container runtime's default syscall filter (the "restricted"
                        // Pod Security Standard asks for it; a field since Kubernetes 1.19).
                        seccomp_profile: Some(SeccompProfile {
                            type_: "RuntimeDefault".into(),
                            ..SeccompProfile::default()
                        }),
                        ..PodSecurityContext::default()
                    }),
                    volumes: Some(vec![
                        Volume {
                            name: "config".into(),
                            config_map: Some(ConfigMapVolumeSource {
                                name: config_map_name(&node.name),
                                ..ConfigMapVolumeSource::default()
                            }),
                            ..Volume::default()
                        },
                        Volume {
                            name: "crypto".into(),
                            secret: Some(SecretVolumeSource {
                                secret_name: Some(node_secret_name(&node.name)),
                                default_mode: Some(0o440),
                                ..SecretVolumeSource::default()
                            }),
                            ..Volume::default()
                        },
                    ]),
                    ..PodSpec::default()
                }),
            },
            volume_claim_templates: Some(vec![volume_claim]),
            ..StatefulSetSpec::default()
        },
        ..StatefulSet::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

    fn orderer() -> NodeObjects {
        NodeObjects {
            kind: NodeKind::Orderer,
            name: "orderer1".into(),
            namespace: "lab".into(),
            network: "first-network".into(),
            msp_id: "OrdererMSP".into(),
            owner: OwnerReference {
                api_version: "raftnet.dev/v1alpha1".into(),
                kind: "Orderer".into(),
                name: "orderer1".into(),
                uid: "u".into(),
                controller: Some(true),
                ..OwnerReference::default()
            },
        }
    }

    fn settings() -> PodSettings {
        PodSettings {
            image: "raftnet/node:0.1.0".into(),
            image_pull_policy: "IfNotPresent".into(),
            storage: "2Gi".into(),
            storage_class: None,
        }
    }

    #[test]
    fn service_is_headless_and_publishes_unready_pods() {
        let spec = service(&orderer()).spec.unwrap();
        assert_eq!(spec.cluster_ip.as_deref(), Some("None"));
        assert_eq!(spec.publish_not_ready_addresses, Some(true));
        let ports: Vec<i32> = spec.ports.unwrap().iter().map(|p| p.port).collect();
        assert_eq!(ports, vec![7050, 9443]);
    }

    #[test]
    fn stateful_set_runs_the_orderer_unprivileged_and_probed() {
        let set = stateful_set(&orderer(), &settings());
        let spec = set.spec;
        assert_eq!(spec.replicas, Some(1));
        assert_eq!(spec.service_name.as_deref(), Some("orderer1"));
        let pod = spec.template.spec.unwrap();
        let c = &pod.containers[0];
        assert_eq!(
            c.args.as_deref().unwrap(),
            ["orderer", "--config", "/var/lib/raftnet/config/node.yaml"]
        );
        let sc = c.security_context.as_ref().unwrap();
        assert_eq!(sc.read_only_root_filesystem, Some(true));
        assert_eq!(sc.run_as_non_root, Some(true));
        let seccomp = pod
            .security_context
            .as_ref()
            .unwrap()
            .seccomp_profile
            .as_ref();
        assert_eq!(seccomp.unwrap().type_, "RuntimeDefault");
        let path = |p: &Option<Probe>| p.as_ref().unwrap().http_get.as_ref().unwrap().path.clone();
        assert_eq!(path(&c.liveness_probe).as_deref(), Some("/healthz"));
        assert_eq!(path(&c.readiness_probe).as_deref(), Some("/readyz"));
        assert!(c.startup_probe.is_some());
        let crypto = c
            .volume_mounts
            .as_ref()
            .unwrap()
            .iter()
            .find(|m| m.name == "crypto")
            .unwrap();
        assert_eq!(crypto.read_only, Some(true));
        let claim = &spec.volume_claim_templates.unwrap()[0];
        let storage = claim.spec.as_ref().unwrap().resources.as_ref().unwrap();
        assert_eq!(storage.requests.as_ref().unwrap()["storage"].0, "2Gi");
        // Fields Kubernetes 1.20 does not know stay unset (server-side apply refuses them).
        assert!(spec.ordinals.is_none() && spec.min_ready_seconds.is_none());
        assert!(spec.persistent_volume_claim_retention_policy.is_none());
    }
}
