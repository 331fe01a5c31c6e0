//! A client identity in one file: who signs (MSP id, certificate, key) and how to connect
//! (TLS client certificate and trusted roots). `raftnet --identity FILE` reads it, and
//! `raftnet --msp-dir DIR` reads `DIR/profile.yaml` (a user directory of a generated network,
//! `orgs/<MSP>/users/<name>/`, the way Fabric's CLI takes an MSP directory).

use std::path::{Path, PathBuf};

use anyhow::bail;
use serde::{Deserialize, Serialize};

use crate::config::{load_yaml, relative_to, TlsFiles};
use crate::identity::SigningIdentity;
use crate::tls::TlsMaterial;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClientProfile {
    pub msp_id: String,
    /// Signing certificate and key.
    pub cert: PathBuf,
    pub key: PathBuf,
    pub tls_cert: PathBuf,
    pub tls_key: PathBuf,
    #[serde(rename = "tlsRootCAs")]
    pub tls_root_cas: Vec<PathBuf>,
}

/// The profile's file name inside a user directory.
pub const PROFILE_FILE: &str = "profile.yaml";

impl ClientProfile {
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let mut p: ClientProfile = load_yaml(path, "identity profile")?;
        let fix = relative_to(path);
        fix(&mut p.cert);
        fix(&mut p.key);
        fix(&mut p.tls_cert);
        fix(&mut p.tls_key);
        p.tls_root_cas.iter_mut().for_each(fix);
        Ok(p)
    }

    /// The profile of a user directory (`orgs/<MSP>/users/<name>/`).
    pub fn from_user_dir(dir: &Path) -> anyhow::Result<Self> {
        if dir.is_file() {
            bail!(
                "--msp-dir {} is a file; --msp-dir takes a user directory (for a profile file use --identity FILE)",
                dir.display()
            );
        }
        if !dir.is_dir() {
            bail!("--msp-dir {}: no such directory", dir.display());
        }
        let path = dir.join(PROFILE_FILE);
        if !path.is_file() {
            bail!(
                "--msp-dir {}: no {PROFILE_FILE} in it; pass a user directory of a generated network, e.g. orgs/Org1MSP/users/admin/",
                dir.display()
            );
        }
        Self::load(&path)
    }

    pub fn signer(&self) -> anyhow::Result<SigningIdentity> {
        Ok(SigningIdentity::load(&self.msp_id, &self.cert, &self.key)?)
    }

    pub fn tls(&self) -> anyhow::Result<TlsMaterial> {
        TlsMaterial::load(&TlsFiles {
            cert: self.tls_cert.clone(),
            key: self.tls_key.clone(),
            root_cas: self.tls_root_cas.clone(),
            admin_root_ca: PathBuf::new(),
        })
    }
}
