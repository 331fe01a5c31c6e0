//! `Network` → each organisation's CAs (Secrets made once), its admin and client users
//! (Secrets), its `Orderer` and `Peer` children unless the user wrote them, a disruption budget
//! over its orderers; then status: ready orderers and peers, the leader and the quorum.

use std::sync::Arc;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{DynamicObject, ListParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Api, Resource, ResourceExt};
use raftnet_crds::health::{set_conditions, ConditionState, GroupHealth};
use raftnet_crds::names::{kube_name, orderer_node, peer_node};
use raftnet_crds::status::{quorum, DEGRADED, QUORUM_AVAILABLE, READY};
use raftnet_crds::{Channel, Network, NetworkStatus, Orderer, OrdererSpec, Peer, PeerSpec};
use raftnet_node::identity::Role;

use super::channel::channel_health;
use super::{namespace, now, SETTLED};
use crate::apply::{apply, apply_status, create_once};
use crate::labels::{network_labels, MANAGER};
use crate::objects::budget::budget;
use crate::observe::NodeKey;
use crate::pki::{ensure_org_ca, user_secret, user_secret_name};
use crate::{Context, Error, Result};

/// Problems with a network that the schema cannot see: its own checks, and another network
/// already in the namespace (children are named `orderer1`, `peer0-org1`: one network per
/// namespace).
async fn check(ctx: &Context, network: &Network, ns: &str) -> Result<()> {
    let name = network.name_any();
    if let Err(problems) = network.spec.validate() {
        return Err(Error::InvalidSpec(format!(
            "Network {name}: {}",
            problems.join("; ")
        )));
    }
    let api: Api<Network> = Api::namespaced(ctx.client.clone(), ns);
    let older = api
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter(|other| other.name_any() != name)
        // The older one keeps the namespace (by name when made in the same second).
        .find(|other| {
            (&other.metadata.creation_timestamp, other.name_any())
                < (&network.metadata.creation_timestamp, name.clone())
        });
    if let Some(other) = older {
        return Err(Error::InvalidSpec(format!(
            "namespace {ns} already runs network {}: run one network per namespace (its nodes are named orderer1, peer0-org1, ...)",
            other.name_any()
        )));
    }
    Ok(())
}

