//! Validating identities against a channel's organisations (MSPs).
//!
//! Every transaction carries a `SerializedIdentity` (MSP id + certificate). Parsing the
//! certificate and checking the CA signature costs far more than checking the message
//! signature, and the same few certificates sign almost everything, so successful
//! validations are cached by a hash of (MSP id, PEM text); the validity period is re-checked
//! on every hit so expiry is still noticed. The certificate field must hold exactly one PEM
//! certificate, and only its canonical text (64-column base64, LF) is cached: other spellings
//! of one certificate are checked each time, so they cannot fill the cache.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use ring::digest::{Context, SHA256};
use ring::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_ASN1};
use x509_parser::certificate::X509Certificate;
use x509_parser::oid_registry::{OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_SIG_ED25519};
use x509_parser::prelude::FromDer;
use x509_parser::x509::SubjectPublicKeyInfo;

use super::{decode_pem, parse_cert_der, subject_string, IdentityError, Role};
use crate::proto::common::{Organization, SerializedIdentity};

/// Cached validations beyond this many clear the cache (simple bound, no LRU bookkeeping
/// on the hot path).
const CACHE_LIMIT: usize = 10_000;

/// An identity whose certificate was checked against its organisation's root CA.
#[derive(Clone, PartialEq, Eq)]
pub struct VerifiedIdentity {
    pub msp_id: String,
    /// From the certificate's OU; `None` if no OU names a known role.
    pub role: Option<Role>,
    pub common_name: String,
    /// Uncompressed P-256 point or raw Ed25519 key, as `ring::signature::UnparsedPublicKey`
    /// wants it.
    public_key: Vec<u8>,
    algorithm: super::KeyAlgorithm,
    /// Unix seconds; the intersection of the leaf's and its root's validity.
    valid_from: i64,
    valid_until: i64,
}

impl fmt::Debug for VerifiedIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifiedIdentity")
            .field("msp_id", &self.msp_id)
            .field("role", &self.role)
            .field("common_name", &self.common_name)
            .finish_non_exhaustive()
    }
}

impl VerifiedIdentity {
    /// Checks a signature made by this identity: ECDSA P-256 SHA-256 (ASN.1 DER) or Ed25519
    /// (under ZIP-215's rules, as batches check it: [`super::batch`]), as its certificate's
    /// key says.
    pub fn verify_signature(&self, msg: &[u8], sig: &[u8]) -> Result<(), IdentityError> {
        let ok = match self.algorithm {
            super::KeyAlgorithm::EcdsaP256 => {
                UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, &self.public_key)
                    .verify(msg, sig)
                    .is_ok()
            }
            super::KeyAlgorithm::Ed25519 => {
                super::batch::ed25519_verify(&self.public_key, msg, sig)
            }
        };
        ok.then_some(()).ok_or(IdentityError::BadSignature)
    }

    /// The algorithm of its key.
    pub fn algorithm(&self) -> super::KeyAlgorithm {
        self.algorithm
    }

    /// The raw public key; two identities with the same MSP and key are the same signer.
    pub fn public_key(&self) -> &[u8] {
        &self.public_key
    }

    fn check_time(&self, now: i64) -> Result<(), IdentityError> {
        if now < self.valid_from || now > self.valid_until {
            return Err(IdentityError::Expired(format!(
                "identity '{}' of MSP '{}' (or its root CA) is valid from {} to {} (unix seconds), now is {now}",
                self.common_name, self.msp_id, self.valid_from, self.valid_until
            )));
        }
        Ok(())
    }

    /// A member of `msp_id` with `role` and no certificate, for asking what a policy admits
    /// (no signature verifies with it).
    pub fn principal(msp_id: &str, role: Role) -> Self {
        Self {
            msp_id: msp_id.to_string(),
            role: Some(role),
            common_name: format!("any {} of {msp_id}", role.as_str()),
            public_key: Vec::new(),
            algorithm: super::KeyAlgorithm::EcdsaP256,
            valid_from: i64::MIN,
            valid_until: i64::MAX,
        }
    }

    /// An identity without a certificate, for tests of code that only looks at
    /// `msp_id`/`role` (policies). Its public key is empty, so no signature verifies.
    #[cfg(test)]
    pub(crate) fn for_test(msp_id: &str, role: Option<Role>, common_name: &str) -> Self {
        Self {
            msp_id: msp_id.to_string(),
            role,
            common_name: common_name.to_string(),
            public_key: common_name.as_bytes().to_vec(),
            algorithm: super::KeyAlgorithm::EcdsaP256,
            valid_from: i64::MIN,
            valid_until: i64::MAX,
        }
    }
}

