//! `Channel` → its genesis block (built once, with the same library as `raftnet up`, kept in a
//! ConfigMap), each consenter and member peer joined through its admin API (once: a node that
//! lists the channel is not joined again), then status from the consenters themselves: leader,
//! term, height, quorum, and events when the leader changes or the quorum is lost or regained.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::ByteString;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Api, Resource, ResourceExt};
use prost::Message;
use raftnet_crds::health::{set_conditions, ConditionState, GroupHealth};
use raftnet_crds::status::{quorum, READY};
use raftnet_crds::{Channel, ChannelStatus, Manifests, Network, Orderer, Peer};
use raftnet_node::network::channel_config;
use raftnet_node::proto::admin::admin_client::AdminClient;
use raftnet_node::proto::admin::JoinChannelRequest;
use raftnet_node::proto::common::Consenter;

use super::address::node_address;
use super::node::network_roots;
use super::{namespace, network_of, now, of_network, SETTLED, WAITING};
use crate::apply::{apply_status, create_once};
use crate::labels::network_labels;
use crate::objects::NodeKind;
use crate::observe::NodeKey;
use crate::pki::{admin_tls, node_secret_name, text, TLS_CERT};
use crate::{Context, Error, Result};
use raftnet_node::report::{self, NodeReport};

/// The ConfigMap key of the genesis block.
pub const GENESIS_KEY: &str = "genesis.block";

/// How long a node may take to join a channel.
const JOIN_TIMEOUT: Duration = Duration::from_secs(10);

/// The ConfigMap of a channel's genesis block: `mychannel-genesis`.
pub fn genesis_config_map_name(channel: &str) -> String {
    format!("{channel}-genesis")
}

/// The consenters of a channel: those its spec names, else every orderer of the network.
pub fn consenter_names(channel: &Channel, network_orderers: &[String]) -> Vec<String> {
    channel
        .spec
        .orderers
        .clone()
        .unwrap_or_else(|| network_orderers.to_vec())
}

/// What the hub last heard from each of `names`.
pub fn reports(ctx: &Context, ns: &str, names: &[String]) -> Vec<(String, NodeReport)> {
    names
        .iter()
        .map(|node| {
            let key = NodeKey::new(ns, node);
            (node.clone(), ctx.hub.view(&key).report)
        })
        .collect()
}

/// The channel's Raft group as its consenters report it.
pub fn channel_health(
    ctx: &Context,
    ns: &str,
    channel: &Channel,
    network_orderers: &[String],
) -> GroupHealth {
    let reports = reports(ctx, ns, &consenter_names(channel, network_orderers));
    report::channel_health(
        &channel.name_any(),
        reports.iter().map(|(n, r)| (n.as_str(), r)),
    )
}

/// What `raftnet up` would say about this channel and network: the same plan, the same checks.
fn plan(network: &Network, channel: &Channel) -> Result<raftnet_node::network::plan::NetworkPlan> {
    let manifests = Manifests {
        networks: vec![network.clone()],
        channels: vec![channel.clone()],
        ..Manifests::default()
    };
    raftnet_node::network::manifest::plan(&manifests)
        .map_err(|e| Error::InvalidSpec(format!("{e:#}")))
}