/// Makes the network's Secrets, children and budget.
async fn converge(ctx: &Context, network: &Network, ns: &str) -> Result<()> {
    let name = network.name_any();
    let owner = network
        .controller_owner_ref(&())
        .ok_or_else(|| Error::InvalidSpec(format!("{name} has no uid yet")))?;
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), ns);

    let orderer_msp = network.spec.orderer_organization.msp_id.clone();
    let mut cas = Vec::new();
    for msp in std::iter::once(orderer_msp.clone())
        .chain(network.spec.organizations.iter().map(|o| o.msp_id.clone()))
    {
        let (ca, created) = ensure_org_ca(&secrets, network, owner.clone(), &msp).await?;
        if created {
            ctx.event(
                network,
                EventType::Normal,
                "CertificatesIssued",
                format!("made the CA and TLS CA of {msp}"),
            )
            .await;
        }
        cas.push(ca);
    }
    let roots: Vec<_> = cas.iter().map(|c| c.cas()).collect();
    for ca in &cas {
        let mut users = vec![("admin", Role::Admin)];
        if ca.msp_id != orderer_msp {
            users.push(("client", Role::Client));
        }
        for (user, role) in users {
            if secrets
                .get_opt(&user_secret_name(&name, &ca.msp_id, user))
                .await?
                .is_some()
            {
                continue;
            }
            let secret = user_secret(user, role, ca, &roots, network, owner.clone())?;
            let (_, created) = create_once(&secrets, &secret).await?;
            if created {
                ctx.event(
                    network,
                    EventType::Normal,
                    "CertificatesIssued",
                    format!("issued the {user} of {}", ca.msp_id),
                )
                .await;
            }
        }
    }

    // Children the user did not write: an orderer per consenter id, the peers of each
    // organisation.
    let orderers: Api<Orderer> = Api::namespaced(ctx.client.clone(), ns);
    let existing = orderers.list(&ListParams::default()).await?.items;
    for k in 1..=network.spec.orderer_organization.orderers {
        let taken = existing
            .iter()
            .any(|o| o.spec.network == name && o.spec.consenter_id == k);
        if taken {
            continue;
        }
        let child = Orderer {
            metadata: child_meta(&orderer_node(k), ns, &name, &owner),
            spec: OrdererSpec {
                network: name.clone(),
                msp_id: orderer_msp.clone(),
                consenter_id: k,
            },
            status: None,
        };
        apply(&orderers, &child).await?;
    }
    let peers: Api<Peer> = Api::namespaced(ctx.client.clone(), ns);
    for org in &network.spec.organizations {
        for i in 0..org.peers {
            let child_name = kube_name(&peer_node(i, &org.msp_id));
            if peers.get_opt(&child_name).await?.is_some() {
                continue;
            }
            let child = Peer {
                metadata: child_meta(&child_name, ns, &name, &owner),
                spec: PeerSpec {
                    network: name.clone(),
                    organization: org.msp_id.clone(),
                },
                status: None,
            };
            apply(&peers, &child).await?;
        }
    }

    let budget = budget(
        &ctx.budget_api,
        &name,
        ns,
        network.spec.orderer_organization.orderers,
        &owner,
    );
    let budgets: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), ns, &ctx.budget_api);
    let applied = budgets.get_opt(&budget.name_any()).await?;
    let same = applied.is_some_and(|b| b.data.get("spec") == budget.data.get("spec"));
    if !same {
        budgets
            .patch(
                &budget.name_any(),
                &PatchParams::apply(MANAGER).force(),
                &Patch::Apply(&budget),
            )
            .await?;
    }
    Ok(())
}

fn child_meta(
    name: &str,
    ns: &str,
    network: &str,
    owner: &k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference,
) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_owned()),
        namespace: Some(ns.to_owned()),
        labels: Some(network_labels(network)),
        owner_references: Some(vec![owner.clone()]),
        ..ObjectMeta::default()
    }
}

