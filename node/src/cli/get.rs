//! `raftnet get networks|orderers|peers|channels [-w] [-o json|yaml]`: what `kubectl get`
//! shows for raftnet's resources, read live from the nodes' admin API (`ChannelStatus`, and
//! `WatchStatus` with `-w`), never from logs. The table has the CRDs' printer columns;
//! `-o json|yaml` prints a `List` of the same objects with the same status the operator writes
//! (both derive it in `crate::report`), so a script written against one works on the other.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use clap::{Args, ValueEnum};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, ObjectMeta, Time};
use raftnet_crds::status::{find_condition, READY};
use raftnet_crds::{Channel, ChannelSpec, Network, Orderer, OrdererSpec, Peer, PeerSpec};
use tokio::sync::Notify;

use super::local::DataDir;
use super::output::table;
use crate::client::Client;
use crate::local::process::node_binary;
use crate::local::LocalNetwork;
use crate::proto::admin::ChannelStatus;
use crate::report::{
    channel_health, channel_status, network_status, orderer_status, peer_status, NodeReport,
};

/// How long a node may take to answer before it counts as unavailable.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(1);

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Resource {
    #[value(alias = "network", alias = "rnet")]
    Networks,
    #[value(alias = "orderer", alias = "ord")]
    Orderers,
    #[value(alias = "peer")]
    Peers,
    #[value(alias = "channel", alias = "chan")]
    Channels,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Json,
    Yaml,
}

#[derive(Args)]
pub struct GetArgs {
    /// What to list.
    #[arg(value_enum)]
    pub resource: Resource,
    /// Keep watching: print a row again whenever it changes.
    #[arg(short = 'w', long)]
    pub watch: bool,
    #[arg(short = 'o', long, value_enum)]
    pub output: Option<Output>,
    #[command(flatten)]
    pub data: DataDir,
}

/// What every node said about every channel it serves; None when it did not answer.
type Statuses = HashMap<(String, String), Option<ChannelStatus>>;

pub async fn run(a: GetArgs) -> anyhow::Result<()> {
    let net = LocalNetwork::find(&a.data.data_dir, &node_binary()?)?;
    if !a.watch {
        let statuses = poll(&net).await;
        return print(&objects(&net, &statuses), a.resource, a.output);
    }
    watch(&net, a.resource, a.output).await
}

/// The `raftnet get networks` table (printed by `raftnet up`).
pub async fn print_networks(net: &LocalNetwork) -> anyhow::Result<()> {
    let statuses = poll(net).await;
    print(&objects(net, &statuses), Resource::Networks, None)
}

/// (node, channel) pairs the network should have: consenters and member peers.
fn members(net: &LocalNetwork) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for ch in &net.layout.channels {
        for o in &ch.consenters {
            out.push((o.clone(), ch.name.clone()));
        }
        for p in net
            .layout
            .peers
            .iter()
            .filter(|p| ch.orgs.contains(&p.msp_id))
        {
            out.push((p.name.clone(), ch.name.clone()));
        }
    }
    out
}

/// One status call per (node, channel).
pub async fn poll(net: &LocalNetwork) -> Statuses {
    let mut admins: HashMap<String, Arc<Client>> = HashMap::new();
    let mut calls = Vec::new();
    for (node, channel) in members(net) {
        let admin = match admins.get(&node) {
            Some(a) => a.clone(),
            None => match net.admin_for(&node) {
                Ok(a) => {
                    let a = Arc::new(a);
                    admins.insert(node.clone(), a.clone());
                    a
                }
                Err(_) => continue,
            },
        };
        let addr = net.address(&node).unwrap_or_default().to_string();
        calls.push(async move {
            let s = tokio::time::timeout(ANSWER_TIMEOUT, admin.status(&addr, &channel))
                .await
                .ok()
                .and_then(Result::ok);
            ((node, channel), s)
        });
    }
    futures::future::join_all(calls).await.into_iter().collect()
}

