//! `raftnet get networks|orderers|peers|channels [-w] [-o json|yaml]`: the columns
//! `kubectl get` shows for raftnet's resources, read live from the nodes' admin API
//! (`ChannelStatus`, and `WatchStatus` with `-w`), never from logs.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use clap::{Args, ValueEnum};
use serde::Serialize;
use tokio::sync::Notify;

use super::local::DataDir;
use super::output::{role_name, table};
use crate::client::Client;
use crate::local::process::node_binary;
use crate::local::LocalNetwork;
use crate::proto::admin::ChannelStatus;

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
        let rows = rows(&net, a.resource, &statuses);
        return print(&rows, a.output, true);
    }
    watch(&net, a.resource, a.output).await
}

/// The `raftnet get networks` table (printed by `raftnet up`).
pub async fn print_networks(net: &LocalNetwork) -> anyhow::Result<()> {
    let statuses = poll(net).await;
    print(&rows(net, Resource::Networks, &statuses), None, true)
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
        let fresh: Vec<Row> = rows(net, resource, &now)
            .into_iter()
            .filter(|r| shown.get(&r.name).is_none_or(|old| !old.same_state(r)))
            .collect();
        if !fresh.is_empty() {
            print(&fresh, output, header)?;
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

/// One line of output: a resource's name and its columns.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    #[serde(skip)]
    header: &'static [&'static str],
    pub name: String,
    #[serde(flatten)]
    pub columns: BTreeMap<String, String>,
    #[serde(skip)]
    cells: Vec<String>,
}

impl Row {
    fn new(header: &'static [&'static str], cells: Vec<String>) -> Self {
        let columns = header
            .iter()
            .zip(&cells)
            .skip(1)
            .map(|(h, c)| (h.to_lowercase(), c.clone()))
            .collect();
        Self {
            header,
            name: cells[0].clone(),
            columns,
            cells,
        }
    }

    /// Equal apart from AGE.
    fn same_state(&self, other: &Row) -> bool {
        let strip = |r: &Row| {
            r.columns
                .iter()
                .filter(|(k, _)| *k != "age")
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect::<Vec<_>>()
        };
        strip(self) == strip(other)
    }
}

const ORDERERS: &[&str] = &[
    "NAME", "NETWORK", "ROLE", "LEADER", "TERM", "HEIGHT", "READY", "AGE",
];
const NETWORKS: &[&str] = &["NAME", "ORDERERS", "PEERS", "LEADER", "QUORUM", "AGE"];
const CHANNELS: &[&str] = &[
    "NAME", "NETWORK", "LEADER", "TERM", "HEIGHT", "QUORUM", "AGE",
];
const PEERS: &[&str] = &["NAME", "ORG", "CHANNELS", "HEIGHT", "READY", "AGE"];

