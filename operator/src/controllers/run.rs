//! Runs the four controllers until shutdown: each watches its resource and what it owns,
//! and is also woken by the hub when a node's status changes.

use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt};
use raftnet_crds::{Channel, Network, Orderer, Peer};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio_stream::wrappers::UnboundedReceiverStream;

use super::{channel, error_policy, network, node};
use crate::{Context, Error};

/// Where the hub's wake-ups arrive, one receiver per controller.
pub struct Wakeups {
    pub orderers: UnboundedReceiver<ObjectRef<Orderer>>,
    pub peers: UnboundedReceiver<ObjectRef<Peer>>,
    pub channels: UnboundedReceiver<ObjectRef<Channel>>,
    pub networks: UnboundedReceiver<ObjectRef<Network>>,
}

fn api<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

fn log<K: kube::Resource>(
    result: Result<(ObjectRef<K>, Action), kube::runtime::controller::Error<Error, watcher::Error>>,
) {
    match result {
        Ok((object, _)) => tracing::debug!(%object, "reconciled"),
        // The error policy has logged it already.
        Err(kube::runtime::controller::Error::ReconcilerFailed(error, object)) => {
            tracing::debug!(%object, "reconcile failed: {error}")
        }
        Err(err) => tracing::warn!("{err}"),
    }
}

/// Runs every controller over `namespace` (all namespaces when None) until `shutdown`.
pub async fn run(
    ctx: Arc<Context>,
    wakeups: Wakeups,
    namespace: Option<String>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + Clone + 'static,
) {
    let client = ctx.client.clone();
    let ns = namespace.as_deref();
    let config = watcher::Config::default();

    let networks = Controller::new(api::<Network>(&client, ns), config.clone())
        .owns(api::<Secret>(&client, ns), config.clone())
        .owns(api::<Orderer>(&client, ns), config.clone())
        .owns(api::<Peer>(&client, ns), config.clone())
        .watches(api::<Channel>(&client, ns), config.clone(), |c: Channel| {
            let ns = c.namespace().unwrap_or_default();
            Some(ObjectRef::new(&c.spec.network).within(&ns))
        })
        .reconcile_on(UnboundedReceiverStream::new(wakeups.networks))
        .graceful_shutdown_on(shutdown.clone())
        .run(
            network::reconcile,
            |obj, err, ctx| error_policy("network", obj, err, ctx),
            ctx.clone(),
        )
        .for_each(|r| async move { log(r) });

    let orderers = Controller::new(api::<Orderer>(&client, ns), config.clone())
        .owns(api::<StatefulSet>(&client, ns), config.clone())
        .owns(api::<Service>(&client, ns), config.clone())
        .owns(api::<ConfigMap>(&client, ns), config.clone())
        .reconcile_on(UnboundedReceiverStream::new(wakeups.orderers))
        .graceful_shutdown_on(shutdown.clone())
        .run(
            node::reconcile_orderer,
            |obj, err, ctx| error_policy("orderer", obj, err, ctx),
            ctx.clone(),
        )
        .for_each(|r| async move { log(r) });

    let peers = Controller::new(api::<Peer>(&client, ns), config.clone())
        .owns(api::<StatefulSet>(&client, ns), config.clone())
        .owns(api::<Service>(&client, ns), config.clone())
        .owns(api::<ConfigMap>(&client, ns), config.clone())
        .reconcile_on(UnboundedReceiverStream::new(wakeups.peers))
        .graceful_shutdown_on(shutdown.clone())
        .run(
            node::reconcile_peer,
            |obj, err, ctx| error_policy("peer", obj, err, ctx),
            ctx.clone(),
        )
        .for_each(|r| async move { log(r) });

    let channels = Controller::new(api::<Channel>(&client, ns), config.clone())
        .owns(api::<ConfigMap>(&client, ns), config.clone())
        .reconcile_on(UnboundedReceiverStream::new(wakeups.channels))
        .graceful_shutdown_on(shutdown)
        .run(
            channel::reconcile,
            |obj, err, ctx| error_policy("channel", obj, err, ctx),
            ctx.clone(),
        )
        .for_each(|r| async move { log(r) });

    futures::join!(networks, orderers, peers, channels);
}
