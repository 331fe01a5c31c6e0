//! Where a node's files are in its pod: the config (a ConfigMap), the crypto material (a
//! Secret, read-only) and the data (a PersistentVolumeClaim). The node config names files
//! relative to its own directory, so the tests can lay out the same tree anywhere.

/// The directory everything is mounted under.
pub const ROOT: &str = "/var/lib/raftnet";
/// The ConfigMap's mount: `node.yaml` and the organisations' TLS CA certificates.
pub const CONFIG_DIR: &str = "config";
/// The node Secret's mount.
pub const CRYPTO_DIR: &str = "crypto";
/// The data volume's mount.
pub const DATA_DIR: &str = "data";
/// The node config's file name in [`CONFIG_DIR`].
pub const CONFIG_FILE: &str = "node.yaml";

/// The node config's path in the pod.
pub fn config_path() -> String {
    format!("{ROOT}/{CONFIG_DIR}/{CONFIG_FILE}")
}

/// The path of a mounted file relative to the config directory (`../crypto/tls-cert.pem`).
pub fn from_config(dir: &str, file: &str) -> String {
    format!("../{dir}/{file}")
}