/// The network's status from its nodes' views and its channels' health.
/// None while some node has not answered a first time (see `Hub::settled`).
async fn observe(
    ctx: &Context,
    network: &Network,
    ns: &str,
) -> Result<Option<(NetworkStatus, Vec<ConditionState>)>> {
    let name = network.name_any();
    let key = |node: &str| NodeKey {
        namespace: ns.to_owned(),
        name: node.to_owned(),
    };
    let orderers: Api<Orderer> = Api::namespaced(ctx.client.clone(), ns);
    let mut orderer_names: Vec<String> = orderers
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter(|o| o.spec.network == name)
        .map(|o| o.name_any())
        .collect();
    orderer_names.sort();
    let peers: Api<Peer> = Api::namespaced(ctx.client.clone(), ns);
    let mut peer_names: Vec<String> = peers
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter(|p| p.spec.network == name)
        .map(|p| p.name_any())
        .collect();
    peer_names.sort();
    let unsettled = orderer_names
        .iter()
        .chain(&peer_names)
        .any(|n| !ctx.hub.settled(&key(n)));
    if unsettled {
        return Ok(None);
    }
    let up = |names: &[String]| -> Vec<String> {
        names
            .iter()
            .filter(|n| {
                let view = ctx.hub.view(&key(n));
                view.reachable()
                    && view
                        .channels
                        .values()
                        .flatten()
                        .all(|s| s.halt_error.is_empty())
            })
            .cloned()
            .collect()
    };
    let orderers_up = up(&orderer_names);
    let peers_up = up(&peer_names);

    let channels: Api<Channel> = Api::namespaced(ctx.client.clone(), ns);
    let mut channel_list: Vec<Channel> = channels
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter(|c| c.spec.network == name)
        .collect();
    channel_list.sort_by_key(|c| c.name_any());
    let healths: Vec<(String, GroupHealth)> = channel_list
        .iter()
        .map(|c| (c.name_any(), channel_health(ctx, ns, c, &orderer_names)))
        .collect();
    let rank = |q: &str| match q {
        quorum::LOST => 0,
        quorum::DEGRADED => 1,
        _ => 2,
    };
    let worst = healths.iter().min_by_key(|(_, h)| rank(h.quorum));
    let mut states = match worst {
        Some((channel, health)) => {
            let mut states = health.conditions();
            if healths.len() > 1 {
                for state in &mut states {
                    state.message = format!("channel {channel}: {}", state.message);
                }
            }
            states
        }
        None => {
            let message = "no channel yet: the orderers form one Raft group per channel".to_owned();
            vec![
                ConditionState::new(READY, false, "NoChannel", message.clone()),
                ConditionState::new(QUORUM_AVAILABLE, false, "NoChannel", message.clone()),
                ConditionState::new(DEGRADED, false, "NoChannel", message),
            ]
        }
    };
    let peers_down: Vec<&String> = peer_names
        .iter()
        .filter(|p| !peers_up.contains(p))
        .collect();
    if !peers_down.is_empty() {
        if let Some(ready) = states.iter_mut().find(|s| s.type_ == READY) {
            let list: Vec<&str> = peers_down.iter().map(|s| s.as_str()).collect();
            ready.status = false;
            ready.reason = "PeersDown";
            ready.message = format!(
                "{} of {} peers down ({}); {}",
                list.len(),
                peer_names.len(),
                list.join(", "),
                ready.message
            );
        }
    }
    let first = healths.first().map(|(_, h)| h);
    let status = NetworkStatus {
        observed_generation: network.metadata.generation,
        orderers: Some(format!("{}/{}", orderers_up.len(), orderer_names.len())),
        peers: Some(format!("{}/{}", peers_up.len(), peer_names.len())),
        leader: first.and_then(|h| h.leader.clone()),
        quorum: worst.map(|(_, h)| h.quorum.to_owned()),
        conditions: Vec::new(),
    };
    Ok(Some((status, states)))
}

pub async fn reconcile(network: Arc<Network>, ctx: Arc<Context>) -> Result<Action> {
    let _timer = ctx.metrics.reconcile("network");
    let ns = namespace(&*network)?;
    let api: Api<Network> = Api::namespaced(ctx.client.clone(), &ns);
    let current = network.status.clone().unwrap_or_default();
    let generation = network.metadata.generation;
    let converged = async {
        check(&ctx, &network, &ns).await?;
        converge(&ctx, &network, &ns).await
    }
    .await;
    if let Err(Error::InvalidSpec(message)) = &converged {
        let mut conditions = current.conditions.clone();
        set_conditions(
            &mut conditions,
            vec![ConditionState::new(
                READY,
                false,
                "InvalidSpec",
                message.clone(),
            )],
            now(),
            generation,
        );
        let status = NetworkStatus {
            observed_generation: generation,
            conditions,
            ..NetworkStatus::default()
        };
        if apply_status(&api, &*network, network.status.as_ref(), &status).await? {
            ctx.event(
                &*network,
                EventType::Warning,
                "InvalidSpec",
                message.clone(),
            )
            .await;
        }
    }
    converged?;
    let Some((mut status, states)) = observe(&ctx, &network, &ns).await? else {
        return Ok(Action::requeue(super::WAITING));
    };
    let mut conditions = current.conditions.clone();
    set_conditions(&mut conditions, states, now(), generation);
    status.conditions = conditions;
    apply_status(&api, &*network, network.status.as_ref(), &status).await?;
    Ok(Action::requeue(SETTLED))
}
