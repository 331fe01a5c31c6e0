//! The four controllers and what they share. Each reconcile is idempotent and never sleeps:
//! it converges the objects, writes status from the nodes' latest views, and returns when to
//! look again. A restarted operator converges to the same objects.

pub mod address;
pub mod channel;
pub mod contracts;
pub mod network;
pub mod node;
pub mod run;

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::runtime::controller::Action;
use kube::{Api, ResourceExt};
use raftnet_crds::Network;

use crate::{Context, Error, Result};

/// When to look again at a resource that is settled (status changes come from the nodes'
/// streams, object changes from the watches; this catches anything else).
pub const SETTLED: Duration = Duration::from_secs(300);

/// When to look again at a resource waiting on something (a node to start, a Secret).
pub const WAITING: Duration = Duration::from_secs(2);

pub fn now() -> Time {
    Time(k8s_openapi::jiff::Timestamp::now())
}

/// The namespace of a namespaced resource.
pub fn namespace<K: ResourceExt>(obj: &K) -> Result<String> {
    obj.namespace()
        .ok_or_else(|| Error::InvalidSpec(format!("{} has no namespace", obj.name_any())))
}

/// The network a resource names, or `Waiting` naming it.
pub async fn network_of(ctx: &Context, namespace: &str, name: &str) -> Result<Network> {
    let api: Api<Network> = Api::namespaced(ctx.client.clone(), namespace);
    api.get_opt(name).await?.ok_or_else(|| {
        Error::Waiting(format!(
            "Network {name} does not exist in namespace {namespace}"
        ))
    })
}

/// The resources of one kind that belong to `network` in `namespace` (by their
/// `spec.network`), sorted by name.
pub async fn of_network<K>(ctx: &Context, namespace: &str, network: &str) -> Result<Vec<K>>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + InNetwork,
{
    let api: Api<K> = Api::namespaced(ctx.client.clone(), namespace);
    let mut items: Vec<K> = api
        .list(&kube::api::ListParams::default())
        .await?
        .items
        .into_iter()
        .filter(|item| item.network() == network)
        .collect();
    items.sort_by_key(|item| item.name_any());
    Ok(items)
}

/// A resource that names its network.
pub trait InNetwork {
    fn network(&self) -> &str;
}

impl InNetwork for raftnet_crds::Orderer {
    fn network(&self) -> &str {
        &self.spec.network
    }
}

impl InNetwork for raftnet_crds::Peer {
    fn network(&self) -> &str {
        &self.spec.network
    }
}

impl InNetwork for raftnet_crds::Channel {
    fn network(&self) -> &str {
        &self.spec.network
    }
}

/// The error policy of every controller: count the error; an invalid spec waits for a change
/// (its condition says why), a missing dependency is looked at again shortly, anything else is
/// logged, published as a `ReconcileFailed` event on the resource and retried.
pub fn error_policy<K>(
    controller: &'static str,
    obj: Arc<K>,
    error: &Error,
    ctx: Arc<Context>,
) -> Action
where
    K: kube::Resource<DynamicType = ()> + Send + Sync + 'static,
{
    ctx.metrics
        .failures
        .with_label_values(&[controller, error.metric_label()])
        .inc();
    match error {
        Error::InvalidSpec(_) => Action::await_change(),
        Error::Waiting(_) => Action::requeue(WAITING),
        _ => {
            tracing::warn!(controller, "reconcile failed: {error}");
            let note = error.to_string();
            tokio::spawn(async move {
                ctx.event(
                    &*obj,
                    kube::runtime::events::EventType::Warning,
                    "ReconcileFailed",
                    note,
                )
                .await;
            });
            Action::requeue(Duration::from_secs(5))
        }
    }
}
