//! The seed lab on a Kubernetes cluster, narrated for a person to watch (in another terminal:
//! `kubectl get orderers -n raftnet-lab -w`, or `kubectl logs -f raftnet-cli -n raftnet-lab`).
//!
//!   cargo run -p raftnet-e2e --bin kube-lab [-- --namespace NS]
//!
//! Installs the operator from the chart unless it runs, applies `deploy/first-network.yaml` in
//! the namespace (default raftnet-lab), plays the twelve steps and leaves the network running.

use std::time::Instant;

use clap::Parser;

use raftnet_e2e::cluster::Cluster;
use raftnet_e2e::install;
use raftnet_e2e::kubectl::Kubectl;
use raftnet_e2e::lab::Lab;

/// The seed lab on the cluster KUBECONFIG names, narrated.
#[derive(Parser)]
struct Args {
    /// The namespace the lab's network runs in (created if missing).
    #[arg(long, default_value = "raftnet-lab")]
    namespace: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let namespace = Args::parse().namespace;
    let cluster = Cluster::connect(&namespace).await?;
    let kubectl = Kubectl::new("default");
    if kubectl
        .run(&["get", "namespace", &namespace])
        .await
        .is_err()
    {
        kubectl.run(&["create", "namespace", &namespace]).await?;
    }
    if install::ensure_operator(&cluster).await? {
        println!("installed the operator: helm install raftnet-operator charts/raftnet-operator -n raftnet-system");
    }
    println!("The seed lab on Kubernetes, in namespace {namespace}\n");
    let started = Instant::now();
    let mut stdout = std::io::stdout();
    let mut lab = Lab::new(cluster, &install::node_image(), &mut stdout);
    lab.play().await;
    let passed = lab.passed();
    lab.summary(started.elapsed());
    println!("\nThe network keeps running: kubectl get orderers -n {namespace}; kubectl delete namespace {namespace}");
    anyhow::ensure!(passed, "the lab failed: see the FAIL lines above");
    Ok(())
}
