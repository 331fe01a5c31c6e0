//! A node's config file and the ConfigMap that carries it with the TLS roots it trusts.

use std::collections::BTreeMap;
use std::path::PathBuf;

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use raftnet_node::config::{NodeConfig, SigningFiles, TlsFiles};
use raftnet_node::network::{NodeAddress, OrgCas};

use super::layout::{from_config, CONFIG_FILE, CRYPTO_DIR, DATA_DIR};
use super::NodeObjects;
use crate::labels::node_labels;
use crate::pki::{tls_root_file, SIGN_CERT, SIGN_KEY, TLS_CERT, TLS_KEY};
use crate::Result;

/// The ConfigMap of a node's config: `orderer1-config`.
pub fn config_map_name(node: &str) -> String {
    format!("{node}-config")
}

/// The node's config: where it listens, its files in the pod's layout, the roots it trusts
/// (every organisation's TLS CA) and its own organisation's, whose admins may call it.
pub fn node_config(node: &NodeObjects, address: &NodeAddress, roots: &[OrgCas]) -> NodeConfig {
    let crypto = |file| PathBuf::from(from_config(CRYPTO_DIR, file));
    NodeConfig {
        name: node.name.clone(),
        msp_id: node.msp_id.clone(),
        listen_address: address.listen.clone(),
        operations_address: Some(address.operations.clone()),
        data_dir: PathBuf::from(format!("../{DATA_DIR}")),
        tls: TlsFiles {
            cert: crypto(TLS_CERT),
            key: crypto(TLS_KEY),
            root_cas: roots
                .iter()
                .map(|r| PathBuf::from(tls_root_file(&r.msp_id)))
                .collect(),
            admin_root_ca: PathBuf::from(tls_root_file(&node.msp_id)),
        },
        identity: Some(SigningFiles {
            cert: crypto(SIGN_CERT),
            key: crypto(SIGN_KEY),
        }),
        limits: Default::default(),
    }
}

/// The ConfigMap with `node.yaml` and one `tlsca-<MSP>.pem` per organisation.
pub fn config_map(node: &NodeObjects, config: &NodeConfig, roots: &[OrgCas]) -> Result<ConfigMap> {
    let mut data = BTreeMap::new();
    data.insert(
        CONFIG_FILE.to_owned(),
        serde_norway::to_string(config).map_err(|e| crate::Error::Pki(e.to_string()))?,
    );
    for root in roots {
        data.insert(
            tls_root_file(&root.msp_id),
            String::from_utf8_lossy(&root.tls_ca_cert_pem).into_owned(),
        );
    }
    Ok(ConfigMap {
        metadata: ObjectMeta {
            name: Some(config_map_name(&node.name)),
            namespace: Some(node.namespace.clone()),
            labels: Some(node_labels(&node.network, node.kind.as_str(), &node.name)),
            owner_references: Some(vec![node.owner.clone()]),
            ..ObjectMeta::default()
        },
        data: Some(data),
        ..ConfigMap::default()
    })
}
