//! The tasks that keep the hub's views fresh: a `NodeInfo` poll per node and a `WatchStatus`
//! stream per node and channel, each reconnecting with capped exponential backoff. They run
//! until the hub aborts them (the node is forgotten or followed at a new address) or is gone.

use std::sync::Weak;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use raftnet_node::proto::admin::admin_client::AdminClient;
use raftnet_node::proto::admin::{ChannelStatusRequest, NodeInfoRequest};
use tokio::task::AbortHandle;
use tonic::transport::Channel;

use super::hub::{Hub, NodeTarget};

/// How long a node may take to answer `NodeInfo` before it counts as unreachable.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(1);
/// Between two `NodeInfo` polls of a node that answers (streams report changes at once; the
/// poll notices nodes without channels and certificate renewals).
const INFO_INTERVAL: Duration = Duration::from_secs(2);

fn backoff() -> impl Iterator<Item = Duration> {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(100))
        .with_max_delay(Duration::from_secs(2))
        .with_jitter()
        .without_max_times()
        .build()
}

fn client(target: &NodeTarget) -> Option<AdminClient<Channel>> {
    match target.tls.channel(&target.endpoint) {
        Ok(channel) => Some(AdminClient::new(channel)),
        Err(err) => {
            tracing::warn!(node = %target.key.name, endpoint = %target.endpoint, "cannot dial: {err:#}");
            None
        }
    }
}

pub(super) fn spawn_info(hub: Weak<Hub>, target: NodeTarget) -> AbortHandle {
    tokio::spawn(async move {
        let Some(mut admin) = client(&target) else {
            return;
        };
        let mut delays = backoff();
        loop {
            let answer =
                tokio::time::timeout(ANSWER_TIMEOUT, admin.node_info(NodeInfoRequest {})).await;
            let info = match answer {
                Ok(Ok(info)) => Some(info.into_inner()),
                Ok(Err(status)) => {
                    tracing::debug!(node = %target.key.name, "NodeInfo: {status}");
                    None
                }
                Err(_) => None,
            };
            let answered = info.is_some();
            // The hub is gone: the operator stopped.
            let Some(hub) = hub.upgrade() else { return };
            hub.record_info(&target.key, info);
            drop(hub);
            let pause = if answered {
                delays = backoff();
                INFO_INTERVAL
            } else {
                delays.next().unwrap_or(INFO_INTERVAL)
            };
            tokio::time::sleep(pause).await;
        }
    })
    .abort_handle()
}

pub(super) fn spawn_stream(hub: Weak<Hub>, target: NodeTarget, channel: String) -> AbortHandle {
    tokio::spawn(async move {
        let Some(mut admin) = client(&target) else {
            return;
        };
        let mut delays = backoff();
        loop {
            let request = ChannelStatusRequest {
                channel_id: channel.clone(),
            };
            // Whether the node itself went away (not merely a channel it has not joined).
            let mut lost = false;
            match admin.watch_status(request).await {
                Ok(stream) => {
                    let mut stream = stream.into_inner();
                    loop {
                        match stream.message().await {
                            Ok(Some(status)) => {
                                delays = backoff();
                                let Some(hub) = hub.upgrade() else { return };
                                hub.record_status(&target.key, &channel, Some(status));
                            }
                            Ok(None) => break,
                            Err(status) => {
                                lost = gone(&status);
                                break;
                            }
                        }
                    }
                }
                Err(status) => {
                    lost = gone(&status);
                    tracing::debug!(node = %target.key.name, %channel, "WatchStatus: {status}");
                }
            }
            // The node went away (or has not joined yet): it shows as unavailable until it
            // answers again.
            let Some(strong) = hub.upgrade() else { return };
            if lost {
                // Shown at once, not at the next NodeInfo poll.
                strong.record_info(&target.key, None);
            }
            strong.record_status(&target.key, &channel, None);
            drop(strong);
            tokio::time::sleep(delays.next().unwrap_or(Duration::from_secs(2))).await;
        }
    })
    .abort_handle()
}

/// Whether a failed call means the node cannot be reached (rather than refused the call).
fn gone(status: &tonic::Status) -> bool {
    matches!(
        status.code(),
        tonic::Code::Unavailable | tonic::Code::Unknown | tonic::Code::Cancelled
    )
}