/// A parsed root CA: what is needed to check that it signed a certificate.
struct Root {
    spki_der: Vec<u8>,
    subject_der: Vec<u8>,
    subject: String,
    not_before: i64,
    not_after: i64,
}

impl Root {
    fn parse(pem: &[u8], msp_id: &str, what: &str) -> Result<Self, IdentityError> {
        let ctx = |e: String| IdentityError::Certificate(format!("MSP '{msp_id}': {e}"));
        let der = decode_pem(pem, &["CERTIFICATE"], what).map_err(ctx)?;
        let cert = parse_cert_der(&der, what).map_err(ctx)?;
        if !cert.is_ca() {
            return Err(ctx(format!(
                "{what} '{}' is not a CA certificate (basic constraints CA:TRUE missing)",
                subject_string(&cert)
            )));
        }
        if let Ok(Some(ku)) = cert.key_usage() {
            if !ku.value.key_cert_sign() {
                return Err(ctx(format!(
                    "{what} '{}' may not sign certificates (its key usage lacks keyCertSign)",
                    subject_string(&cert)
                )));
            }
        }
        Ok(Self {
            spki_der: cert.public_key().raw.to_vec(),
            subject_der: cert.subject().as_raw().to_vec(),
            subject: subject_string(&cert),
            not_before: cert.validity().not_before.timestamp(),
            not_after: cert.validity().not_after.timestamp(),
        })
    }

    /// True if this root's key signed `cert` and `cert` names this root as its issuer.
    fn issued(&self, cert: &X509Certificate<'_>) -> bool {
        if cert.issuer().as_raw() != self.subject_der.as_slice() {
            return false;
        }
        match SubjectPublicKeyInfo::from_der(&self.spki_der) {
            Ok((_, spki)) => cert.verify_signature(Some(&spki)).is_ok(),
            Err(_) => false,
        }
    }
}

struct Org {
    msp_id: String,
    root: Root,
    tls_root: Option<Root>,
}

/// The organisations of a channel, keyed by MSP id, with a cache of validated identities.
pub struct MspSet {
    orgs: Vec<Org>,
    index: HashMap<String, usize>,
    cache: Mutex<HashMap<[u8; 32], Arc<VerifiedIdentity>>>,
}

