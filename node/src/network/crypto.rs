//! An organisation's CAs and the certificates issued from them, written as PEM files (keys
//! with mode 0600).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;

use super::profile::ClientProfile;
use crate::identity::{CertUsage, CertificateAuthority, IssuedCert, KeyAlgorithm, Role};

pub struct OrgMaterial {
    pub msp_id: String,
    pub dir: PathBuf,
    pub ca: CertificateAuthority,
    pub tls_ca: CertificateAuthority,
}

/// Writes a file; a secret (a private key) is created with mode 0600 from the start, so it is
/// never readable by others, not even between its write and a chmod.
pub fn write_file(path: &Path, contents: &[u8], secret: bool) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    let mode = if secret { 0o600 } else { 0o644 };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    // An existing file keeps its old mode through open: set it.
    file.set_permissions(std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("cannot set the mode of {}", path.display()))?;
    file.write_all(contents)
        .with_context(|| format!("cannot write {}", path.display()))
}

fn write_pair(dir: &Path, stem: &str, cert: &IssuedCert) -> anyhow::Result<(PathBuf, PathBuf)> {
    let c = dir.join(format!("{stem}-cert.pem"));
    let k = dir.join(format!("{stem}-key.pem"));
    write_file(&c, cert.cert_pem.as_bytes(), false)?;
    write_file(&k, cert.key_pem.as_bytes(), true)?;
    Ok((c, k))
}

impl OrgMaterial {
    /// New CAs for `msp_id`, written under `dir`, issuing certificates valid for
    /// `validity` (the CAs themselves are valid ten years), signing ones with `algorithm` keys.
    pub fn generate(
        msp_id: &str,
        dir: &Path,
        validity: Duration,
        algorithm: KeyAlgorithm,
    ) -> anyhow::Result<Self> {
        let ca = CertificateAuthority::generate(msp_id, &format!("ca.{}", msp_id.to_lowercase()))?
            .with_leaf_validity(validity)
            .with_signing_algorithm(algorithm);
        let tls_ca =
            CertificateAuthority::generate(msp_id, &format!("tlsca.{}", msp_id.to_lowercase()))?
                .with_leaf_validity(validity);
        write_file(&dir.join("ca-cert.pem"), ca.cert_pem().as_bytes(), false)?;
        write_file(&dir.join("ca-key.pem"), ca.key_pem().as_bytes(), true)?;
        write_file(
            &dir.join("tlsca-cert.pem"),
            tls_ca.cert_pem().as_bytes(),
            false,
        )?;
        write_file(
            &dir.join("tlsca-key.pem"),
            tls_ca.key_pem().as_bytes(),
            true,
        )?;
        Ok(Self {
            msp_id: msp_id.to_string(),
            dir: dir.to_path_buf(),
            ca,
            tls_ca,
        })
    }

    pub fn ca_path(&self) -> PathBuf {
        self.dir.join("ca-cert.pem")
    }

    pub fn tls_ca_path(&self) -> PathBuf {
        self.dir.join("tlsca-cert.pem")
    }

    /// A TLS server/client certificate for a node, valid for `hosts`.
    pub fn node_tls(
        &self,
        name: &str,
        role: Role,
        hosts: &[String],
        dir: &Path,
    ) -> anyhow::Result<(PathBuf, PathBuf)> {
        let cert = self.tls_ca.issue(name, role, CertUsage::Tls, hosts)?;
        write_pair(dir, "tls", &cert)
    }

    /// A node's signing certificate from the organisation's CA (a peer endorses with it),
    /// written as `sign-cert.pem` and `sign-key.pem` in `dir`.
    pub fn node_signing(
        &self,
        name: &str,
        role: Role,
        dir: &Path,
    ) -> anyhow::Result<(PathBuf, PathBuf)> {
        let cert = self.ca.issue(name, role, CertUsage::Signing, &[])?;
        write_pair(dir, "sign", &cert)
    }

    /// A user (client or admin): a signing certificate, a TLS client certificate and a
    /// profile file that the `raftnet` client reads. `tls_roots` are the roots it trusts.
    pub fn user(&self, name: &str, role: Role, tls_roots: &[PathBuf]) -> anyhow::Result<PathBuf> {
        let dir = self.dir.join("users").join(name);
        let sign = self.ca.issue(name, role, CertUsage::Signing, &[])?;
        let (cert, key) = write_pair(&dir, "sign", &sign)?;
        let tls = self
            .tls_ca
            .issue(name, role, CertUsage::Tls, &["localhost".to_string()])?;
        let (tls_cert, tls_key) = write_pair(&dir, "tls", &tls)?;
        let profile = ClientProfile {
            msp_id: self.msp_id.clone(),
            cert,
            key,
            tls_cert,
            tls_key,
            tls_root_cas: tls_roots.to_vec(),
        };
        let path = dir.join("profile.yaml");
        write_file(&path, serde_norway::to_string(&profile)?.as_bytes(), false)?;
        Ok(path)
    }
}
