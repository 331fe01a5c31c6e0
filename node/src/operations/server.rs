//! The HTTP server of the operations endpoint.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Context;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use super::ChannelHealth;

/// What a node tells `/readyz` about its channels.
pub trait Readiness: Send + Sync + 'static {
    fn channels(&self) -> Vec<ChannelHealth>;
}

/// The operations endpoint of one node.
#[derive(Clone)]
pub struct Operations {
    readiness: Arc<dyn Readiness>,
    /// Set while the gRPC server runs: before it starts and once it stops, the node serves
    /// nothing.
    serving: Arc<AtomicBool>,
}

impl Operations {
    pub fn new(readiness: Arc<dyn Readiness>) -> Self {
        Self {
            readiness,
            serving: Arc::default(),
        }
    }

    pub fn set_serving(&self, serving: bool) {
        self.serving.store(serving, Ordering::Relaxed);
    }

    /// Binds `address`; the error names the config field.
    pub async fn bind(address: &str) -> anyhow::Result<tokio::net::TcpListener> {
        tokio::net::TcpListener::bind(address)
            .await
            .with_context(|| {
                format!("cannot listen on operationsAddress {address} (is the port in use?)")
            })
    }

    /// Serves on `listener` until the process ends.
    pub fn spawn(&self, listener: tokio::net::TcpListener) {
        let router = Router::new()
            .route("/healthz", get(healthz))
            .route("/readyz", get(readyz))
            .route("/metrics", get(metrics));
        let router = failpoints::routes(router).with_state(self.clone());
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, router).await {
                tracing::error!(error = %e, "operations endpoint failed");
            }
        });
    }
}

/// Liveness: fails only when the node serves nothing (its gRPC server is not running).
async fn healthz(State(ops): State<Operations>) -> Response {
    if ops.serving.load(Ordering::Relaxed) {
        (StatusCode::OK, Json(json!({"status": "OK"}))).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "unavailable", "reason": "the gRPC server is not running"})),
        )
            .into_response()
    }
}

/// Readiness: the node serves gRPC and every joined channel runs. A follower waiting for an
/// election is running: readiness does not follow Raft roles.
async fn readyz(State(ops): State<Operations>) -> Response {
    let channels = ops.readiness.channels();
    let mut reasons: Vec<String> = channels
        .iter()
        .filter_map(|c| {
            c.reason
                .as_ref()
                .map(|r| format!("channel {}: {r}", c.channel))
        })
        .collect();
    if !ops.serving.load(Ordering::Relaxed) {
        reasons.insert(0, "the gRPC server is not running".into());
    }
    let ready = reasons.is_empty();
    let body = json!({
        "status": if ready { "ready" } else { "not ready" },
        "reasons": reasons,
        "channels": channels,
    });
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(body)).into_response()
}

async fn metrics() -> Response {
    (
        [(header::CONTENT_TYPE, prometheus::TEXT_FORMAT)],
        super::metrics().render(),
    )
        .into_response()
}

#[cfg(feature = "failpoints")]
mod failpoints {
    //! `PUT /failpoints/NAME` with the `fail` crate's action text as body (e.g. `return`,
    //! `panic`, `off`) sets a failpoint; `DELETE` removes it. TiKV's status server does the same.

    use axum::extract::Path;
    use axum::http::StatusCode;
    use axum::routing::put;
    use axum::Router;

    use super::Operations;

    pub fn routes(r: Router<Operations>) -> Router<Operations> {
        r.route("/failpoints/{name}", put(set).delete(remove))
    }

    async fn set(Path(name): Path<String>, actions: String) -> (StatusCode, String) {
        match fail::cfg(name.clone(), actions.trim()) {
            Ok(()) => {
                tracing::warn!(failpoint = %name, actions = %actions.trim(), "failpoint set");
                (StatusCode::OK, String::new())
            }
            Err(e) => (StatusCode::BAD_REQUEST, e),
        }
    }

    async fn remove(Path(name): Path<String>) -> StatusCode {
        fail::remove(name);
        StatusCode::OK
    }
}

#[cfg(not(feature = "failpoints"))]
mod failpoints {
    use axum::Router;

    use super::Operations;

    pub fn routes(r: Router<Operations>) -> Router<Operations> {
        r
    }
}
