//! This node's (or client's) own identity: a certificate plus the private key that signs
//! envelopes and blocks. Signatures are ECDSA P-256 SHA-256, ASN.1 DER, as Fabric uses.

use std::path::Path;

use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, Ed25519KeyPair, KeyPair, ECDSA_P256_SHA256_ASN1_SIGNING};

use super::{decode_pem, parse_cert_der, subject_string, IdentityError};
use crate::proto::common::SerializedIdentity;

/// A certificate and its private key, ready to sign. `Send + Sync`: share it in an `Arc`.
pub struct SigningIdentity {
    msp_id: String,
    cert_pem: Vec<u8>,
    key: Key,
    rng: SystemRandom,
}

enum Key {
    EcdsaP256(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

impl Key {
    /// A PKCS#8 P-256 or Ed25519 key.
    fn from_pkcs8(der: &[u8], rng: &SystemRandom) -> Result<Self, IdentityError> {
        if let Ok(k) = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, der, rng) {
            return Ok(Key::EcdsaP256(k));
        }
        Ed25519KeyPair::from_pkcs8_maybe_unchecked(der)
            .map(Key::Ed25519)
            .map_err(|e| {
                IdentityError::BadKey(format!(
                    "neither a PKCS#8 ECDSA P-256 nor an Ed25519 private key ({e})"
                ))
            })
    }

    fn public_key(&self) -> &[u8] {
        match self {
            Key::EcdsaP256(k) => k.public_key().as_ref(),
            Key::Ed25519(k) => k.public_key().as_ref(),
        }
    }
}

impl std::fmt::Debug for SigningIdentity {
    /// Never prints the private key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningIdentity")
            .field("msp_id", &self.msp_id)
            .finish_non_exhaustive()
    }
}

impl SigningIdentity {
    /// Builds an identity from a PEM certificate and PKCS#8 PEM private key (as rcgen writes).
    /// Checks that the key is P-256 and belongs to the certificate, so a mismatched pair
    /// fails here rather than producing signatures nobody can verify.
    pub fn from_pem(msp_id: &str, cert_pem: &[u8], key_pem: &[u8]) -> Result<Self, IdentityError> {
        if msp_id.trim().is_empty() {
            return Err(IdentityError::Certificate(
                "signing identity has an empty MSP id".into(),
            ));
        }
        let cert_der = decode_pem(cert_pem, &["CERTIFICATE"], "signing certificate")
            .map_err(IdentityError::Certificate)?;
        let cert =
            parse_cert_der(&cert_der, "signing certificate").map_err(IdentityError::Certificate)?;
        let key_der = decode_pem(key_pem, &["PRIVATE KEY"], "private key").map_err(|e| {
            IdentityError::BadKey(format!(
                "{e} (a PKCS#8 key is needed; convert with `openssl pkcs8 -topk8 -nocrypt`)"
            ))
        })?;
        let rng = SystemRandom::new();
        let key = Key::from_pkcs8(&key_der, &rng)?;
        if key.public_key() != cert.public_key().subject_public_key.data.as_ref() {
            return Err(IdentityError::BadKey(format!(
                "private key does not belong to certificate '{}'",
                subject_string(&cert)
            )));
        }
        Ok(Self {
            msp_id: msp_id.to_string(),
            cert_pem: cert_pem.to_vec(),
            key,
            rng,
        })
    }

    /// Reads the certificate and key files; errors name the file that is missing or bad.
    pub fn load(msp_id: &str, cert_path: &Path, key_path: &Path) -> Result<Self, IdentityError> {
        let read = |p: &Path| {
            std::fs::read(p).map_err(|source| IdentityError::Io {
                path: p.to_path_buf(),
                source,
            })
        };
        let cert = read(cert_path)?;
        let key = read(key_path)?;
        Self::from_pem(msp_id, &cert, &key).map_err(|e| match e {
            IdentityError::Certificate(m) => {
                IdentityError::Certificate(format!("{}: {m}", cert_path.display()))
            }
            IdentityError::BadKey(m) => IdentityError::BadKey(format!(
                "{} (with certificate {}): {m}",
                key_path.display(),
                cert_path.display()
            )),
            other => other,
        })
    }

    pub fn msp_id(&self) -> &str {
        &self.msp_id
    }

    pub fn cert_pem(&self) -> &[u8] {
        &self.cert_pem
    }

    /// A signature over `msg`: ECDSA P-256 SHA-256 (ASN.1 DER) or Ed25519, as the key is.
    pub fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, IdentityError> {
        match &self.key {
            Key::EcdsaP256(k) => {
                k.sign(&self.rng, msg)
                    .map(|s| s.as_ref().to_vec())
                    .map_err(|_| {
                        IdentityError::BadKey("signing failed (system random source error)".into())
                    })
            }
            Key::Ed25519(k) => Ok(k.sign(msg).as_ref().to_vec()),
        }
    }

    /// The algorithm of its key.
    pub fn algorithm(&self) -> super::KeyAlgorithm {
        match self.key {
            Key::EcdsaP256(_) => super::KeyAlgorithm::EcdsaP256,
            Key::Ed25519(_) => super::KeyAlgorithm::Ed25519,
        }
    }

