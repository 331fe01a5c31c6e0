//! `Orderer` and `Peer` → the node's certificates (a Secret, issued once), its config (a
//! ConfigMap), a headless Service and a StatefulSet; then status from what the node says.

use std::sync::Arc;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Api, Resource, ResourceExt};
use raftnet_crds::health::{set_conditions, ConditionState};
use raftnet_crds::status::READY;
use raftnet_crds::{Network, Orderer, OrdererStatus, Peer, PeerStatus};
use raftnet_node::identity::Role;
use raftnet_node::network::OrgCas;
use raftnet_node::report::{orderer_status, peer_status};

use super::address::node_address;
use super::{namespace, network_of, now, SETTLED, WAITING};
use crate::apply::{apply_changed, apply_status, create_once};
use crate::objects::node_config::{config_map, node_config};
use crate::objects::workload::{service, stateful_set, PodSettings};
use crate::objects::{NodeKind, NodeObjects};
use crate::observe::{NodeKey, NodeTarget};
use crate::pki::{admin_tls, load_org_ca, node_secret, node_secret_name};
use crate::{Context, Error, Result};

/// Every organisation's CAs of a network, the orderer organisation's first.
pub async fn network_roots(ctx: &Context, network: &Network) -> Result<Vec<OrgCas>> {
    let ns = namespace(network)?;
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &ns);
    let mut roots = vec![
        load_org_ca(&secrets, network, &network.spec.orderer_organization.msp_id)
            .await?
            .cas(),
    ];
    for org in &network.spec.organizations {
        roots.push(load_org_ca(&secrets, network, &org.msp_id).await?.cas());
    }
    Ok(roots)
}

/// Makes the node's objects and follows the node; returns the key the hub knows it by.
async fn converge<K>(
    ctx: &Context,
    node: &K,
    kind: NodeKind,
    msp_id: &str,
    network: &Network,
) -> Result<NodeKey>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let name = node.name_any();
    let ns = namespace(node)?;
    let network_name = network.name_any();
    let owner = node
        .controller_owner_ref(&())
        .ok_or_else(|| Error::InvalidSpec(format!("{name} has no uid yet")))?;
    let objects = NodeObjects {
        kind,
        name: name.clone(),
        namespace: ns.clone(),
        network: network_name.clone(),
        msp_id: msp_id.to_owned(),
        owner: owner.clone(),
    };
    let roots = network_roots(ctx, network).await?;
    let address = node_address(ctx, node, kind, true).await?;

    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &ns);
    if secrets.get_opt(&node_secret_name(&name)).await?.is_none() {
        let org = load_org_ca(&secrets, network, msp_id).await?;
        let role = match kind {
            NodeKind::Orderer => Role::Orderer,
            NodeKind::Peer => Role::Peer,
        };
        let secret = node_secret(&name, role, &address.tls_hosts, &org, network, owner)?;
        let (_, created) = create_once(&secrets, &secret).await?;
        if created {
            ctx.event(
                node,
                EventType::Normal,
                "CertificatesIssued",
                format!(
                    "issued the TLS and signing certificates of {name} (Secret {})",
                    node_secret_name(&name)
                ),
            )
            .await;
        }
    }

    let config = node_config(&objects, &address, &roots);
    let config_maps: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &ns);
    apply_changed(&config_maps, config_map(&objects, &config, &roots)?).await?;
    let services: Api<Service> = Api::namespaced(ctx.client.clone(), &ns);
    apply_changed(&services, service(&objects)).await?;
    let storage = network.spec.storage.as_ref();
    let pod = PodSettings {
        image: network
            .spec
            .image
            .clone()
            .unwrap_or_else(|| ctx.settings.node_image.clone()),
        image_pull_policy: ctx.settings.image_pull_policy.clone(),
        storage: storage
            .map(|s| s.size.clone())
            .unwrap_or_else(|| ctx.settings.default_storage.clone()),
        storage_class: storage.and_then(|s| s.storage_class_name.clone()),
    };
    let sets: Api<StatefulSet> = Api::namespaced(ctx.client.clone(), &ns);
    apply_changed(&sets, stateful_set(&objects, &pod)).await?;

    let key = NodeKey {
        namespace: ns,
        name,
    };
    let tls = admin_tls(&secrets, &network_name, msp_id, &roots).await?;
    ctx.hub.watch_node(NodeTarget {
        key: key.clone(),
        kind,
        network: network_name,
        endpoint: address.endpoint(),
        tls,
    });
    Ok(key)
}

/// A blocked reconcile's condition: the spec is invalid, or something is missing.
fn blocked(error: &Error) -> Option<ConditionState> {
    match error {
        Error::InvalidSpec(message) => Some(ConditionState::new(
            READY,
            false,
            "InvalidSpec",
            message.clone(),
        )),
        Error::Waiting(message) => Some(ConditionState::new(
            READY,
            false,
            "Waiting",
            message.clone(),
        )),
        _ => None,
    }
}

fn rfc3339(time: std::time::SystemTime) -> Option<String> {
    k8s_openapi::jiff::Timestamp::try_from(time)
        .ok()
        .map(|t| t.to_string())
}

fn with_conditions(
    current: &[Condition],
    states: Vec<ConditionState>,
    generation: Option<i64>,
) -> Vec<Condition> {
    let mut conditions = current.to_vec();
    set_conditions(&mut conditions, states, now(), generation);
    conditions
}

