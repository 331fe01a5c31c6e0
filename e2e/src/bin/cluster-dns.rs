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

use std::fmt::Debug;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};
use clap::Parser;
use futures::stream::{BoxStream, StreamExt};
use k8s_openapi::api::core::v1::{Endpoints, Pod, Service};
use k8s_openapi::NamespaceResourceScope;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::reflector::{self, store::Writer};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client, Resource};
use raftnet_e2e::dns::hosts_file;
use serde::de::DeserializeOwned;

/// The command line.
#[derive(Parser)]
#[command(
    about = "Keeps dnsmasq's hosts file in step with the cluster's Pods, Services and Endpoints"
)]
struct Args {
    /// The hosts file dnsmasq reads (`--addn-hosts`).
    #[arg(long, value_name = "FILE")]
    hosts: PathBuf,
    /// dnsmasq's pid file, for the SIGHUP that makes it re-read the hosts file.
    #[arg(long, value_name = "FILE")]
    dnsmasq_pid: PathBuf,
    /// The kubeconfig to watch with [default: the usual inference: KUBECONFIG, ~/.kube/config].
    #[arg(long, value_name = "FILE")]
    kubeconfig: Option<PathBuf>,
    /// The cluster's DNS domain.
    #[arg(long, default_value = "cluster.local")]
    domain: String,
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
    let args = Args::parse();
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
