//! The operations endpoint (Fabric's "operations service"): plain HTTP beside the gRPC
//! listener, for probes and scrapers. `/healthz` (liveness), `/readyz` (every joined channel
//! running), `/metrics` (Prometheus), and, in builds with the `failpoints` feature,
//! `/failpoints/NAME` for fault-injection tests.

pub mod metrics;
mod server;

pub use metrics::metrics;
pub use server::{Operations, Readiness};

/// How one channel of a node is doing, as `/readyz` reports it.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct ChannelHealth {
    pub channel: String,
    /// `running`, `halted` (orderers) or `commit-failing` (peers).
    pub state: String,
    /// Why it is not running; absent when it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl ChannelHealth {
    pub fn running(channel: &str) -> Self {
        Self {
            channel: channel.to_string(),
            state: "running".into(),
            reason: None,
        }
    }

    pub fn is_running(&self) -> bool {
        self.reason.is_none()
    }
}
