//! Starting the operator: the hub that follows the nodes, the context, the controllers.

use std::sync::Arc;

use kube::Client;
use tokio::sync::mpsc::unbounded_channel;

use crate::controllers::run::{run, Wakeups};
use crate::metrics::Metrics;
use crate::objects::budget::api_resource;
use crate::observe::{Hub, Triggers};
use crate::{Context, Result, Settings};

/// PodDisruptionBudget's API version on this server: `v1`, or `v1beta1` before 1.21.
pub async fn budget_version(client: &Client) -> &'static str {
    match client.list_api_group_resources("policy/v1").await {
        Ok(list)
            if list
                .resources
                .iter()
                .any(|r| r.kind == "PodDisruptionBudget") =>
        {
            "v1"
        }
        _ => "v1beta1",
    }
}

/// Runs the operator over `namespace` (all when None) until `shutdown` completes.
pub async fn run_operator(
    client: Client,
    settings: Settings,
    namespace: Option<String>,
    metrics: Arc<Metrics>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + Clone + 'static,
) -> Result<()> {
    let (orderers, orderer_wakeups) = unbounded_channel();
    let (peers, peer_wakeups) = unbounded_channel();
    let (channels, channel_wakeups) = unbounded_channel();
    let (networks, network_wakeups) = unbounded_channel();
    let (channel_reconciles, channel_reconcile_wakeups) = unbounded_channel();
    let hub = Hub::new(Triggers {
        orderers,
        peers,
        channels,
        networks,
        channel_reconciles,
    });
    let budget_api = api_resource(budget_version(&client).await);
    let ctx = Context::new(client, settings, hub, metrics, budget_api);
    run(
        ctx,
        Wakeups {
            orderers: orderer_wakeups,
            peers: peer_wakeups,
            channels: channel_wakeups,
            networks: network_wakeups,
            channel_reconciles: channel_reconcile_wakeups,
        },
        namespace,
        shutdown,
    )
    .await;
    Ok(())
}