/// The genesis block: the stored one, or built and stored now.
async fn genesis(ctx: &Context, network: &Network, channel: &Channel, ns: &str) -> Result<Vec<u8>> {
    let name = channel.name_any();
    let config_maps: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), ns);
    if let Some(stored) = config_maps.get_opt(&genesis_config_map_name(&name)).await? {
        return stored_block(&stored);
    }
    let plan = plan(network, channel)?;
    let ch = plan
        .channels
        .iter()
        .find(|c| c.name == name)
        .ok_or_else(|| {
            Error::InvalidSpec(format!("channel {name} is not in its network's plan"))
        })?;
    let roots = network_roots(ctx, network).await?;
    let orderers: Api<Orderer> = Api::namespaced(ctx.client.clone(), ns);
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), ns);
    let mut consenters = Vec::new();
    let wanted: Vec<String> = match &ch.consenters {
        Some(names) => names.clone(),
        None => (1..=plan.orderers)
            .map(raftnet_crds::names::orderer_node)
            .collect(),
    };
    for node in &wanted {
        let orderer = orderers
            .get_opt(node)
            .await?
            .ok_or_else(|| Error::Waiting(format!("Orderer {node} does not exist yet")))?;
        let secret = secrets
            .get_opt(&node_secret_name(node))
            .await?
            .ok_or_else(|| {
                Error::Waiting(format!("the certificates of {node} are not issued yet"))
            })?;
        let address = node_address(ctx, &orderer, NodeKind::Orderer, false).await?;
        consenters.push(Consenter {
            id: u64::from(orderer.spec.consenter_id),
            name: node.clone(),
            host: address.host.clone(),
            port: u32::from(address.port),
            msp_id: orderer.spec.msp_id.clone(),
            tls_cert_pem: text(&secret, TLS_CERT)?.into_bytes(),
        });
    }
    let config = channel_config(&plan, ch, &roots, &consenters)
        .map_err(|e| Error::InvalidSpec(format!("{e:#}")))?;
    let block = raftnet_node::ledger::genesis_block(&config).encode_to_vec();
    let owner = channel
        .controller_owner_ref(&())
        .ok_or_else(|| Error::InvalidSpec(format!("{name} has no uid yet")))?;
    let map = ConfigMap {
        metadata: ObjectMeta {
            name: Some(genesis_config_map_name(&name)),
            namespace: Some(ns.to_owned()),
            labels: Some(network_labels(&network.name_any())),
            owner_references: Some(vec![owner]),
            ..ObjectMeta::default()
        },
        binary_data: Some(BTreeMap::from([(
            GENESIS_KEY.to_owned(),
            ByteString(block),
        )])),
        ..ConfigMap::default()
    };
    let (stored, _) = create_once(&config_maps, &map).await?;
    stored_block(&stored)
}

fn stored_block(map: &ConfigMap) -> Result<Vec<u8>> {
    map.binary_data
        .as_ref()
        .and_then(|d| d.get(GENESIS_KEY))
        .map(|b| b.0.clone())
        .ok_or_else(|| Error::Pki(format!("ConfigMap {} has no {GENESIS_KEY}", map.name_any())))
}

/// A node that should serve the channel.
struct Member {
    name: String,
    msp_id: String,
    kind: NodeKind,
}

/// The consenters and the peers of the channel's organisations.
async fn members(
    ctx: &Context,
    channel: &Channel,
    network: &str,
    ns: &str,
) -> Result<(Vec<Member>, Vec<String>)> {
    let mut network_orderers: Vec<Orderer> = of_network(ctx, ns, network).await?;
    network_orderers.sort_by_key(|o| o.spec.consenter_id);
    let orderer_names: Vec<String> = network_orderers.iter().map(|o| o.name_any()).collect();
    let consenters = consenter_names(channel, &orderer_names);
    let mut members: Vec<Member> = network_orderers
        .iter()
        .filter(|o| consenters.contains(&o.name_any()))
        .map(|o| Member {
            name: o.name_any(),
            msp_id: o.spec.msp_id.clone(),
            kind: NodeKind::Orderer,
        })
        .collect();
    let channel_peers: Vec<Peer> = of_network::<Peer>(ctx, ns, network)
        .await?
        .into_iter()
        .filter(|p| channel.spec.organizations.contains(&p.spec.organization))
        .collect();
    members.extend(channel_peers.iter().map(|p| Member {
        name: p.name_any(),
        msp_id: p.spec.organization.clone(),
        kind: NodeKind::Peer,
    }));
    Ok((members, orderer_names))
}

