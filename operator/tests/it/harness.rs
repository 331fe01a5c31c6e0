//! What the tests share: the operator run in-process against the test API server (loopback
//! addressing), applying manifests as `kubectl apply --server-side` does, and bounded waits.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::FutureExt;
use kube::api::{Api, Patch, PatchParams};
use kube::Client;
use raftnet_operator::metrics::Metrics;
use raftnet_operator::settings::NodeAddressing;
use raftnet_operator::Settings;

/// The operator, running until dropped (a restart is a drop and a new start).
pub struct Operator {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
    pub metrics: Arc<Metrics>,
}

impl Operator {
    pub fn start(client: &Client, namespace: Option<&str>) -> Self {
        // The operator's warnings in the test's output (shown when it fails).
        let _ = tracing_subscriber::fmt()
            .with_test_writer()
            .with_env_filter("warn,kube_client::client::tls=error,raftnet_operator=info")
            .try_init();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let shutdown = stopped.map(|_| ()).shared();
        let metrics = Arc::new(Metrics::default());
        let settings = Settings {
            addressing: NodeAddressing::Loopback,
            ..Settings::default()
        };
        let task = tokio::spawn(
            raftnet_operator::operator::run_operator(
                client.clone(),
                settings,
                namespace.map(str::to_owned),
                metrics.clone(),
                shutdown,
            )
            .map(|r| r.expect("operator runs")),
        );
        Self {
            stop: Some(stop),
            task,
            metrics,
        }
    }

    /// Stops the operator and waits until it has (at most 10 s).
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let task = std::mem::replace(&mut self.task, tokio::spawn(async {}));
        if tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .is_err()
        {
            panic!("the operator did not stop within 10 s");
        }
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Creates a namespace for a test.
pub async fn namespace(client: &Client, name: &str) {
    let api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    let ns =
        serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
    api.patch(name, &PatchParams::apply("test"), &Patch::Apply(&ns))
        .await
        .expect("namespace");
}

/// Applies every document of a manifest file in `namespace`, as `kubectl apply --server-side`.
pub async fn apply_manifests(client: &Client, namespace: &str, text: &str) {
    let manifests = raftnet_crds::load_manifests(text).expect("manifests parse");
    let params = PatchParams::apply("kubectl").force();
    for network in manifests.networks {
        let api: Api<raftnet_crds::Network> = Api::namespaced(client.clone(), namespace);
        let name = network.metadata.name.clone().unwrap();
        api.patch(&name, &params, &Patch::Apply(&network))
            .await
            .expect("apply network");
    }
    for channel in manifests.channels {
        let api: Api<raftnet_crds::Channel> = Api::namespaced(client.clone(), namespace);
        let name = channel.metadata.name.clone().unwrap();
        api.patch(&name, &params, &Patch::Apply(&channel))
            .await
            .expect("apply channel");
    }
}

/// The repository's file at `path` (relative to the workspace root).
pub fn repo_file(path: &str) -> String {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    std::fs::read_to_string(root.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Polls `check` every 50 ms until it returns Some, at most `timeout`; panics with `what` and
/// the last value seen otherwise.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let started = Instant::now();
    let mut last = String::new();
    while started.elapsed() < timeout {
        match check().await {
            Ok(value) => return value,
            Err(seen) => last = seen,
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out after {timeout:?} waiting for {what}; last seen: {last}");
}
