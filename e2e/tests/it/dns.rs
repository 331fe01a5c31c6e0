//! The local cluster's DNS records (`cluster-dns`): the names a pod of the seed lab dials must
//! resolve as kube-dns would resolve them.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Endpoints, Pod, Service};
use raftnet_e2e::dns::hosts_file;
use serde_json::json;

fn pod(name: &str, phase: &str, ip: &str) -> Arc<Pod> {
    Arc::new(
        serde_json::from_value(json!({
            "metadata": {"name": format!("{name}-0"), "namespace": "lab"},
            "spec": {"hostname": format!("{name}-0"), "subdomain": name, "containers": []},
            "status": {"phase": phase, "podIP": ip}
        }))
        .unwrap(),
    )
}

fn service(name: &str, cluster_ip: &str, publish_not_ready: bool) -> Arc<Service> {
    Arc::new(
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "lab"},
            "spec": {"clusterIP": cluster_ip, "publishNotReadyAddresses": publish_not_ready}
        }))
        .unwrap(),
    )
}

fn not_ready_endpoint(name: &str, ip: &str) -> Arc<Endpoints> {
    Arc::new(
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "lab"},
            "subsets": [{"notReadyAddresses": [{"ip": ip, "hostname": format!("{name}-0")}]}]
        }))
        .unwrap(),
    )
}

#[test]
fn statefulset_pods_and_services_resolve_as_kube_dns_resolves_them() {
    let hosts = hosts_file(
        &[
            pod("orderer1", "Running", "10.244.0.7"),
            pod("gone", "Failed", "10.244.0.9"),
        ],
        &[
            service("orderer1", "None", true),
            service("hidden", "None", false),
            service("api", "10.96.0.10", false),
        ],
        &[
            not_ready_endpoint("orderer1", "10.244.0.7"),
            not_ready_endpoint("hidden", "10.244.0.8"),
        ],
        "cluster.local",
    );
    let lines: Vec<&str> = hosts.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(
        lines,
        [
            "10.96.0.10 api.lab.svc.cluster.local",
            // An orderer must be reachable by its peers before it is ready (Raft needs them).
            "10.244.0.7 orderer1-0.orderer1.lab.svc.cluster.local",
            "10.244.0.7 orderer1.lab.svc.cluster.local",
        ],
        "a failed pod's IP, and a not-ready address its Service does not publish, get no name"
    );
}
