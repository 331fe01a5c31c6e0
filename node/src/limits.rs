//! What a node accepts from the network, before and after authentication: each a named
//! setting of the node config (`limits:`) with a default. A connection that never finishes its
//! TLS handshake is closed after `tlsHandshakeTimeout`; at most `maxConnections` are open at
//! once (more wait in the kernel's backlog); each carries at most `maxConcurrentStreams`
//! streams; a silent peer is dropped after `keepaliveInterval` + `keepaliveTimeout`; and each
//! service decodes no message larger than its own size, before any caller is authorised; an
//! orderer holds at most `maxPendingBytes` of envelopes not yet answered.

use std::time::Duration;

use raftnet_crds::{parse_duration, parse_size};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Limits {
    /// Longest a TLS handshake may take: `10s`.
    pub tls_handshake_timeout: String,
    /// Most connections open at once.
    pub max_connections: u32,
    /// Most concurrent HTTP/2 streams on one connection.
    pub max_concurrent_streams: u32,
    /// Between two HTTP/2 pings on a quiet connection: `30s`.
    pub keepalive_interval: String,
    /// How long a ping may go unanswered before the connection is dropped: `10s`.
    pub keepalive_timeout: String,
    /// Largest Broadcast/Deliver message (a transaction envelope): above the channels'
    /// `absoluteMaxBytes`.
    pub broadcast_message_size: String,
    /// Largest Cluster message (Raft traffic between orderers: carries blocks).
    pub cluster_message_size: String,
    /// Largest Admin, Endorser or Events message.
    pub control_message_size: String,
    /// Most bytes of envelopes an orderer holds between reading and answering them (validating,
    /// queued, waiting for their block); while full, Broadcast and Submit streams wait.
    pub max_pending_bytes: String,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            tls_handshake_timeout: "10s".into(),
            max_connections: 4096,
            max_concurrent_streams: 256,
            keepalive_interval: "30s".into(),
            keepalive_timeout: "10s".into(),
            broadcast_message_size: "16Mi".into(),
            cluster_message_size: "128Mi".into(),
            control_message_size: "4Mi".into(),
            max_pending_bytes: "64Mi".into(),
        }
    }
}

/// [`Limits`] parsed and checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CheckedLimits {
    pub tls_handshake_timeout: Duration,
    pub max_connections: usize,
    pub max_concurrent_streams: u32,
    pub keepalive_interval: Duration,
    pub keepalive_timeout: Duration,
    pub broadcast_message_size: usize,
    pub cluster_message_size: usize,
    pub control_message_size: usize,
    pub max_pending_bytes: usize,
}

/// Upper bounds, so that a typo cannot switch a limit off (or overflow a timer).
const MAX_DURATION: Duration = Duration::from_secs(3600);
const MAX_MESSAGE: u64 = 1 << 30;

impl Limits {
    /// The limits, or an error naming the setting and what it takes.
    pub fn check(&self) -> anyhow::Result<CheckedLimits> {
        let duration = |name: &str, value: &str| -> anyhow::Result<Duration> {
            let d = parse_duration(value).map_err(|e| anyhow::anyhow!("limits.{name}: {e}"))?;
            anyhow::ensure!(
                !d.is_zero() && d <= MAX_DURATION,
                "limits.{name}: {value} must be above zero and at most 1h"
            );
            Ok(d)
        };
        let size = |name: &str, value: &str| -> anyhow::Result<usize> {
            let s = parse_size(value).map_err(|e| anyhow::anyhow!("limits.{name}: {e}"))?;
            anyhow::ensure!(
                (1024..=MAX_MESSAGE).contains(&s),
                "limits.{name}: {value} must be between 1Ki and 1Gi"
            );
            Ok(s as usize)
        };
        anyhow::ensure!(
            self.max_connections >= 16,
            "limits.maxConnections: {} is too few for a node (its fellow nodes, peers and clients need at least 16)",
            self.max_connections
        );
        anyhow::ensure!(
            self.max_concurrent_streams >= 8,
            "limits.maxConcurrentStreams: {} is too few (a peer keeps a stream per channel)",
            self.max_concurrent_streams
        );
        Ok(CheckedLimits {
            tls_handshake_timeout: duration("tlsHandshakeTimeout", &self.tls_handshake_timeout)?,
            max_connections: self.max_connections as usize,
            max_concurrent_streams: self.max_concurrent_streams,
            keepalive_interval: duration("keepaliveInterval", &self.keepalive_interval)?,
            keepalive_timeout: duration("keepaliveTimeout", &self.keepalive_timeout)?,
            broadcast_message_size: size("broadcastMessageSize", &self.broadcast_message_size)?,
            cluster_message_size: size("clusterMessageSize", &self.cluster_message_size)?,
            control_message_size: size("controlMessageSize", &self.control_message_size)?,
            max_pending_bytes: size("maxPendingBytes", &self.max_pending_bytes)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_check_and_bad_values_are_named() {
        let checked = Limits::default().check().unwrap();
        assert_eq!(checked.tls_handshake_timeout, Duration::from_secs(10));
        assert_eq!(checked.broadcast_message_size, 16 << 20);
        let bad = Limits {
            keepalive_timeout: "0s".into(),
            ..Limits::default()
        };
        let err = bad.check().unwrap_err().to_string();
        assert!(err.contains("limits.keepaliveTimeout"), "{err}");
        let bad = Limits {
            cluster_message_size: "2Gi".into(),
            ..Limits::default()
        };
        assert!(bad
            .check()
            .unwrap_err()
            .to_string()
            .contains("limits.clusterMessageSize"));
        let bad = Limits {
            max_connections: 1,
            ..Limits::default()
        };
        assert!(bad
            .check()
            .unwrap_err()
            .to_string()
            .contains("limits.maxConnections"));
    }
}
