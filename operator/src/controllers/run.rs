//! Runs the four controllers until shutdown: each watches its resource and what it owns.
//! Beside them, a refresh loop per kind takes the hub's wake-ups (a node's status changed)
//! and rewrites only the status of the resources concerned: two API calls instead of a whole
//! reconcile, so a new leader reaches `kubectl get` fast.

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

/// Where the hub's wake-ups arrive: status refreshes by kind, and channel reconciles (a
/// contract deploy finished).
pub struct Wakeups {
    pub orderers: UnboundedReceiver<ObjectRef<Orderer>>,
    pub peers: UnboundedReceiver<ObjectRef<Peer>>,
    pub channels: UnboundedReceiver<ObjectRef<Channel>>,
    pub networks: UnboundedReceiver<ObjectRef<Network>>,
    pub channel_reconciles: UnboundedReceiver<ObjectRef<Channel>>,
}

/// Rewrites the status of each resource the hub names, until the wake-ups end. Wake-ups come
/// in bursts (an election touches every node): each burst is deduplicated first.
async fn refresh_loop<K, F, Fut>(
    ctx: Arc<Context>,
    mut wakeups: UnboundedReceiver<ObjectRef<K>>,
    refresh: F,
) where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
    F: Fn(Arc<Context>, K) -> Fut,
    Fut: std::future::Future<Output = crate::Result<()>>,
{
    while let Some(first) = wakeups.recv().await {
        let mut burst = vec![first];
        while let Ok(more) = wakeups.try_recv() {
            if !burst.contains(&more) {
                burst.push(more);
            }
        }
        // Different resources at once: one slow API call must not hold the others back.
        let refreshes = burst.into_iter().map(|object| {
            let ctx = ctx.clone();
            let refresh = &refresh;
            async move {
                let Some(ns) = object.namespace.clone() else {
                    return;
                };
                let api: Api<K> = Api::namespaced(ctx.client.clone(), &ns);
                let result = match api.get_opt(&object.name).await {
                    Ok(Some(found)) => refresh(ctx, found).await,
                    Ok(None) => Ok(()),
                    Err(err) => Err(err.into()),
                };
                if let Err(err) = result {
                    tracing::debug!(%object, "status refresh failed (the reconcile retries): {err}");
                }
            }
        });
        futures::future::join_all(refreshes).await;
    }
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
        .graceful_shutdown_on(shutdown.clone())
        .run(
            node::reconcile_peer,
            |obj, err, ctx| error_policy("peer", obj, err, ctx),
            ctx.clone(),
        )
        .for_each(|r| async move { log(r) });

    let channels = Controller::new(api::<Channel>(&client, ns), config.clone())
        .owns(api::<ConfigMap>(&client, ns), config.clone())
        .reconcile_on(UnboundedReceiverStream::new(wakeups.channel_reconciles))
        .graceful_shutdown_on(shutdown.clone())
        .run(
            channel::reconcile,
            |obj, err, ctx| error_policy("channel", obj, err, ctx),
            ctx.clone(),
        )
        .for_each(|r| async move { log(r) });

    let refreshes = async {
        futures::join!(
            refresh_loop(ctx.clone(), wakeups.orderers, |ctx, o| async move {
                node::write_orderer_status(&ctx, &o).await.map(|_| ())
            }),
            refresh_loop(ctx.clone(), wakeups.peers, |ctx, p| async move {
                node::write_peer_status(&ctx, &p).await.map(|_| ())
            }),
            refresh_loop(ctx.clone(), wakeups.channels, |ctx, c| async move {
                channel::refresh_status(&ctx, &c).await
            }),
            refresh_loop(ctx.clone(), wakeups.networks, |ctx, n| async move {
                network::refresh_status(&ctx, &n).await.map(|_| ())
            }),
        );
    };
    let refreshes = async {
        tokio::select! {
            _ = refreshes => {}
            _ = shutdown => {}
        }
    };
    futures::join!(networks, orderers, peers, channels, refreshes);
}