pub async fn reconcile_orderer(orderer: Arc<Orderer>, ctx: Arc<Context>) -> Result<Action> {
    let _timer = ctx.metrics.reconcile("orderer");
    let ns = namespace(&*orderer)?;
    let outcome = async {
        let network = network_of(&ctx, &ns, &orderer.spec.network).await?;
        orderer
            .spec
            .validate(&network.spec)
            .map_err(|p| Error::InvalidSpec(p.join("; ")))?;
        converge(
            &ctx,
            &*orderer,
            NodeKind::Orderer,
            &orderer.spec.msp_id,
            &network,
        )
        .await
    }
    .await;
    let api: Api<Orderer> = Api::namespaced(ctx.client.clone(), &ns);
    let current = orderer.status.clone().unwrap_or_default();
    let generation = orderer.metadata.generation;
    if let Err(error) = outcome {
        let Some(state) = blocked(&error) else {
            return Err(error);
        };
        let status = OrdererStatus {
            observed_generation: generation,
            role: None,
            conditions: with_conditions(&current.conditions, vec![state], generation),
            ..OrdererStatus::default()
        };
        apply_status(&api, &*orderer, orderer.status.as_ref(), &status).await?;
        return Err(error);
    }
    Ok(Action::requeue(
        match write_orderer_status(&ctx, &orderer).await? {
            Some(true) => SETTLED,
            _ => WAITING, // Woken as soon as the node answers.
        },
    ))
}

/// Writes an orderer's status from what the hub last heard; None while the node is not
/// followed yet or has not answered a first time, else whether it answers.
pub async fn write_orderer_status(ctx: &Context, orderer: &Orderer) -> Result<Option<bool>> {
    let ns = namespace(orderer)?;
    let name = orderer.name_any();
    let key = NodeKey::new(&ns, &name);
    if !ctx.hub.follows(&key) || !ctx.hub.settled(&key) {
        return Ok(None);
    }
    let current = orderer.status.clone().unwrap_or_default();
    let view = ctx.hub.view(&key);
    let report = &view.report;
    // Lag: blocks behind the leader of its first channel, from the leader's own report (kept
    // as it was until the operator has heard from the leader).
    let lag = report.channels.iter().next().and_then(|(channel, status)| {
        let status = status.as_ref()?;
        let leader = NodeKey {
            namespace: ns.clone(),
            name: Some(status.leader_name.clone()).filter(|l| !l.is_empty())?,
        };
        if !ctx.hub.settled(&leader) {
            return current.lag;
        }
        let leader_height = ctx.hub.view(&leader).report.channel(channel)?.height;
        Some(leader_height.saturating_sub(status.height))
    });
    let status = orderer_status(
        &name,
        report,
        lag,
        view.last_seen.and_then(rfc3339),
        &current,
        &now(),
        orderer.metadata.generation,
    );
    let api: Api<Orderer> = Api::namespaced(ctx.client.clone(), &ns);
    apply_status(&api, orderer, orderer.status.as_ref(), &status).await?;
    Ok(Some(report.reachable()))
}

pub async fn reconcile_peer(peer: Arc<Peer>, ctx: Arc<Context>) -> Result<Action> {
    let _timer = ctx.metrics.reconcile("peer");
    let ns = namespace(&*peer)?;
    let outcome = async {
        let network = network_of(&ctx, &ns, &peer.spec.network).await?;
        peer.spec
            .validate(&network.spec)
            .map_err(|p| Error::InvalidSpec(p.join("; ")))?;
        converge(
            &ctx,
            &*peer,
            NodeKind::Peer,
            &peer.spec.organization,
            &network,
        )
        .await
    }
    .await;
    let api: Api<Peer> = Api::namespaced(ctx.client.clone(), &ns);
    let current = peer.status.clone().unwrap_or_default();
    let generation = peer.metadata.generation;
    if let Err(error) = outcome {
        let Some(state) = blocked(&error) else {
            return Err(error);
        };
        let status = PeerStatus {
            observed_generation: generation,
            conditions: with_conditions(&current.conditions, vec![state], generation),
            ..PeerStatus::default()
        };
        apply_status(&api, &*peer, peer.status.as_ref(), &status).await?;
        return Err(error);
    }
    Ok(Action::requeue(
        match write_peer_status(&ctx, &peer).await? {
            Some(true) => SETTLED,
            _ => WAITING,
        },
    ))
}

/// Writes a peer's status from what the hub last heard (see [`write_orderer_status`]).
pub async fn write_peer_status(ctx: &Context, peer: &Peer) -> Result<Option<bool>> {
    let ns = namespace(peer)?;
    let name = peer.name_any();
    let key = NodeKey::new(&ns, &name);
    if !ctx.hub.follows(&key) || !ctx.hub.settled(&key) {
        return Ok(None);
    }
    let current = peer.status.clone().unwrap_or_default();
    let view = ctx.hub.view(&key);
    let status = peer_status(
        &name,
        &view.report,
        &current,
        &now(),
        peer.metadata.generation,
    );
    let api: Api<Peer> = Api::namespaced(ctx.client.clone(), &ns);
    apply_status(&api, peer, peer.status.as_ref(), &status).await?;
    Ok(Some(view.report.reachable()))
}
