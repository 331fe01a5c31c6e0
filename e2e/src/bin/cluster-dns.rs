//! cluster-dns: the cluster DNS of the local e2e cluster (`e2e/cluster/local.sh`).
//!
//! That cluster has no CoreDNS (Debian packages none); dnsmasq answers for `cluster.local` from a
//! hosts file instead, and this program keeps the file in step with the API. It watches Pods,
//! Services and Endpoints in all namespaces and writes the names a pod resolves through kube-dns:
//!
//! - ClusterIP services: `NAME.NS.svc.DOMAIN` → the ClusterIP;
//! - headless services: `NAME.NS.svc.DOMAIN` → each address of their Endpoints (ready ones, and
//!   not-ready ones too when the Service publishes them), and `HOSTNAME.NAME.NS.svc.DOMAIN` for
//!   addresses with a hostname (StatefulSet pods: `web-0.web.default.svc.cluster.local`);
//! - pods with `spec.hostname` and `spec.subdomain`: `HOST.SUBDOMAIN.NS.svc.DOMAIN` → the pod IP.
//!
//! When the content changes it replaces the file atomically (write a temporary file, rename) and
//! sends dnsmasq SIGHUP, which makes dnsmasq re-read its `--addn-hosts` files.
//!
//! ```text
//! cluster-dns --hosts FILE --dnsmasq-pid FILE [--kubeconfig FILE] [--domain cluster.local]
//! ```
//!
//! Without `--kubeconfig` the usual inference applies (`KUBECONFIG`, `~/.kube/config`, in-cluster).

use std::collections::{BTreeSet, HashMap};
use std::fmt::Debug;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use anyhow::{bail, Context};
use futures::stream::{BoxStream, StreamExt};
use k8s_openapi::api::core::v1::{Endpoints, Pod, Service};
use k8s_openapi::NamespaceResourceScope;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::reflector::{self, store::Writer};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;

const USAGE: &str =
    "usage: cluster-dns --hosts FILE --dnsmasq-pid FILE [--kubeconfig FILE] [--domain DOMAIN]";

/// The command line. Parsed by hand: the crate has no argument parser and four flags need none.
struct Args {
    hosts: PathBuf,
    dnsmasq_pid: PathBuf,
    kubeconfig: Option<PathBuf>,
    domain: String,
}

fn parse_args() -> anyhow::Result<Args> {
    let (mut hosts, mut dnsmasq_pid, mut kubeconfig) = (None, None, None);
    let mut domain = "cluster.local".to_string();
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .with_context(|| format!("{flag} needs a value\n{USAGE}"))?;
        match flag.as_str() {
            "--hosts" => hosts = Some(PathBuf::from(value)),
            "--dnsmasq-pid" => dnsmasq_pid = Some(PathBuf::from(value)),
            "--kubeconfig" => kubeconfig = Some(PathBuf::from(value)),
            "--domain" => domain = value,
            _ => bail!("unknown argument {flag}\n{USAGE}"),
        }
    }
    Ok(Args {
        hosts: hosts.with_context(|| format!("--hosts is required\n{USAGE}"))?,
        dnsmasq_pid: dnsmasq_pid.with_context(|| format!("--dnsmasq-pid is required\n{USAGE}"))?,
        kubeconfig,
        domain,
    })
}

/// A watch of all objects of one kind, mirrored into `writer`'s store. Each item says whether the
/// event completed a (re)list, so the caller knows when the store holds a full picture.
fn watch<K>(client: &Client, writer: Writer<K>) -> BoxStream<'static, watcher::Result<bool>>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + Debug
        + Send
        + Sync
        + 'static,
{
    // The default list-then-watch: `streaming_lists()` is refused by the 1.20 API server.
    watcher(Api::<K>::all(client.clone()), watcher::Config::default())
        .default_backoff()
        .reflect(writer)
        .map(|event| event.map(|e| matches!(e, watcher::Event::InitDone)))
        .boxed()
}

/// The hosts file for the current objects: one `IP NAME` line per record, sorted, so the same
/// cluster state always gives the same bytes and unchanged states can be recognized.
fn hosts_file(
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

/// Replaces `path` with `content` in one step, so dnsmasq never reads a half-written file.
fn write_atomically(path: &Path, content: &str) -> anyhow::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    std::fs::write(&tmp, content)
        .with_context(|| format!("writing {}", Path::new(&tmp).display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming onto {}", path.display()))
}

/// Tells dnsmasq to re-read its hosts files. The pid is read afresh each time (dnsmasq may have
/// been restarted); `kill` does the signalling so the crate needs no libc dependency.
fn reload_dnsmasq(pid_file: &Path) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(pid_file)
        .with_context(|| format!("reading dnsmasq's pid from {}", pid_file.display()))?;
    let pid: u32 = text
        .trim()
        .parse()
        .with_context(|| format!("{} holds no pid: {text:?}", pid_file.display()))?;
    let status = Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .context("running kill")?;
    if !status.success() {
        bail!("kill -HUP {pid} failed ({status})");
    }
    Ok(())
}

async fn client(args: &Args) -> anyhow::Result<Client> {
    let config = match &args.kubeconfig {
        Some(path) => {
            let kubeconfig = Kubeconfig::read_from(path)?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?
        }
        None => kube::Config::infer().await?,
    };
    Ok(Client::try_from(config)?)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let client = client(&args).await?;

    let (pods, pods_writer) = reflector::store::<Pod>();
    let (services, services_writer) = reflector::store::<Service>();
    let (endpoints, endpoints_writer) = reflector::store::<Endpoints>();
    const KINDS: [&str; 3] = ["pods", "services", "endpoints"];
    let streams = [
        watch(&client, pods_writer),
        watch(&client, services_writer),
        watch(&client, endpoints_writer),
    ];
    let mut events = futures::stream::select_all(
        streams
            .into_iter()
            .enumerate()
            .map(|(i, s)| s.map(move |e| (i, e))),
    );

    // Until every kind has been listed once, a partial picture would drop live names.
    let mut listed = [false; 3];
    // Starting from the file on disk spares dnsmasq a reload when this program is restarted.
    let mut written = std::fs::read_to_string(&args.hosts).ok();
    eprintln!("cluster-dns: watching pods, services and endpoints");
    while let Some((i, event)) = events.next().await {
        match event {
            Ok(init_done) => listed[i] |= init_done,
            Err(e) => {
                // The watcher retries with backoff (e.g. while the API server starts).
                eprintln!("cluster-dns: watching {}: {e}", KINDS[i]);
                continue;
            }
        }
        if !listed.iter().all(|l| *l) {
            continue;
        }
        let content = hosts_file(
            &pods.state(),
            &services.state(),
            &endpoints.state(),
            &args.domain,
        );
        if written.as_deref() == Some(content.as_str()) {
            continue;
        }
        if let Err(e) = write_atomically(&args.hosts, &content) {
            eprintln!("cluster-dns: {e:#}");
            continue;
        }
        let records = content.lines().count() - 1; // minus the header line
        written = Some(content);
        match reload_dnsmasq(&args.dnsmasq_pid) {
            Ok(()) => eprintln!("cluster-dns: {records} records, dnsmasq reloaded"),
            Err(e) => eprintln!("cluster-dns: {records} records written; {e:#}"),
        }
    }
    bail!("the watch streams ended")
}
