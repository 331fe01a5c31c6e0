//! The names a pod resolves through kube-dns, as a dnsmasq hosts file: the local e2e cluster
//! (`e2e/cluster/local.sh`) has no CoreDNS, so `cluster-dns` writes this file from the API.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Endpoints, Pod, Service};
use kube::ResourceExt;

/// The hosts file for the current objects: one `IP NAME` line per record, sorted, so the same
/// cluster state always gives the same bytes and unchanged states can be recognized.
pub fn hosts_file(
    pods: &[Arc<Pod>],
    services: &[Arc<Service>],
    endpoints: &[Arc<Endpoints>],
    domain: &str,
) -> String {
    let mut records = BTreeSet::new(); // (name, ip)

    for pod in pods {
        let ns = pod.namespace().unwrap_or_default();
        let (Some(spec), Some(status)) = (&pod.spec, &pod.status) else {
            continue;
        };
        if matches!(status.phase.as_deref(), Some("Succeeded" | "Failed")) {
            continue; // its IP may already belong to another pod
        }
        if let (Some(host), Some(sub), Some(ip)) = (&spec.hostname, &spec.subdomain, &status.pod_ip)
        {
            records.insert((format!("{host}.{sub}.{ns}.svc.{domain}"), ip.clone()));
        }
    }

    let endpoints: HashMap<(String, String), &Endpoints> = endpoints
        .iter()
        .map(|ep| ((ep.namespace().unwrap_or_default(), ep.name_any()), &**ep))
        .collect();
    for svc in services {
        let (ns, name) = (svc.namespace().unwrap_or_default(), svc.name_any());
        let Some(spec) = &svc.spec else { continue };
        let fqdn = format!("{name}.{ns}.svc.{domain}");
        if spec.type_.as_deref() == Some("ExternalName") {
            continue; // a CNAME, which a hosts file cannot express
        }
        match spec.cluster_ip.as_deref() {
            Some("None") => {
                let Some(ep) = endpoints.get(&(ns, name)) else {
                    continue;
                };
                let with_not_ready = spec.publish_not_ready_addresses == Some(true);
                for subset in ep.subsets.iter().flatten() {
                    let not_ready = subset.not_ready_addresses.iter().flatten();
                    let addresses = subset
                        .addresses
                        .iter()
                        .flatten()
                        .chain(not_ready.filter(|_| with_not_ready));
                    for addr in addresses {
                        records.insert((fqdn.clone(), addr.ip.clone()));
                        if let Some(host) = &addr.hostname {
                            records.insert((format!("{host}.{fqdn}"), addr.ip.clone()));
                        }
                    }
                }
            }
            Some(ip) if !ip.is_empty() => {
                records.insert((fqdn, ip.to_string()));
            }
            _ => {} // not allocated yet
        }
    }

    let mut out =
        String::from("# Written by cluster-dns from the cluster's objects; do not edit.\n");
    for (name, ip) in records {
        out.push_str(&format!("{ip} {name}\n"));
    }
    out
}
