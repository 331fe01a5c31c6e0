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
use raftnet_crds::status::READY;
use raftnet_crds::{Channel, Network, NetworkStatus, Orderer, OrdererSpec, Peer, PeerSpec};
use raftnet_node::identity::Role;

use super::channel::{channel_health, reports};
use super::{namespace, now, of_network, SETTLED};
use crate::apply::{apply, apply_status, create_once};
use crate::labels::{network_labels, MANAGER};
use crate::objects::budget::budget;
use crate::observe::NodeKey;
use crate::pki::{ensure_org_ca, user_secret, user_secret_name};
use crate::{Context, Error, Result};
use raftnet_node::report::network_status;

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
    let existing: Vec<Orderer> = of_network(ctx, ns, &name).await?;
    for k in 1..=network.spec.orderer_organization.orderers {
        let taken = existing.iter().any(|o| o.spec.consenter_id == k);
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

    let budget = budget(&ctx.budget_api, &name, ns, &owner);
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
fn borrowed(
    list: &[(String, raftnet_node::report::NodeReport)],
) -> Vec<(&str, &raftnet_node::report::NodeReport)> {
    list.iter().map(|(n, r)| (n.as_str(), r)).collect()
}

/// The network's status from its nodes' reports and its channels' health; None while some
/// node has not answered a first time (see `Hub::settled`).
async fn observe(ctx: &Context, network: &Network, ns: &str) -> Result<Option<NetworkStatus>> {
    let name = network.name_any();
    let orderers: Vec<Orderer> = of_network(ctx, ns, &name).await?;
    let orderer_names: Vec<String> = orderers.iter().map(|o| o.name_any()).collect();
    let peers: Vec<Peer> = of_network(ctx, ns, &name).await?;
    let peer_names: Vec<String> = peers.iter().map(|p| p.name_any()).collect();
    let all: Vec<String> = orderer_names.iter().chain(&peer_names).cloned().collect();
    ctx.hub.retain(ns, &name, &all);
    let unsettled = orderer_names
        .iter()
        .chain(&peer_names)
        .any(|n| !ctx.hub.settled(&NodeKey::new(ns, n)));
    if unsettled {
        return Ok(None);
    }
    let channel_list: Vec<Channel> = of_network(ctx, ns, &name).await?;
    let healths: Vec<(String, GroupHealth)> = channel_list
        .iter()
        .map(|c| (c.name_any(), channel_health(ctx, ns, c, &orderer_names)))
        .collect();
    let orderer_reports = reports(ctx, ns, &orderer_names);
    let peer_reports = reports(ctx, ns, &peer_names);
    let current = network.status.clone().unwrap_or_default();
    Ok(Some(network_status(
        &borrowed(&orderer_reports),
        &borrowed(&peer_reports),
        &healths,
        &current,
        &now(),
        network.metadata.generation,
    )))
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
    Ok(Action::requeue(if write_status(&ctx, &network).await? {
        SETTLED
    } else {
        super::WAITING
    }))
}

/// Writes the network's status from its nodes' latest reports (the fast path from their
/// streams, and the end of each reconcile); false while some node has not answered a first
/// time. A network the reconcile reported invalid is left to it.
pub async fn refresh_status(ctx: &Context, network: &Network) -> Result<bool> {
    let invalid = network
        .status
        .as_ref()
        .and_then(|s| raftnet_crds::status::find_condition(&s.conditions, READY))
        .is_some_and(|c| {
            c.reason == "InvalidSpec" && c.observed_generation == network.metadata.generation
        });
    if invalid {
        return Ok(true);
    }
    write_status(ctx, network).await
}

/// Writes the network's status from its nodes' latest reports; false while some node has not
/// answered a first time.
async fn write_status(ctx: &Context, network: &Network) -> Result<bool> {
    let ns = namespace(network)?;
    let Some(status) = observe(ctx, network, &ns).await? else {
        return Ok(false);
    };
    let api: Api<Network> = Api::namespaced(ctx.client.clone(), &ns);
    apply_status(&api, network, network.status.as_ref(), &status).await?;
    Ok(true)
}
