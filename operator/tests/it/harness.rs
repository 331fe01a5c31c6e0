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

/// The `raftnet-operator` binary as a process (loopback addressing, one namespace), serving
/// its metrics on a port of its own. Killed by PID when dropped.
pub struct OperatorProcess {
    child: std::process::Child,
    metrics: String,
}

impl OperatorProcess {
    pub fn start(server: &crate::apiserver::ApiServer, namespace: &str) -> Self {
        let port = raftnet_node::network::ports::free_ports(1).expect("a port")[0];
        let metrics = format!("127.0.0.1:{port}");
        let log = std::fs::File::create(server.dir.path().join("operator.log")).expect("log");
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_raftnet-operator"))
            .args(["--addressing", "loopback", "--namespace", namespace])
            .args(["--metrics-address", &metrics])
            .env("KUBECONFIG", &server.kubeconfig)
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("raftnet-operator starts");
        Self { child, metrics }
    }

    /// The sum of every sample of the metric lines starting with `prefix`; 0 while the
    /// endpoint does not answer.
    pub async fn metric_sum(&self, prefix: &str) -> f64 {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let Ok(mut stream) = tokio::net::TcpStream::connect(&self.metrics).await else {
            return 0.0;
        };
        let request = format!("GET /metrics HTTP/1.0\r\nHost: {}\r\n\r\n", self.metrics);
        if stream.write_all(request.as_bytes()).await.is_err() {
            return 0.0;
        }
        let mut text = String::new();
        let _ = stream.read_to_string(&mut text).await;
        text.lines()
            .filter(|l| l.starts_with(prefix))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    /// Resident memory of the process, from /proc.
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            .unwrap_or(0)
    }

    pub fn stop(&mut self) {
        crate::apiserver::stop(&mut self.child);
    }
}

impl Drop for OperatorProcess {
    fn drop(&mut self) {
        self.stop();
    }
}