/// Joins every member that answers and has not joined; returns who has joined.
async fn join_members(
    ctx: &Context,
    channel: &Channel,
    network: &Network,
    ns: &str,
    members: &[Member],
    block: &[u8],
) -> Result<Vec<String>> {
    let name = channel.name_any();
    let roots = network_roots(ctx, network).await?;
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), ns);
    let mut joined = Vec::new();
    let mut joins = Vec::new();
    for member in members {
        let key = NodeKey::new(ns, &member.name);
        let view = ctx.hub.view(&key);
        if view.report.joined(&name) {
            ctx.hub.watch_channel(&key, &name);
            joined.push(member.name.clone());
            continue;
        }
        if view.report.info.is_none() {
            continue; // Not up yet: joined on a later pass.
        }
        let kind = member.kind;
        let address = match kind {
            NodeKind::Orderer => {
                let api: Api<Orderer> = Api::namespaced(ctx.client.clone(), ns);
                node_address(ctx, &api.get(&member.name).await?, kind, false).await?
            }
            NodeKind::Peer => {
                let api: Api<Peer> = Api::namespaced(ctx.client.clone(), ns);
                node_address(ctx, &api.get(&member.name).await?, kind, false).await?
            }
        };
        let tls = admin_tls(&secrets, &network.name_any(), &member.msp_id, &roots).await?;
        let node = member.name.clone();
        let block = block.to_vec();
        joins.push(async move {
            let result = async {
                let channel = tls
                    .channel(&address.endpoint())
                    .map_err(|e| e.to_string())?;
                let mut admin = AdminClient::new(channel);
                let call = admin.join_channel(JoinChannelRequest {
                    genesis_block: block,
                });
                match tokio::time::timeout(JOIN_TIMEOUT, call).await {
                    Ok(Ok(_)) => Ok(true),
                    Ok(Err(status)) if status.code() == tonic::Code::AlreadyExists => Ok(false),
                    Ok(Err(status)) => Err(format!("{}: {}", status.code(), status.message())),
                    Err(_) => Err(format!("no answer within {JOIN_TIMEOUT:?}")),
                }
            }
            .await;
            (node, key, result)
        });
    }
    for (node, key, result) in futures::future::join_all(joins).await {
        match result {
            Ok(fresh) => {
                if fresh {
                    ctx.event(
                        channel,
                        EventType::Normal,
                        "ChannelJoined",
                        format!("{node} joined channel {name}"),
                    )
                    .await;
                }
                ctx.hub.watch_channel(&key, &name);
                joined.push(node);
            }
            Err(message) => {
                ctx.event(
                    channel,
                    EventType::Warning,
                    "JoinFailed",
                    format!("{node} could not join channel {name}: {message}"),
                )
                .await;
            }
        }
    }
    joined.sort();
    Ok(joined)
}

