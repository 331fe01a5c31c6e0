//! `raftnet-operator`: runs raftnet's controllers against the cluster the kubeconfig (or the
//! pod's service account) names, and serves `/metrics` and `/healthz`.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::routing::get;
use clap::{Parser, ValueEnum};
use futures::FutureExt;
use raftnet_operator::metrics::Metrics;
use raftnet_operator::settings::NodeAddressing;
use raftnet_operator::Settings;

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Addressing {
    /// Nodes listen on 0.0.0.0 and are reached by their pods' DNS names (production).
    Cluster,
    /// Nodes listen on 127.0.0.1 ports the operator picks: for tests that run the nodes
    /// themselves without a kubelet.
    Loopback,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Parser)]
#[command(
    version,
    about = "raftnet's Kubernetes operator: runs Network, Orderer, Peer and Channel resources"
)]
struct Args {
    /// Watch only this namespace (all namespaces when unset).
    #[arg(long, env = "WATCH_NAMESPACE")]
    namespace: Option<String>,
    /// The node image when a Network names none.
    #[arg(long, env = "RAFTNET_NODE_IMAGE", default_value_t = Settings::default().node_image)]
    node_image: String,
    /// Pull policy of node images: Always, IfNotPresent or Never.
    #[arg(long, env = "RAFTNET_IMAGE_PULL_POLICY", default_value = "IfNotPresent", value_parser = ["Always", "IfNotPresent", "Never"])]
    image_pull_policy: String,
    /// How nodes are addressed.
    #[arg(
        long,
        env = "RAFTNET_ADDRESSING",
        value_enum,
        default_value = "cluster"
    )]
    addressing: Addressing,
    /// The cluster's DNS domain.
    #[arg(long, env = "RAFTNET_CLUSTER_DOMAIN", default_value = "cluster.local")]
    cluster_domain: String,
    /// Where to serve /metrics and /healthz.
    #[arg(long, env = "RAFTNET_METRICS_ADDRESS", default_value = "0.0.0.0:8080")]
    metrics_address: SocketAddr,
    /// Install (or update) the CRDs before starting; without CEL rules on servers before 1.25.
    #[arg(long)]
    install_crds: bool,
    #[arg(long, env = "RAFTNET_LOG_FORMAT", value_enum, default_value = "text")]
    log_format: LogFormat,
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,kube=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    init_logging(args.log_format);
    let client = kube::Client::try_default().await?;
    if args.install_crds {
        raftnet_operator::crd_install::install(&client).await?;
    }
    let settings = Settings {
        node_image: args.node_image,
        image_pull_policy: args.image_pull_policy,
        addressing: match args.addressing {
            Addressing::Cluster => NodeAddressing::ClusterDns {
                cluster_domain: args.cluster_domain,
            },
            Addressing::Loopback => NodeAddressing::Loopback,
        },
        ..Settings::default()
    };
    let metrics = Arc::new(Metrics::default());
    let served = metrics.clone();
    let app = axum::Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(move || async move { served.render() }));
    let listener = tokio::net::TcpListener::bind(args.metrics_address).await?;
    tracing::info!(address = %args.metrics_address, "serving /metrics and /healthz");
    let shutdown = shutdown_signal().boxed().shared();
    let server = axum::serve(listener, app).with_graceful_shutdown(shutdown.clone());
    tokio::spawn(async move {
        if let Err(err) = server.await {
            tracing::error!("metrics server: {err}");
        }
    });
    raftnet_operator::operator::run_operator(client, settings, args.namespace, metrics, shutdown)
        .await?;
    Ok(())
}