    /// The wire form others use to validate this identity.
    pub fn serialize(&self) -> SerializedIdentity {
        SerializedIdentity {
            msp_id: self.msp_id.clone(),
            cert_pem: self.cert_pem.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::{CertUsage, CertificateAuthority, Role};
    use ring::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_ASN1};

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn is_send_sync() {
        assert_send_sync::<SigningIdentity>();
    }

    #[test]
    fn signs_verifiably_and_serializes() {
        let ca = CertificateAuthority::generate("Org1", "ca.org1").unwrap();
        let leaf = ca
            .issue("client0", Role::Client, CertUsage::Signing, &[])
            .unwrap();
        let id =
            SigningIdentity::from_pem("Org1MSP", leaf.cert_pem.as_bytes(), leaf.key_pem.as_bytes())
                .unwrap();
        assert_eq!(id.msp_id(), "Org1MSP");
        assert_eq!(id.cert_pem(), leaf.cert_pem.as_bytes());
        let sig = id.sign(b"hello").unwrap();
        // DER SEQUENCE
        assert_eq!(sig[0], 0x30);
        let pk = UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, id.key.public_key());
        pk.verify(b"hello", &sig).unwrap();
        assert!(pk.verify(b"hellO", &sig).is_err());
        let ser = id.serialize();
        assert_eq!(ser.msp_id, "Org1MSP");
        assert_eq!(ser.cert_pem, leaf.cert_pem.as_bytes());
    }

    #[test]
    fn ed25519_identities_sign_and_the_msp_checks_them() {
        use crate::identity::{KeyAlgorithm, MspSet};
        use crate::proto::common::Organization;
        let ca = CertificateAuthority::generate("Org1", "ca.org1")
            .unwrap()
            .with_signing_algorithm(KeyAlgorithm::Ed25519);
        let leaf = ca
            .issue("client0", Role::Client, CertUsage::Signing, &[])
            .unwrap();
        let id =
            SigningIdentity::from_pem("Org1MSP", leaf.cert_pem.as_bytes(), leaf.key_pem.as_bytes())
                .unwrap();
        assert_eq!(id.algorithm(), KeyAlgorithm::Ed25519);
        let sig = id.sign(b"hello").unwrap();
        assert_eq!(sig.len(), 64, "an Ed25519 signature");
        let msps = MspSet::new(&[Organization {
            msp_id: "Org1MSP".into(),
            root_cert_pem: ca.cert_pem().as_bytes().to_vec(),
            tls_root_cert_pem: ca.cert_pem().as_bytes().to_vec(),
        }])
        .unwrap();
        let verified = msps.verify(&id.serialize(), b"hello", &sig).unwrap();
        assert_eq!(verified.algorithm(), KeyAlgorithm::Ed25519);
        assert_eq!(verified.role, Some(Role::Client));
        let mut forged = sig.clone();
        forged[10] ^= 0x01;
        assert!(msps.verify(&id.serialize(), b"hello", &forged).is_err());
        assert!(msps.verify(&id.serialize(), b"hellO", &sig).is_err());
        // TLS certificates stay P-256 whatever the signing algorithm.
        let tls = ca
            .issue("peer0", Role::Peer, CertUsage::Tls, &["localhost".into()])
            .unwrap();
        assert!(
            SigningIdentity::from_pem("Org1MSP", tls.cert_pem.as_bytes(), tls.key_pem.as_bytes())
                .unwrap()
                .algorithm()
                == KeyAlgorithm::EcdsaP256
        );
    }

    #[test]
    fn mismatched_key_is_rejected() {
        let ca = CertificateAuthority::generate("Org1", "ca.org1").unwrap();
        let a = ca
            .issue("a", Role::Client, CertUsage::Signing, &[])
            .unwrap();
        let b = ca
            .issue("b", Role::Client, CertUsage::Signing, &[])
            .unwrap();
        let err = SigningIdentity::from_pem("Org1MSP", a.cert_pem.as_bytes(), b.key_pem.as_bytes())
            .unwrap_err();
        assert!(matches!(err, IdentityError::BadKey(_)));
        assert!(err.to_string().contains("does not belong"), "{err}");
        assert!(err.to_string().contains("CN=a"), "{err}");
    }

    #[test]
    fn bad_inputs_are_named() {
        let ca = CertificateAuthority::generate("Org1", "ca.org1").unwrap();
        let a = ca
            .issue("a", Role::Client, CertUsage::Signing, &[])
            .unwrap();
        // Key passed as cert and vice versa.
        let err = SigningIdentity::from_pem("Org1MSP", a.key_pem.as_bytes(), a.cert_pem.as_bytes())
            .unwrap_err();
        assert!(matches!(err, IdentityError::Certificate(_)), "{err}");
        assert!(err.to_string().contains("'PRIVATE KEY'"), "{err}");
        let err =
            SigningIdentity::from_pem("Org1MSP", a.cert_pem.as_bytes(), a.cert_pem.as_bytes())
                .unwrap_err();
        assert!(matches!(err, IdentityError::BadKey(_)), "{err}");
        let err =
            SigningIdentity::from_pem("", a.cert_pem.as_bytes(), a.key_pem.as_bytes()).unwrap_err();
        assert!(err.to_string().contains("empty MSP id"), "{err}");
    }

    #[test]
    fn load_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let ca = CertificateAuthority::generate("Org1", "ca.org1").unwrap();
        let a = ca.issue("a", Role::Peer, CertUsage::Signing, &[]).unwrap();
        let cert = dir.path().join("cert.pem");
        let key = dir.path().join("key.pem");
        std::fs::write(&cert, &a.cert_pem).unwrap();
        std::fs::write(&key, &a.key_pem).unwrap();
        let id = SigningIdentity::load("Org1MSP", &cert, &key).unwrap();
        assert_eq!(id.cert_pem(), a.cert_pem.as_bytes());

        let missing = dir.path().join("missing.pem");
        let err = SigningIdentity::load("Org1MSP", &cert, &missing).unwrap_err();
        assert!(err.to_string().contains("missing.pem"), "{err}");

        std::fs::write(&key, "junk").unwrap();
        let err = SigningIdentity::load("Org1MSP", &cert, &key).unwrap_err();
        assert!(err.to_string().contains("key.pem"), "{err}");
    }
}