pub async fn reconcile(channel: Arc<Channel>, ctx: Arc<Context>) -> Result<Action> {
    let _timer = ctx.metrics.reconcile("channel");
    let ns = namespace(&*channel)?;
    let api: Api<Channel> = Api::namespaced(ctx.client.clone(), &ns);
    let current = channel.status.clone().unwrap_or_default();
    let generation = channel.metadata.generation;
    let prepared = async {
        let network = network_of(&ctx, &ns, &channel.spec.network).await?;
        plan(&network, &channel)?;
        let block = genesis(&ctx, &network, &channel, &ns).await?;
        Ok::<_, Error>((network, block))
    }
    .await;
    let (network, block) = match prepared {
        Ok(ready) => ready,
        Err(error @ (Error::InvalidSpec(_) | Error::Waiting(_))) => {
            let (reason, message) = match &error {
                Error::InvalidSpec(m) => ("InvalidSpec", m.clone()),
                other => ("Waiting", other.to_string()),
            };
            let mut conditions = current.conditions.clone();
            set_conditions(
                &mut conditions,
                vec![ConditionState::new(READY, false, reason, message.clone())],
                now(),
                generation,
            );
            let status = ChannelStatus {
                observed_generation: generation,
                conditions,
                ..ChannelStatus::default()
            };
            if apply_status(&api, &*channel, channel.status.as_ref(), &status).await?
                && reason == "InvalidSpec"
            {
                ctx.event(&*channel, EventType::Warning, "InvalidSpec", message)
                    .await;
            }
            return Err(error);
        }
        Err(error) => return Err(error),
    };
    let (members, orderer_names) = members(&ctx, &channel, &network.name_any(), &ns).await?;
    let joined = join_members(&ctx, &channel, &network, &ns, &members, &block).await?;
    let joined = still_joined(&members, joined, &current.joined);
    if !all_settled(&ctx, &ns, &members) {
        return Ok(Action::requeue(WAITING)); // Woken as each node first answers.
    }
    let consenter_list = consenter_names(&channel, &orderer_names);
    let health = channel_health(&ctx, &ns, &channel, &orderer_names);
    let missing: Vec<&str> = members
        .iter()
        .map(|m| m.name.as_str())
        .filter(|m| !joined.iter().any(|j| j == m))
        .collect();
    let deployed = deploy_contracts(
        &ctx,
        &network,
        &channel,
        &health,
        &missing,
        &joined,
        &consenter_list,
        &current,
    )
    .await?;
    let settled = write_status(&ctx, &channel, &members, &orderer_names, joined, deployed).await?;
    Ok(Action::requeue(if settled { SETTLED } else { WAITING }))
}

/// Who has joined: those the nodes say, and those recorded before (a node that joined and
/// is down now has still joined), among the current members.
fn still_joined(members: &[Member], mut joined: Vec<String>, recorded: &[String]) -> Vec<String> {
    for name in recorded {
        if members.iter().any(|m| &m.name == name) && !joined.contains(name) {
            joined.push(name.clone());
        }
    }
    joined.sort();
    joined
}

fn all_settled(ctx: &Context, ns: &str, members: &[Member]) -> bool {
    members
        .iter()
        .all(|m| ctx.hub.settled(&NodeKey::new(ns, &m.name)))
}

/// Writes the channel's status from its members' reports; returns whether everything is
/// joined and deployed.
async fn write_status(
    ctx: &Context,
    channel: &Channel,
    members: &[Member],
    orderer_names: &[String],
    joined: Vec<String>,
    deployed: Vec<String>,
) -> Result<bool> {
    let ns = namespace(channel)?;
    let name = channel.name_any();
    let current = channel.status.clone().unwrap_or_default();
    let consenter_reports = reports(ctx, &ns, &consenter_names(channel, orderer_names));
    let by_name: Vec<(&str, &NodeReport)> = consenter_reports
        .iter()
        .map(|(n, r)| (n.as_str(), r))
        .collect();
    let missing: Vec<&str> = members
        .iter()
        .map(|m| m.name.as_str())
        .filter(|m| !joined.iter().any(|j| j == m))
        .collect();
    let pending: Vec<String> = channel
        .spec
        .contracts
        .iter()
        .map(super::contracts::label)
        .filter(|l| !deployed.contains(l))
        .collect();
    let status = report::channel_status(
        &name,
        &by_name,
        joined,
        &missing,
        deployed,
        &pending,
        &current,
        &now(),
        channel.metadata.generation,
    );
    report_changes(ctx, channel, &current, &status, &channel.spec.network, &ns).await;
    let api: Api<Channel> = Api::namespaced(ctx.client.clone(), &ns);
    apply_status(&api, channel, channel.status.as_ref(), &status).await?;
    Ok(missing.is_empty() && pending.is_empty())
}