/// Follows every node's WatchStatus and prints rows as they change.
async fn watch(
    net: &LocalNetwork,
    resource: Resource,
    output: Option<Output>,
) -> anyhow::Result<()> {
    let statuses: Arc<Mutex<Statuses>> = Arc::new(Mutex::new(poll(net).await));
    let changed = Arc::new(Notify::new());
    for (node, channel) in members(net) {
        let Ok(admin) = net.admin_for(&node) else {
            continue;
        };
        let addr = net.address(&node).unwrap_or_default().to_string();
        let (statuses, changed) = (statuses.clone(), changed.clone());
        tokio::spawn(async move {
            loop {
                if let Ok(mut stream) = admin.watch(&addr, &channel).await {
                    while let Ok(Some(s)) = stream.message().await {
                        statuses
                            .lock()
                            .expect("statuses")
                            .insert((node.clone(), channel.clone()), Some(s));
                        changed.notify_one();
                    }
                }
                // The node went away: show it unavailable until it answers again.
                let was = statuses
                    .lock()
                    .expect("statuses")
                    .insert((node.clone(), channel.clone()), None);
                if was.flatten().is_some() {
                    changed.notify_one();
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        });
    }
    let mut shown: BTreeMap<String, Row> = BTreeMap::new();
    let mut header = true;
    loop {
        let now = statuses.lock().expect("statuses").clone();
        let objects = objects(net, &now);
        let fresh: Vec<Row> = rows(&objects, resource)
            .into_iter()
            .filter(|r| shown.get(&r.name).is_none_or(|old| !old.same_state(r)))
            .collect();
        if !fresh.is_empty() {
            match output {
                None => print_rows(&fresh, header),
                // As `kubectl get -w -o json|yaml`: each changed object on its own.
                Some(format) => {
                    for item in items(&objects, resource)? {
                        let name = item["metadata"]["name"].as_str().unwrap_or_default();
                        if !fresh.iter().any(|r| r.name == name) {
                            continue;
                        }
                        match format {
                            Output::Json => println!("{}", serde_json::to_string(&item)?),
                            Output::Yaml => print!("---\n{}", serde_norway::to_string(&item)?),
                        }
                    }
                }
            }
            header = false;
            for r in fresh {
                shown.insert(r.name.clone(), r);
            }
        }
        changed.notified().await;
        // Changes come in bursts (an election touches every node): print once per burst.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The resources of the local network as the API server would hold them: `apiVersion`,
/// `kind`, `metadata`, `spec` (from the manifests `raftnet up` was given) and `status` (from
/// the nodes, through the same derivation the operator uses).
#[derive(Clone, Debug, Default)]
pub struct Objects {
    pub networks: Vec<Network>,
    pub channels: Vec<Channel>,
    pub orderers: Vec<Orderer>,
    pub peers: Vec<Peer>,
}

/// Every node's report, from the status calls.
fn reports(net: &LocalNetwork, st: &Statuses) -> BTreeMap<String, NodeReport> {
    let mut out: BTreeMap<String, NodeReport> = BTreeMap::new();
    for name in net
        .layout
        .orderers
        .iter()
        .map(|o| &o.name)
        .chain(net.layout.peers.iter().map(|p| &p.name))
    {
        out.insert(name.clone(), NodeReport::default());
    }
    for ((node, channel), status) in st {
        out.entry(node.clone())
            .or_default()
            .channels
            .insert(channel.clone(), status.clone());
    }
    out
}

fn meta(name: &str, created: Option<SystemTime>) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_owned()),
        creation_timestamp: created
            .and_then(|t| k8s_openapi::jiff::Timestamp::try_from(t).ok())
            .map(Time),
        ..ObjectMeta::default()
    }
}

/// The objects of the local network, with status from the nodes' answers `st`.
pub fn objects(net: &LocalNetwork, st: &Statuses) -> Objects {
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    let reports = reports(net, st);
    let manifests = net.manifests();
    let network_name = net.layout.name.clone();
    let network_spec = manifests
        .as_ref()
        .and_then(|m| m.network(&network_name, None).map(|n| n.spec.clone()));
    let orderer_msp = network_spec
        .as_ref()
        .map(|s| s.orderer_organization.msp_id.clone())
        .unwrap_or_else(|| raftnet_crds::network::DEFAULT_ORDERER_MSP_ID.to_owned());
    let started = |node: &str| net.daemon(node).ok().and_then(|d| d.started_at());
    let created = network_created(net);
    let report = |node: &str| reports.get(node).cloned().unwrap_or_default();

    let orderers: Vec<Orderer> = net
        .layout
        .orderers
        .iter()
        .enumerate()
        .map(|(i, o)| {
            let r = report(&o.name);
            // Lag behind the leader of its first channel, from the leader's own answer.
            let lag = r.channels.iter().next().and_then(|(channel, s)| {
                let s = s.as_ref()?;
                let leader = reports.get(&s.leader_name)?.channel(channel)?;
                Some(leader.height.saturating_sub(s.height))
            });
            Orderer {
                metadata: meta(&o.name, started(&o.name)),
                spec: OrdererSpec {
                    network: network_name.clone(),
                    msp_id: orderer_msp.clone(),
                    consenter_id: i as u32 + 1,
                },
                status: Some(orderer_status(
                    &o.name,
                    &r,
                    lag,
                    None,
                    &Default::default(),
                    &now,
                    None,
                )),
            }
        })
        .collect();
    let peers: Vec<Peer> = net
        .layout
        .peers
        .iter()
        .map(|p| Peer {
            metadata: meta(&p.name, started(&p.name)),
            spec: PeerSpec {
                network: network_name.clone(),
                organization: p.msp_id.clone(),
            },
            status: Some(peer_status(
                &p.name,
                &report(&p.name),
                &Default::default(),
                &now,
                None,
            )),
        })
        .collect();
    let mut healths = Vec::new();
    let channels: Vec<Channel> = net
        .layout
        .channels
        .iter()
        .map(|c| {
            let written = manifests.as_ref().and_then(|m| {
                m.channels
                    .iter()
                    .find(|x| x.metadata.name.as_deref() == Some(c.name.as_str()))
            });
            let consenters: Vec<(String, NodeReport)> = c
                .consenters
                .iter()
                .map(|n| (n.clone(), report(n)))
                .collect();
            let by_name: Vec<(&str, &NodeReport)> =
                consenters.iter().map(|(n, r)| (n.as_str(), r)).collect();
            let members: Vec<&str> = c
                .consenters
                .iter()
                .map(String::as_str)
                .chain(
                    net.layout
                        .peers
                        .iter()
                        .filter(|p| c.orgs.contains(&p.msp_id))
                        .map(|p| p.name.as_str()),
                )
                .collect();
            let (joined, missing): (Vec<&str>, Vec<&str>) =
                members.into_iter().partition(|m| report(m).joined(&c.name));
            healths.push((
                c.name.clone(),
                channel_health(&c.name, by_name.iter().copied()),
            ));
            let spec = written
                .map(|w| w.spec.clone())
                .unwrap_or_else(|| ChannelSpec {
                    network: network_name.clone(),
                    organizations: c.orgs.clone(),
                    orderers: Some(c.consenters.clone()),
                    policies: None,
                    contracts: Vec::new(),
                });
            Channel {
                metadata: meta(&c.name, created),
                spec,
                status: Some(channel_status(
                    &c.name,
                    &by_name,
                    joined.iter().map(|s| s.to_string()).collect(),
                    &missing,
                    Vec::new(),
                    &[],
                    &Default::default(),
                    &now,
                    None,
                )),
            }
        })
        .collect();
    let orderer_reports: Vec<(&str, NodeReport)> = net
        .layout
        .orderers
        .iter()
        .map(|o| (o.name.as_str(), report(&o.name)))
        .collect();
    let peer_reports: Vec<(&str, NodeReport)> = net
        .layout
        .peers
        .iter()
        .map(|p| (p.name.as_str(), report(&p.name)))
        .collect();
    let ord: Vec<(&str, &NodeReport)> = orderer_reports.iter().map(|(n, r)| (*n, r)).collect();
    let per: Vec<(&str, &NodeReport)> = peer_reports.iter().map(|(n, r)| (*n, r)).collect();
    let networks = network_spec
        .map(|spec| Network {
            metadata: meta(&network_name, created),
            spec,
            status: Some(network_status(
                &ord,
                &per,
                &healths,
                &Default::default(),
                &now,
                None,
            )),
        })
        .into_iter()
        .collect();
    Objects {
        networks,
        channels,
        orderers,
        peers,
    }
}

/// One line of a table: a resource's name and its columns, as `kubectl get` prints them from
/// the CRD's printer columns.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    header: &'static [&'static str],
    pub name: String,
    cells: Vec<String>,
}