impl fmt::Debug for MspSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MspSet")
            .field("msp_ids", &self.msp_ids().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn cache_key(msp_id: &str, cert_pem: &[u8]) -> [u8; 32] {
    let mut ctx = Context::new(&SHA256);
    // Length prefix so (msp, cert) pairs cannot collide by shifting bytes between them.
    ctx.update(&(msp_id.len() as u64).to_be_bytes());
    ctx.update(msp_id.as_bytes());
    ctx.update(cert_pem);
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// The DER certificate of a PEM text that holds exactly one certificate and nothing else.
fn single_certificate(pem: &[u8], what: &str) -> Result<Vec<u8>, String> {
    let (rest, block) = x509_parser::pem::parse_x509_pem(pem)
        .map_err(|e| format!("{what} is not valid PEM ({})", super::nom_error(e)))?;
    if block.label != "CERTIFICATE" {
        return Err(format!(
            "{what} is a PEM '{}' block, expected 'CERTIFICATE'",
            block.label
        ));
    }
    if !rest.iter().all(u8::is_ascii_whitespace) {
        return Err(format!(
            "{what} holds more than one PEM block: send exactly one certificate"
        ));
    }
    Ok(block.contents)
}

/// Whether `text` is exactly the canonical PEM of `der` (as rcgen, openssl and cryptogen write
/// it): one text per certificate, so cache entries cannot be multiplied by re-spelling it.
fn is_canonical_pem(text: &[u8], der: &[u8]) -> bool {
    let canonical = pem::encode_config(
        &pem::Pem::new("CERTIFICATE", der.to_vec()),
        pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
    );
    text == canonical.as_bytes()
}

/// The first OU naming a role; certificates may carry other OUs too.
fn role_of(cert: &X509Certificate<'_>) -> Option<Role> {
    cert.subject()
        .iter_organizational_unit()
        .filter_map(|a| a.as_str().ok())
        .find_map(|s| s.parse::<Role>().ok())
}

impl MspSet {
    /// Parses every organisation's root (and TLS root, if present). The error names the
    /// MSP whose root does not parse.
    pub fn new(orgs: &[Organization]) -> Result<Self, IdentityError> {
        let mut parsed = Vec::with_capacity(orgs.len());
        let mut index = HashMap::new();
        for o in orgs {
            if o.msp_id.trim().is_empty() {
                return Err(IdentityError::Certificate(
                    "an organisation has an empty MSP id".into(),
                ));
            }
            if index.insert(o.msp_id.clone(), parsed.len()).is_some() {
                return Err(IdentityError::Certificate(format!(
                    "MSP '{}' is listed more than once",
                    o.msp_id
                )));
            }
            if o.root_cert_pem.is_empty() {
                return Err(IdentityError::Certificate(format!(
                    "MSP '{}' has no root CA certificate",
                    o.msp_id
                )));
            }
            let root = Root::parse(&o.root_cert_pem, &o.msp_id, "root CA certificate")?;
            let tls_root = if o.tls_root_cert_pem.is_empty() {
                None
            } else {
                Some(Root::parse(
                    &o.tls_root_cert_pem,
                    &o.msp_id,
                    "TLS root CA certificate",
                )?)
            };
            parsed.push(Org {
                msp_id: o.msp_id.clone(),
                root,
                tls_root,
            });
        }
        Ok(Self {
            orgs: parsed,
            index,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// MSP ids in the order the organisations were given.
    pub fn msp_ids(&self) -> impl Iterator<Item = &str> {
        self.orgs.iter().map(|o| o.msp_id.as_str())
    }

    pub fn contains(&self, msp_id: &str) -> bool {
        self.index.contains_key(msp_id)
    }

    /// The certificate parses, is within its validity period, and is signed by the root CA
    /// of the MSP it claims (x509-parser verify_signature with the root's public key).
    pub fn validate(
        &self,
        id: &SerializedIdentity,
    ) -> Result<Arc<VerifiedIdentity>, IdentityError> {
        self.validate_at(id, Some(now()))
    }

    /// Like [`MspSet::validate`] but without the validity period: for judging transactions
    /// already ordered, which every peer must judge alike whatever its clock and whenever it
    /// catches up (Fabric's validators ignore expiry too).
    pub fn validate_ignoring_time(
        &self,
        id: &SerializedIdentity,
    ) -> Result<Arc<VerifiedIdentity>, IdentityError> {
        self.validate_at(id, None)
    }

    /// [`MspSet::validate_ignoring_time`] + the signature over `msg`.
    pub fn verify_ignoring_time(
        &self,
        id: &SerializedIdentity,
        msg: &[u8],
        sig: &[u8],
    ) -> Result<Arc<VerifiedIdentity>, IdentityError> {
        let v = self.validate_at(id, None)?;
        v.verify_signature(msg, sig)?;
        Ok(v)
    }

    fn validate_at(
        &self,
        id: &SerializedIdentity,
        now: Option<i64>,
    ) -> Result<Arc<VerifiedIdentity>, IdentityError> {
        let org = self
            .index
            .get(&id.msp_id)
            .map(|&i| &self.orgs[i])
            .ok_or_else(|| IdentityError::UnknownMsp(id.msp_id.clone()))?;
        let key = cache_key(&id.msp_id, &id.cert_pem);
        let cached = self
            .cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
            .cloned();
        if let Some(v) = cached {
            if let Some(now) = now {
                v.check_time(now)?;
            }
            return Ok(v);
        }

        let what = format!("identity certificate for MSP '{}'", org.msp_id);
        let der = single_certificate(&id.cert_pem, &what).map_err(IdentityError::Certificate)?;
        let verified = Arc::new(Self::validate_uncached(org, &der, &what, now)?);
        if !is_canonical_pem(&id.cert_pem, &der) {
            return Ok(verified);
        }
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= CACHE_LIMIT {
            cache.clear();
        }
        cache.insert(key, verified.clone());
        Ok(verified)
    }

    fn validate_uncached(
        org: &Org,
        der: &[u8],
        what: &str,
        now: Option<i64>,
    ) -> Result<VerifiedIdentity, IdentityError> {
        let cert = parse_cert_der(der, what).map_err(IdentityError::Certificate)?;
        let subject = subject_string(&cert);
        if !org.root.issued(&cert) {
            return Err(IdentityError::NotIssuedByOrg {
                msp_id: org.msp_id.clone(),
                subject,
            });
        }
        if cert.is_ca() {
            return Err(IdentityError::Certificate(format!(
                "'{subject}' is a CA certificate and cannot be used as an identity"
            )));
        }
        // A certificate whose key usage is stated must allow signatures (one issued only for
        // key encipherment, say, is not an identity).
        match cert.key_usage() {
            Ok(None) => {}
            Ok(Some(ku)) if ku.value.digital_signature() => {}
            Ok(Some(_)) => {
                return Err(IdentityError::Certificate(format!(
                    "'{subject}' of MSP '{}': its key usage does not include digitalSignature, \
                     so it cannot sign transactions",
                    org.msp_id
                )))
            }
            Err(e) => {
                return Err(IdentityError::Certificate(format!(
                    "'{subject}' of MSP '{}' has a malformed key usage extension: {e}",
                    org.msp_id
                )))
            }
        }
        let v = cert.validity();
        let (nb, na) = (v.not_before.timestamp(), v.not_after.timestamp());
        let outside = |from: i64, until: i64| now.is_some_and(|now| now < from || now > until);
        if outside(nb, na) {
            return Err(IdentityError::Expired(format!(
                "'{subject}' of MSP '{}' is valid from {} to {}",
                org.msp_id, v.not_before, v.not_after
            )));
        }
        if outside(org.root.not_before, org.root.not_after) {
            return Err(IdentityError::Expired(format!(
                "the root CA '{}' of MSP '{}' is valid from {} to {} (unix seconds), now is {}",
                org.root.subject,
                org.msp_id,
                org.root.not_before,
                org.root.not_after,
                now.unwrap_or_default()
            )));
        }
        let spki = cert.public_key();
        let is_p256 = spki.algorithm.algorithm == OID_KEY_TYPE_EC_PUBLIC_KEY
            && spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .is_some_and(|oid| oid == OID_EC_P256);
        let algorithm = if is_p256 {
            super::KeyAlgorithm::EcdsaP256
        } else if spki.algorithm.algorithm == OID_SIG_ED25519 {
            super::KeyAlgorithm::Ed25519
        } else {
            return Err(IdentityError::Certificate(format!(
                "'{subject}' has neither an ECDSA P-256 nor an Ed25519 public key"
            )));
        };
        let common_name = cert
            .subject()
            .iter_common_name()
            .find_map(|a| a.as_str().ok())
            .unwrap_or_default()
            .to_string();
        Ok(VerifiedIdentity {
            msp_id: org.msp_id.clone(),
            role: role_of(&cert),
            common_name,
            public_key: spki.subject_public_key.data.to_vec(),
            algorithm,
            valid_from: nb.max(org.root.not_before),
            valid_until: na.min(org.root.not_after),
        })
    }

    /// validate + verify sig over msg.
    pub fn verify(
        &self,
        id: &SerializedIdentity,
        msg: &[u8],
        sig: &[u8],
    ) -> Result<Arc<VerifiedIdentity>, IdentityError> {
        let v = self.validate(id)?;
        v.verify_signature(msg, sig)?;
        Ok(v)
    }

    /// Which organisation's TLS root CA issued this DER TLS certificate, with its OU role;
    /// None if none did (or the certificate does not parse or is outside its validity).
    pub fn tls_identity(&self, cert_der: &[u8]) -> Option<(String, Option<Role>)> {
        let cert = parse_cert_der(cert_der, "TLS certificate").ok()?;
        let now = now();
        let v = cert.validity();
        if now < v.not_before.timestamp() || now > v.not_after.timestamp() {
            return None;
        }
        self.orgs
            .iter()
            .filter_map(|o| o.tls_root.as_ref().map(|r| (o, r)))
            .find(|(_, r)| now >= r.not_before && now <= r.not_after && r.issued(&cert))
            .map(|(o, _)| (o.msp_id.clone(), role_of(&cert)))
    }

    #[cfg(test)]
    fn cache_len(&self) -> usize {
        self.cache.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::{CertUsage, CertificateAuthority, SigningIdentity};

    struct TestOrg {
        msp_id: String,
        ca: CertificateAuthority,
        tls_ca: CertificateAuthority,
    }

    impl TestOrg {
        fn new(name: &str) -> Self {
            Self {
                msp_id: format!("{name}MSP"),
                ca: CertificateAuthority::generate(name, &format!("ca.{name}")).unwrap(),
                tls_ca: CertificateAuthority::generate(name, &format!("tlsca.{name}")).unwrap(),
            }
        }

        fn org(&self) -> Organization {
            Organization {
                msp_id: self.msp_id.clone(),
                root_cert_pem: self.ca.cert_pem().as_bytes().to_vec(),
                tls_root_cert_pem: self.tls_ca.cert_pem().as_bytes().to_vec(),
            }
        }

        fn signer(&self, cn: &str, role: Role) -> SigningIdentity {
            let c = self.ca.issue(cn, role, CertUsage::Signing, &[]).unwrap();
            SigningIdentity::from_pem(&self.msp_id, c.cert_pem.as_bytes(), c.key_pem.as_bytes())
                .unwrap()
        }
    }

    fn der(pem: &str) -> Vec<u8> {
        decode_pem(pem.as_bytes(), &["CERTIFICATE"], "t").unwrap()
    }

    #[test]
    fn cert_from_own_ca_validates_and_other_org_is_refused() {
        let a = TestOrg::new("Org1");
        let b = TestOrg::new("Org2");
        let msps = MspSet::new(&[a.org(), b.org()]).unwrap();
        assert_eq!(msps.msp_ids().collect::<Vec<_>>(), ["Org1MSP", "Org2MSP"]);
        assert!(msps.contains("Org1MSP") && !msps.contains("Org3MSP"));

        let signer = a.signer("peer0.org1", Role::Peer);
        let v = msps.validate(&signer.serialize()).unwrap();
        assert_eq!(v.msp_id, "Org1MSP");
        assert_eq!(v.role, Some(Role::Peer));
        assert_eq!(v.common_name, "peer0.org1");

        // Same certificate, claiming to be from Org2.
        let mut forged = signer.serialize();
        forged.msp_id = "Org2MSP".into();
        let err = msps.validate(&forged).unwrap_err();
        match &err {
            IdentityError::NotIssuedByOrg { msp_id, subject } => {
                assert_eq!(msp_id, "Org2MSP");
                assert!(subject.contains("CN=peer0.org1"), "{subject}");
            }
            other => panic!("unexpected {other:?}"),
        }
        // And the cache for Org1 must not leak into the Org2 claim on a retry.
        assert!(msps.validate(&forged).is_err());

        let mut unknown = signer.serialize();
        unknown.msp_id = "Org3MSP".into();
        let err = msps.validate(&unknown).unwrap_err();
        assert!(matches!(err, IdentityError::UnknownMsp(ref m) if m == "Org3MSP"));
        assert!(err.to_string().contains("Org3MSP"));
    }

    #[test]
    fn signatures_verify_and_tampering_is_detected() {
        let a = TestOrg::new("Org1");
        let msps = MspSet::new(&[a.org()]).unwrap();
        let signer = a.signer("client0", Role::Client);
        let msg = b"transfer 10 from a to b";
        let sig = signer.sign(msg).unwrap();
        let v = msps.verify(&signer.serialize(), msg, &sig).unwrap();
        assert_eq!(v.role, Some(Role::Client));

        let err = msps
            .verify(&signer.serialize(), b"transfer 99 from a to b", &sig)
            .unwrap_err();
        assert!(matches!(err, IdentityError::BadSignature));

        let mut bad_sig = sig.clone();
        let last = bad_sig.len() - 1;
        bad_sig[last] ^= 1;
        assert!(msps.verify(&signer.serialize(), msg, &bad_sig).is_err());
        assert!(msps.verify(&signer.serialize(), msg, &[]).is_err());

        // Signed by someone else but presenting this certificate.
        let other = a.signer("client1", Role::Client);
        let sig2 = other.sign(msg).unwrap();
        assert!(matches!(
            msps.verify(&signer.serialize(), msg, &sig2),
            Err(IdentityError::BadSignature)
        ));
    }

    #[test]
    fn validations_are_cached() {
        let a = TestOrg::new("Org1");
        let msps = MspSet::new(&[a.org()]).unwrap();
        let s = a.signer("peer0", Role::Peer);
        let v1 = msps.validate(&s.serialize()).unwrap();
        let v2 = msps.validate(&s.serialize()).unwrap();
        assert!(Arc::ptr_eq(&v1, &v2));
        assert_eq!(msps.cache_len(), 1);
        // Failures are not cached.
        let mut bad = s.serialize();
        bad.cert_pem = b"junk".to_vec();
        assert!(msps.validate(&bad).is_err());
        assert_eq!(msps.cache_len(), 1);
    }

    #[test]
    fn one_certificate_one_cache_entry() {
        let a = TestOrg::new("Org1");
        let msps = MspSet::new(&[a.org()]).unwrap();
        let s = a.signer("peer0", Role::Peer);
        msps.validate(&s.serialize()).unwrap();
        // The same certificate spelled otherwise is valid, but checked each time, not cached.
        let mut spaced = s.serialize();
        spaced.cert_pem = [b"\n".as_slice(), s.cert_pem(), b"\n\n"].concat();
        msps.validate(&spaced).unwrap();
        let mut crlf = s.serialize();
        crlf.cert_pem = String::from_utf8(s.cert_pem().to_vec())
            .unwrap()
            .replace('\n', "\r\n")
            .into_bytes();
        msps.validate(&crlf).unwrap();
        assert_eq!(msps.cache_len(), 1);
        // Anything after the certificate is refused, not cached under a new key.
        for tail in [
            s.cert_pem().to_vec(),
            a.ca.cert_pem().as_bytes().to_vec(),
            b"trailing bytes".to_vec(),
        ] {
            let mut padded = s.serialize();
            padded.cert_pem = [s.cert_pem(), tail.as_slice()].concat();
            let err = msps.validate(&padded).unwrap_err().to_string();
            assert!(err.contains("exactly one certificate"), "{err}");
        }
        assert_eq!(msps.cache_len(), 1);
    }

    #[test]
    fn an_identity_must_be_allowed_to_sign() {
        use rcgen::{CertificateParams, DnType, Issuer, KeyPair, KeyUsagePurpose};
        let a = TestOrg::new("Org1");
        let msps = MspSet::new(&[a.org()]).unwrap();
        let issuer =
            Issuer::from_ca_cert_pem(a.ca.cert_pem(), KeyPair::from_pem(a.ca.key_pem()).unwrap())
                .unwrap();
        let issue = |usages: Vec<KeyUsagePurpose>| {
            let mut params = CertificateParams::default();
            params.distinguished_name.push(DnType::CommonName, "enc");
            params
                .distinguished_name
                .push(DnType::OrganizationalUnitName, "client");
            params.key_usages = usages;
            let key = KeyPair::generate().unwrap();
            SerializedIdentity {
                msp_id: "Org1MSP".into(),
                cert_pem: params.signed_by(&key, &issuer).unwrap().pem().into_bytes(),
            }
        };
        let err = msps
            .validate(&issue(vec![KeyUsagePurpose::KeyEncipherment]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("digitalSignature"), "{err}");
        msps.validate(&issue(vec![KeyUsagePurpose::DigitalSignature]))
            .unwrap();
        // No key usage extension at all: nothing stated, nothing refused (as Fabric).
        msps.validate(&issue(vec![])).unwrap();
    }

    #[test]
    fn expired_cached_identity_is_refused() {
        let a = TestOrg::new("Org1");
        let msps = MspSet::new(&[a.org()]).unwrap();
        let s = a.signer("peer0", Role::Peer);
        let v = msps.validate(&s.serialize()).unwrap();
        let mut expired = (*v).clone();
        expired.valid_until = now() - 10;
        msps.cache
            .lock()
            .unwrap()
            .insert(cache_key("Org1MSP", s.cert_pem()), Arc::new(expired));
        let err = msps.validate(&s.serialize()).unwrap_err();
        assert!(matches!(err, IdentityError::Expired(_)), "{err}");
    }

    #[test]
    fn garbage_and_ca_certs_are_rejected_with_reasons() {
        let a = TestOrg::new("Org1");
        let msps = MspSet::new(&[a.org()]).unwrap();
        let err = msps
            .validate(&SerializedIdentity {
                msp_id: "Org1MSP".into(),
                cert_pem: b"hello".to_vec(),
            })
            .unwrap_err();
        assert!(err.to_string().contains("not valid PEM"), "{err}");
        let err = msps
            .validate(&SerializedIdentity {
                msp_id: "Org1MSP".into(),
                cert_pem: b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
                    .to_vec(),
            })
            .unwrap_err();
        assert!(err.to_string().contains("not a valid X.509"), "{err}");
        // The root CA itself is not a member identity.
        let err = msps
            .validate(&SerializedIdentity {
                msp_id: "Org1MSP".into(),
                cert_pem: a.ca.cert_pem().as_bytes().to_vec(),
            })
            .unwrap_err();
        assert!(err.to_string().contains("CA certificate"), "{err}");
        // A cert issued by the TLS CA is not a signing identity of the org.
        let tls = a
            .tls_ca
            .issue("peer0", Role::Peer, CertUsage::Tls, &["localhost".into()])
            .unwrap();
        let err = msps
            .validate(&SerializedIdentity {
                msp_id: "Org1MSP".into(),
                cert_pem: tls.cert_pem.into_bytes(),
            })
            .unwrap_err();
        assert!(matches!(err, IdentityError::NotIssuedByOrg { .. }), "{err}");
    }

    #[test]
    fn new_names_the_bad_msp() {
        let a = TestOrg::new("Org1");
        let mut bad = a.org();
        bad.msp_id = "BrokenMSP".into();
        bad.root_cert_pem = b"not a cert".to_vec();
        let err = MspSet::new(&[a.org(), bad]).unwrap_err();
        assert!(err.to_string().contains("BrokenMSP"), "{err}");

        let mut leaf_root = a.org();
        leaf_root.msp_id = "LeafMSP".into();
        let leaf =
            a.ca.issue("x", Role::Peer, CertUsage::Signing, &[])
                .unwrap();
        leaf_root.root_cert_pem = leaf.cert_pem.into_bytes();
        let err = MspSet::new(&[leaf_root]).unwrap_err();
        assert!(err.to_string().contains("LeafMSP"), "{err}");
        assert!(err.to_string().contains("not a CA"), "{err}");

        let err = MspSet::new(&[a.org(), a.org()]).unwrap_err();
        assert!(err.to_string().contains("more than once"), "{err}");

        let mut no_tls = a.org();
        no_tls.tls_root_cert_pem.clear();
        assert!(MspSet::new(&[no_tls]).is_ok());
    }

    #[test]
    fn tls_identity_finds_issuing_org() {
        let a = TestOrg::new("Org1");
        let b = TestOrg::new("Org2");
        let msps = MspSet::new(&[a.org(), b.org()]).unwrap();
        let tls = b
            .tls_ca
            .issue(
                "orderer0",
                Role::Orderer,
                CertUsage::Tls,
                &["localhost".into()],
            )
            .unwrap();
        assert_eq!(
            msps.tls_identity(&der(&tls.cert_pem)),
            Some(("Org2MSP".to_string(), Some(Role::Orderer)))
        );
        // Issued by the signing CA, not the TLS CA: not a TLS identity.
        let sign =
            b.ca.issue("orderer0", Role::Orderer, CertUsage::Signing, &[])
                .unwrap();
        assert_eq!(msps.tls_identity(&der(&sign.cert_pem)), None);
        // A stranger's TLS CA.
        let c = TestOrg::new("Org3");
        let tls3 = c
            .tls_ca
            .issue("x", Role::Peer, CertUsage::Tls, &[])
            .unwrap();
        assert_eq!(msps.tls_identity(&der(&tls3.cert_pem)), None);
        assert_eq!(msps.tls_identity(b"garbage"), None);
    }

    #[test]
    fn role_is_none_without_role_ou() {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair,
            PKCS_ECDSA_P256_SHA256,
        };
        // A CA from outside this crate's tooling, issuing a cert whose OU is not a role.
        let ca_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        let mut ca_params = CertificateParams::default();
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "ext-ca");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::OrganizationalUnitName, "engineering");
        params.distinguished_name.push(DnType::CommonName, "alice");
        let cert = params.signed_by(&key, &issuer).unwrap();

        let msps = MspSet::new(&[Organization {
            msp_id: "ExtMSP".into(),
            root_cert_pem: ca_cert.pem().into_bytes(),
            tls_root_cert_pem: vec![],
        }])
        .unwrap();
        let v = msps
            .validate(&SerializedIdentity {
                msp_id: "ExtMSP".into(),
                cert_pem: cert.pem().into_bytes(),
            })
            .unwrap();
        assert_eq!(v.role, None);
        assert_eq!(v.common_name, "alice");
    }
}