/// The fast path from the nodes' streams to the channel's status: what the last reconcile
/// found (joins, contracts) with the nodes' latest reports. Joining and deploying stay with
/// the reconcile; a channel the reconcile reported invalid or waiting is left to it.
pub async fn refresh_status(ctx: &Context, channel: &Channel) -> Result<()> {
    let current = channel.status.clone().unwrap_or_default();
    let owned_by_reconcile = raftnet_crds::status::find_condition(&current.conditions, READY)
        .is_none_or(|c| c.reason == "InvalidSpec" || c.reason == "Waiting");
    if owned_by_reconcile {
        return Ok(());
    }
    let ns = namespace(channel)?;
    let (members, orderer_names) = members(ctx, channel, &channel.spec.network, &ns).await?;
    if !all_settled(ctx, &ns, &members) {
        return Ok(());
    }
    let seen: Vec<String> = members
        .iter()
        .filter(|m| {
            ctx.hub
                .view(&NodeKey::new(&ns, &m.name))
                .report
                .joined(&channel.name_any())
        })
        .map(|m| m.name.clone())
        .collect();
    let joined = still_joined(&members, seen, &current.joined);
    write_status(
        ctx,
        channel,
        &members,
        &orderer_names,
        joined,
        current.deployed.clone(),
    )
    .await?;
    Ok(())
}

/// Deploys the channel's contracts once it has a leader and every member joined; returns the
/// ones deployed.
#[allow(clippy::too_many_arguments)]
async fn deploy_contracts(
    ctx: &Arc<Context>,
    network: &Network,
    channel: &Channel,
    health: &GroupHealth,
    missing: &[&str],
    joined: &[String],
    consenters: &[String],
    current: &ChannelStatus,
) -> Result<Vec<String>> {
    use super::contracts::{label, progress, Progress};
    let mut deployed = current.deployed.clone();
    if health.leader.is_none() || !missing.is_empty() {
        return Ok(deployed);
    }
    for contract in &channel.spec.contracts {
        let l = label(contract);
        if deployed.contains(&l) {
            continue;
        }
        match progress(ctx, network, channel, contract, consenters, joined).await {
            Ok(Progress::Deployed(_)) => deployed.push(l),
            Ok(Progress::Pending) | Ok(Progress::Failed(_)) | Err(Error::Waiting(_)) => {}
            Err(e) => return Err(e),
        }
    }
    deployed.sort();
    Ok(deployed)
}

/// Events and metrics for what a person should notice: a new leader, quorum lost or regained.
async fn report_changes(
    ctx: &Context,
    channel: &Channel,
    before: &ChannelStatus,
    after: &ChannelStatus,
    network: &str,
    ns: &str,
) {
    let name = channel.name_any();
    let labels = [ns, network, name.as_str()];
    let level = match after.quorum.as_deref() {
        Some(quorum::HEALTHY) => 2,
        Some(quorum::DEGRADED) => 1,
        _ => 0,
    };
    ctx.metrics.quorum.with_label_values(&labels).set(level);
    if let (Some(new), true) = (&after.leader, after.leader != before.leader) {
        ctx.metrics.leader_changes.with_label_values(&labels).inc();
        let old = before.leader.as_deref().unwrap_or("none");
        ctx.event(
            channel,
            EventType::Normal,
            "LeaderChanged",
            format!(
                "Raft leader changed: {old} -> {new} (term {})",
                after.term.unwrap_or(0)
            ),
        )
        .await;
    }
    let lost = |s: &ChannelStatus| s.quorum.as_deref() == Some(quorum::LOST);
    if before.quorum.is_some() && lost(after) != lost(before) {
        let message = raftnet_crds::status::find_condition(
            &after.conditions,
            raftnet_crds::status::QUORUM_AVAILABLE,
        )
        .map(|c| c.message.clone())
        .unwrap_or_default();
        if lost(after) {
            ctx.event(channel, EventType::Warning, "QuorumLost", message)
                .await;
        } else {
            ctx.event(channel, EventType::Normal, "QuorumRegained", message)
                .await;
        }
    }
}
