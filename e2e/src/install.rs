//! Installing the operator from the chart: `helm install raftnet-operator charts/raftnet-operator`,
//! through the helm binary where there is one, or through the Helm library wheel
//! (`e2e/cluster/helm.py`) where there is none. `RAFTNET_HELM` overrides the command.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::Api;
use tokio::process::Command;

use crate::cluster::Cluster;
use crate::wait;

pub const OPERATOR_NAMESPACE: &str = "raftnet-system";
pub const RELEASE: &str = "raftnet-operator";
pub const OPERATOR_DEPLOYMENT: &str = "raftnet-operator";

/// The repository's root (the e2e crate's parent).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The images the suite runs: `raftnet/node:VERSION` unless `RAFTNET_E2E_NODE_IMAGE` says
/// another (the operator's image is the chart's default for the same version).
pub fn node_image() -> String {
    std::env::var("RAFTNET_E2E_NODE_IMAGE")
        .unwrap_or_else(|_| format!("raftnet/node:{}", env!("CARGO_PKG_VERSION")))
}

/// The helm command: `RAFTNET_HELM`, else `helm` if on PATH, else helm.py in its venv.
async fn helm_command() -> anyhow::Result<Vec<String>> {
    if let Ok(cmd) = std::env::var("RAFTNET_HELM") {
        return Ok(cmd.split_whitespace().map(String::from).collect());
    }
    if Command::new("helm")
        .arg("version")
        .output()
        .await
        .is_ok_and(|o| o.status.success())
    {
        return Ok(vec!["helm".into()]);
    }
    let venv = repo_root().join("e2e/cluster/helm-venv.sh");
    let out = Command::new(&venv)
        .output()
        .await
        .with_context(|| format!("cannot run {}", venv.display()))?;
    if !out.status.success() {
        bail!(
            "no helm: {} failed: {}",
            venv.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let python = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let script = repo_root().join("e2e/cluster/helm.py");
    Ok(vec![python, script.display().to_string()])
}

/// Runs helm with `args`; its stdout.
pub async fn helm(args: &[&str]) -> anyhow::Result<String> {
    let cmd = helm_command().await?;
    let out = Command::new(&cmd[0])
        .args(&cmd[1..])
        .args(args)
        .current_dir(repo_root())
        .output()
        .await
        .with_context(|| format!("cannot run {}", cmd.join(" ")))?;
    if !out.status.success() {
        bail!(
            "`helm {}` failed: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim(),
            String::from_utf8_lossy(&out.stdout).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Installs the chart unless the operator already runs; waits until it is available.
/// Ok(true) if this call installed it.
pub async fn ensure_operator(cluster: &Cluster) -> anyhow::Result<bool> {
    let deployments: Api<Deployment> = Api::namespaced(cluster.client.clone(), OPERATOR_NAMESPACE);
    let installed = if deployments.get_opt(OPERATOR_DEPLOYMENT).await?.is_none() {
        helm(&[
            "install",
            RELEASE,
            "charts/raftnet-operator",
            "--namespace",
            OPERATOR_NAMESPACE,
            "--create-namespace",
        ])
        .await?;
        true
    } else {
        false
    };
    operator_available(cluster).await?;
    Ok(installed)
}

/// Waits until the operator's Deployment has an available, up-to-date replica.
pub async fn operator_available(cluster: &Cluster) -> anyhow::Result<()> {
    let deployments: Api<Deployment> = Api::namespaced(cluster.client.clone(), OPERATOR_NAMESPACE);
    wait::until(
        "the operator Deployment available",
        Duration::from_secs(180),
        || async {
            let d = deployments.get(OPERATOR_DEPLOYMENT).await?;
            let s = d.status.unwrap_or_default();
            let ready = s.available_replicas.unwrap_or(0) >= 1
                && s.updated_replicas.unwrap_or(0) >= 1
                && s.unavailable_replicas.unwrap_or(0) == 0;
            Ok(ready.then_some(()))
        },
    )
    .await
}
