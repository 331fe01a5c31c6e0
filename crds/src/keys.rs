//! The key algorithm of an organisation's signing identities: ECDSA P-256 (Fabric's default)
//! or Ed25519 (accepted since Fabric 3.0; cheaper to sign and to check). CAs and TLS keys stay
//! P-256 either way.

use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum KeyAlgorithm {
    /// ECDSA over P-256 with SHA-256 (Fabric's default).
    #[default]
    #[serde(rename = "ECDSA-P256")]
    EcdsaP256,
    /// Ed25519 (Fabric 3.0).
    Ed25519,
}

impl KeyAlgorithm {
    /// The name manifests and flags use.
    pub fn as_str(&self) -> &'static str {
        match self {
            KeyAlgorithm::EcdsaP256 => "ECDSA-P256",
            KeyAlgorithm::Ed25519 => "Ed25519",
        }
    }
}

impl fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for KeyAlgorithm {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "ECDSA-P256" => Ok(KeyAlgorithm::EcdsaP256),
            "Ed25519" => Ok(KeyAlgorithm::Ed25519),
            other => Err(format!(
                "{other:?} is not a key algorithm: use ECDSA-P256 or Ed25519"
            )),
        }
    }
}