pub fn rows(net: &LocalNetwork, resource: Resource, st: &Statuses) -> Vec<Row> {
    let network = net.layout.name.clone();
    let get = |node: &str, ch: &str| -> Option<&ChannelStatus> {
        st.get(&(node.to_string(), ch.to_string()))?.as_ref()
    };
    let age = |node: &str| {
        net.daemon(node)
            .ok()
            .and_then(|d| d.started_at())
            .map(age_since)
            .unwrap_or_else(|| "-".into())
    };
    let dash = || "-".to_string();
    match resource {
        Resource::Orderers => net
            .layout
            .orderers
            .iter()
            .map(|o| {
                // An orderer's row shows the first channel it orders.
                let ch = net
                    .layout
                    .channels
                    .iter()
                    .find(|c| c.consenters.contains(&o.name));
                let s = ch.and_then(|c| get(&o.name, &c.name));
                let cells = match s {
                    Some(s) => vec![
                        o.name.clone(),
                        network.clone(),
                        role_name(s).to_string(),
                        or_dash(&s.leader_name),
                        s.term.to_string(),
                        s.height.to_string(),
                        if s.quorum { "True" } else { "False" }.to_string(),
                        age(&o.name),
                    ],
                    None => vec![
                        o.name.clone(),
                        network.clone(),
                        "Unavailable".into(),
                        dash(),
                        dash(),
                        dash(),
                        "False".into(),
                        age(&o.name),
                    ],
                };
                Row::new(ORDERERS, cells)
            })
            .collect(),
        Resource::Peers => net
            .layout
            .peers
            .iter()
            .map(|p| {
                let mine: Vec<_> = net
                    .layout
                    .channels
                    .iter()
                    .filter(|c| c.orgs.contains(&p.msp_id))
                    .collect();
                let answers: Vec<&ChannelStatus> =
                    mine.iter().filter_map(|c| get(&p.name, &c.name)).collect();
                // Ready: it answers for every channel of its organisation and commits.
                let ready = !mine.is_empty()
                    && answers.len() == mine.len()
                    && answers.iter().all(|s| s.commit_error.is_empty());
                let cells = vec![
                    p.name.clone(),
                    p.msp_id.clone(),
                    answers.len().to_string(),
                    answers
                        .first()
                        .map(|s| s.height.to_string())
                        .unwrap_or_else(dash),
                    if ready { "True" } else { "False" }.to_string(),
                    age(&p.name),
                ];
                Row::new(PEERS, cells)
            })
            .collect(),
        Resource::Channels => net
            .layout
            .channels
            .iter()
            .map(|c| {
                let q = channel_quorum(c.consenters.iter().map(|o| get(o, &c.name)));
                let cells = vec![
                    c.name.clone(),
                    network.clone(),
                    or_dash(&q.leader),
                    q.term.map(|t| t.to_string()).unwrap_or_else(dash),
                    q.height.map(|h| h.to_string()).unwrap_or_else(dash),
                    q.state.to_string(),
                    network_age(net),
                ];
                Row::new(CHANNELS, cells)
            })
            .collect(),
        Resource::Networks => {
            let orderers_ready = net
                .layout
                .orderers
                .iter()
                .filter(|o| {
                    net.layout
                        .channels
                        .iter()
                        .filter(|c| c.consenters.contains(&o.name))
                        .all(|c| get(&o.name, &c.name).is_some_and(|s| s.quorum))
                })
                .count();
            let peers_ready = rows(net, Resource::Peers, st)
                .iter()
                .filter(|r| r.columns.get("ready").map(String::as_str) == Some("True"))
                .count();
            // The network is as healthy as its least healthy channel.
            let quorums: Vec<Quorum> = net
                .layout
                .channels
                .iter()
                .map(|c| channel_quorum(c.consenters.iter().map(|o| get(o, &c.name))))
                .collect();
            let worst = quorums
                .iter()
                .map(|q| q.state)
                .max_by_key(|s| match *s {
                    "Healthy" => 0,
                    "Degraded" => 1,
                    _ => 2,
                })
                .unwrap_or("Lost");
            let cells = vec![
                network.clone(),
                format!("{orderers_ready}/{}", net.layout.orderers.len()),
                format!("{peers_ready}/{}", net.layout.peers.len()),
                quorums
                    .first()
                    .map(|q| or_dash(&q.leader))
                    .unwrap_or_else(dash),
                worst.to_string(),
                network_age(net),
            ];
            vec![Row::new(NETWORKS, cells)]
        }
    }
}

struct Quorum {
    leader: String,
    term: Option<u64>,
    height: Option<u64>,
    state: &'static str,
}

/// A channel's leader and health from its consenters' answers: Healthy when there is a
/// leader and every consenter answers with it, Degraded when there is a leader but some
/// consenters are down, Lost when there is no leader.
fn channel_quorum<'a>(answers: impl Iterator<Item = Option<&'a ChannelStatus>>) -> Quorum {
    let answers: Vec<Option<&ChannelStatus>> = answers.collect();
    let up: Vec<&ChannelStatus> = answers.iter().flatten().copied().collect();
    let leader = up
        .iter()
        .filter(|s| s.leader_id != 0 && s.quorum)
        .max_by_key(|s| s.term)
        .map(|s| s.leader_name.clone())
        .unwrap_or_default();
    let state = if leader.is_empty() {
        "Lost"
    } else if up.len() == answers.len() && up.iter().all(|s| s.leader_name == leader) {
        "Healthy"
    } else {
        "Degraded"
    };
    Quorum {
        leader,
        term: up.iter().map(|s| s.term).max(),
        height: up.iter().map(|s| s.height).max(),
        state,
    }
}

fn or_dash(s: &str) -> String {
    if s.is_empty() {
        "-".into()
    } else {
        s.to_string()
    }
}

fn network_age(net: &LocalNetwork) -> String {
    std::fs::metadata(net.layout.dir.join("network.yaml"))
        .and_then(|m| m.modified())
        .map(age_since)
        .unwrap_or_else(|_| "-".into())
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

fn print(rows: &[Row], output: Option<Output>, header: bool) -> anyhow::Result<()> {
    match output {
        Some(Output::Json) => {
            for r in rows {
                println!("{}", serde_json::to_string(r)?);
            }
        }
        Some(Output::Yaml) => {
            println!("{}", serde_yaml::to_string(rows)?);
        }
        None => {
            let Some(first) = rows.first() else {
                return Ok(());
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
    }
    Ok(())
}
