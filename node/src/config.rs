//! The node's configuration file (`raftnet-node orderer --config FILE`).
//!
//! Relative paths in the file are resolved against the file's own directory, so that a
//! generated network directory can be moved as a whole.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeConfig {
    /// The node's name, e.g. `orderer1`; used in logs and status.
    pub name: String,
    /// The organisation the node belongs to.
    pub msp_id: String,
    /// One address for every service: broadcast, deliver, cluster and admin.
    pub listen_address: String,
    /// The operations endpoint (plain HTTP): `/healthz`, `/readyz`, `/metrics`. None: off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operations_address: Option<String>,
    /// Where the node keeps its ledgers and Raft logs.
    pub data_dir: PathBuf,
    pub tls: TlsFiles,
    /// Peers only: the signing certificate (OU=peer) and key that endorsements are made with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<SigningFiles>,
    /// What the node accepts from the network (timeouts, connections, message sizes).
    #[serde(default, skip_serializing_if = "is_default")]
    pub limits: crate::limits::Limits,
}

fn is_default(limits: &crate::limits::Limits) -> bool {
    *limits == crate::limits::Limits::default()
}

/// A signing certificate and its private key (PEM).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SigningFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// PEM files for mutual TLS.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TlsFiles {
    /// The node's TLS certificate, presented as server and as client.
    pub cert: PathBuf,
    pub key: PathBuf,
    #[serde(rename = "rootCAs")]
    /// TLS root CAs whose certificates this node accepts from clients and servers.
    pub root_cas: Vec<PathBuf>,
    /// The TLS root CA of the node's own organisation: admin calls need a client certificate
    /// from it with OU=admin.
    #[serde(rename = "adminRootCA")]
    pub admin_root_ca: PathBuf,
}

/// Reads a YAML file of type `T`; errors name the file and `what` it is.
pub fn load_yaml<T: serde::de::DeserializeOwned>(path: &Path, what: &str) -> anyhow::Result<T> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read {what} {}", path.display()))?;
    serde_norway::from_str(&text).with_context(|| format!("{what} {} is not valid", path.display()))
}

/// A closure that makes relative paths relative to the directory of `file`.
pub fn relative_to(file: &Path) -> impl Fn(&mut PathBuf) + '_ {
    let base = file.parent().unwrap_or(Path::new("."));
    move |p: &mut PathBuf| {
        if p.is_relative() {
            *p = base.join(&*p);
        }
    }
}

impl NodeConfig {
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let mut cfg: NodeConfig = load_yaml(path, "node config")?;
        cfg.resolve_paths(path);
        Ok(cfg)
    }

    fn resolve_paths(&mut self, file: &Path) {
        let fix = relative_to(file);
        fix(&mut self.data_dir);
        fix(&mut self.tls.cert);
        fix(&mut self.tls.key);
        fix(&mut self.tls.admin_root_ca);
        self.tls.root_cas.iter_mut().for_each(&fix);
        if let Some(id) = &mut self.identity {
            fix(&mut id.cert);
            fix(&mut id.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_follow_the_config_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("orderer1.yaml");
        std::fs::write(
            &path,
            "name: orderer1\nmspId: OrdererMSP\nlistenAddress: 127.0.0.1:7050\ndataDir: data\n\
             tls: {cert: tls/cert.pem, key: /abs/key.pem, rootCAs: [ca.pem], adminRootCA: ca.pem}\n",
        )
        .unwrap();
        let cfg = NodeConfig::load(&path).unwrap();
        assert_eq!(cfg.data_dir, dir.path().join("data"));
        assert_eq!(cfg.tls.cert, dir.path().join("tls/cert.pem"));
        assert_eq!(cfg.tls.key, PathBuf::from("/abs/key.pem"));
    }

    #[test]
    fn unknown_field_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.yaml");
        std::fs::write(&path, "name: o\nmspId: M\nlistenAdress: x\n").unwrap();
        let err = format!("{:#}", NodeConfig::load(&path).unwrap_err());
        assert!(err.contains("listenAdress"), "{err}");
    }
}