const ORDERERS: &[&str] = &[
    "NAME", "NETWORK", "ROLE", "LEADER", "TERM", "HEIGHT", "READY", "AGE",
];
const NETWORKS: &[&str] = &["NAME", "ORDERERS", "PEERS", "LEADER", "QUORUM", "AGE"];
const CHANNELS: &[&str] = &[
    "NAME", "NETWORK", "LEADER", "TERM", "HEIGHT", "QUORUM", "AGE",
];
const PEERS: &[&str] = &["NAME", "ORG", "CHANNELS", "HEIGHT", "READY", "AGE"];

impl Row {
    /// Equal apart from AGE.
    fn same_state(&self, other: &Row) -> bool {
        let strip = |r: &Row| -> Vec<String> {
            r.header
                .iter()
                .zip(&r.cells)
                .filter(|(h, _)| **h != "AGE")
                .map(|(_, c)| c.clone())
                .collect()
        };
        strip(self) == strip(other)
    }
}

/// What kubectl prints for a missing value.
fn cell<T: ToString>(value: Option<T>) -> String {
    value
        .map(|v| v.to_string())
        .unwrap_or_else(|| "<none>".into())
}

fn ready(conditions: &[Condition]) -> String {
    cell(find_condition(conditions, READY).map(|c| c.status.clone()))
}

fn age(meta: &ObjectMeta) -> String {
    meta.creation_timestamp
        .as_ref()
        .map(|t| age_since(SystemTime::from(t.0)))
        .unwrap_or_else(|| "<unknown>".into())
}

/// The table rows of one kind of resource.
pub fn rows(objects: &Objects, resource: Resource) -> Vec<Row> {
    let name = |m: &ObjectMeta| m.name.clone().unwrap_or_default();
    let row = |header, cells: Vec<String>| Row {
        header,
        name: cells[0].clone(),
        cells,
    };
    match resource {
        Resource::Orderers => objects
            .orderers
            .iter()
            .map(|o| {
                let s = o.status.clone().unwrap_or_default();
                row(
                    ORDERERS,
                    vec![
                        name(&o.metadata),
                        o.spec.network.clone(),
                        cell(s.role),
                        cell(s.leader),
                        cell(s.term),
                        cell(s.height),
                        ready(&s.conditions),
                        age(&o.metadata),
                    ],
                )
            })
            .collect(),
        Resource::Peers => objects
            .peers
            .iter()
            .map(|p| {
                let s = p.status.clone().unwrap_or_default();
                row(
                    PEERS,
                    vec![
                        name(&p.metadata),
                        p.spec.organization.clone(),
                        cell(s.channels),
                        cell(s.height),
                        ready(&s.conditions),
                        age(&p.metadata),
                    ],
                )
            })
            .collect(),
        Resource::Channels => objects
            .channels
            .iter()
            .map(|c| {
                let s = c.status.clone().unwrap_or_default();
                row(
                    CHANNELS,
                    vec![
                        name(&c.metadata),
                        c.spec.network.clone(),
                        cell(s.leader),
                        cell(s.term),
                        cell(s.height),
                        cell(s.quorum),
                        age(&c.metadata),
                    ],
                )
            })
            .collect(),
        Resource::Networks => objects
            .networks
            .iter()
            .map(|n| {
                let s = n.status.clone().unwrap_or_default();
                row(
                    NETWORKS,
                    vec![
                        name(&n.metadata),
                        cell(s.orderers),
                        cell(s.peers),
                        cell(s.leader),
                        cell(s.quorum),
                        age(&n.metadata),
                    ],
                )
            })
            .collect(),
    }
}

/// The objects of one kind as JSON values (`apiVersion`, `kind`, `metadata`, `spec`, `status`).
fn items(objects: &Objects, resource: Resource) -> anyhow::Result<Vec<serde_json::Value>> {
    Ok(match resource {
        Resource::Networks => serde_json::to_value(&objects.networks)?,
        Resource::Channels => serde_json::to_value(&objects.channels)?,
        Resource::Orderers => serde_json::to_value(&objects.orderers)?,
        Resource::Peers => serde_json::to_value(&objects.peers)?,
    }
    .as_array()
    .cloned()
    .unwrap_or_default())
}

/// A `List` of objects, as `kubectl get -o json|yaml` prints one.
fn list(items: Vec<serde_json::Value>) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "List",
        "items": items,
        "metadata": {"resourceVersion": ""},
    })
}

fn network_created(net: &LocalNetwork) -> Option<SystemTime> {
    std::fs::metadata(net.layout.dir.join("network.yaml"))
        .and_then(|m| m.modified())
        .ok()
}

/// Ages as kubectl prints them: 45s, 12m, 5h, 3d.
fn age_since(t: SystemTime) -> String {
    let s = t.elapsed().map(|d| d.as_secs()).unwrap_or(0);
    match s {
        0..120 => format!("{s}s"),
        120..7200 => format!("{}m", s / 60),
        7200..172_800 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    }
}

fn headerless() -> comfy_table::Table {
    let mut t = comfy_table::Table::new();
    t.load_preset(comfy_table::presets::NOTHING);
    t
}

fn print_rows(rows: &[Row], header: bool) {
    let Some(first) = rows.first() else {
        return;
    };
    let mut t = if header {
        table(first.header)
    } else {
        headerless()
    };
    for r in rows {
        t.add_row(r.cells.clone());
    }
    println!("{t}");
}

/// Prints every object of `resource`: a table, or a `List` as JSON or YAML.
fn print(objects: &Objects, resource: Resource, output: Option<Output>) -> anyhow::Result<()> {
    match output {
        None => print_rows(&rows(objects, resource), true),
        Some(Output::Json) => println!(
            "{}",
            serde_json::to_string_pretty(&list(items(objects, resource)?))?
        ),
        Some(Output::Yaml) => print!(
            "{}",
            serde_norway::to_string(&list(items(objects, resource)?))?
        ),
    }
    Ok(())
}
