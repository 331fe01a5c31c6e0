//! A minimal certificate authority per organisation, so a network can be bootstrapped
//! without external tooling: one CA issues signing certificates, another TLS certificates.
//! CAs and TLS keys are ECDSA P-256, which ring and rustls both take; signing keys are P-256
//! too unless the organisation chose Ed25519.

use std::net::IpAddr;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType, PKCS_ECDSA_P256_SHA256, PKCS_ED25519,
};
use time::{Duration, OffsetDateTime};

use super::{decode_pem, parse_cert_der, subject_string, IdentityError, Role};

/// How long issued certificates (and CAs) are valid: about ten years.
const VALIDITY: Duration = Duration::days(3650);
/// Backdate `not_before` so small clock skew between nodes does not reject fresh certs.
const BACKDATE: Duration = Duration::minutes(1);

/// What an issued leaf certificate is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CertUsage {
    /// Signing transactions and blocks (key usage: digital signature).
    Signing,
    /// gRPC mutual TLS (EKUs server + client auth, with SANs).
    Tls,
}

/// A freshly issued certificate and its private key, both PEM (key is PKCS#8).
#[derive(Clone)]
pub struct IssuedCert {
    pub cert_pem: String,
    pub key_pem: String,
}

impl std::fmt::Debug for IssuedCert {
    /// Never prints the private key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedCert")
            .field("cert_pem", &self.cert_pem)
            .field("key_pem", &"<redacted>")
            .finish()
    }
}

/// An organisation's CA: its certificate, key, and the rcgen issuer used to sign leaves.
pub struct CertificateAuthority {
    cert_pem: String,
    key_pem: String,
    org_name: String,
    issuer: Issuer<'static, KeyPair>,
    /// How long the certificates it issues are valid.
    leaf_validity: Duration,
    /// The key algorithm of the signing certificates it issues (TLS keys are P-256).
    signing_algorithm: super::KeyAlgorithm,
}

impl std::fmt::Debug for CertificateAuthority {
    /// Never prints the private key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateAuthority")
            .field("org_name", &self.org_name)
            .field("cert_pem", &self.cert_pem)
            .finish_non_exhaustive()
    }
}

fn rcgen_err(what: &str) -> impl Fn(rcgen::Error) -> IdentityError + '_ {
    move |e| IdentityError::Certificate(format!("{what}: {e}"))
}

impl CertificateAuthority {
    /// Self-signed CA: subject O=org_name, CN=common_name, 10 years, basic constraints CA.
    pub fn generate(org_name: &str, common_name: &str) -> Result<Self, IdentityError> {
        if org_name.trim().is_empty() {
            return Err(IdentityError::Certificate(
                "cannot create a CA with an empty organisation name".into(),
            ));
        }
        if common_name.trim().is_empty() {
            return Err(IdentityError::Certificate(
                "cannot create a CA with an empty common name".into(),
            ));
        }
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)
            .map_err(|e| IdentityError::BadKey(format!("cannot generate a P-256 key: {e}")))?;
        let now = OffsetDateTime::now_utc();
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, org_name);
        dn.push(DnType::CommonName, common_name);
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.not_before = now - BACKDATE;
        params.not_after = now + VALIDITY;
        let cert = params
            .self_signed(&key)
            .map_err(rcgen_err("cannot self-sign the CA certificate"))?;
        Ok(Self {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            org_name: org_name.to_string(),
            issuer: Issuer::new(params, key),
            leaf_validity: VALIDITY,
            signing_algorithm: super::KeyAlgorithm::EcdsaP256,
        })
    }

    /// Loads an existing CA (e.g. one written by `generate` earlier). Checks that the
    /// certificate is a CA, the key is P-256, and the key belongs to the certificate.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Self, IdentityError> {
        let der = decode_pem(cert_pem.as_bytes(), &["CERTIFICATE"], "CA certificate")
            .map_err(IdentityError::Certificate)?;
        let cert = parse_cert_der(&der, "CA certificate").map_err(IdentityError::Certificate)?;
        let subject = subject_string(&cert);
        if !cert.is_ca() {
            return Err(IdentityError::Certificate(format!(
                "certificate '{subject}' is not a CA (basic constraints CA:TRUE missing)"
            )));
        }
        let org_name = cert
            .subject()
            .iter_organization()
            .next()
            .and_then(|a| a.as_str().ok())
            .map(str::to_string)
            .ok_or_else(|| {
                IdentityError::Certificate(format!(
                    "CA certificate '{subject}' has no organisation (O) in its subject"
                ))
            })?;

        decode_pem(key_pem.as_bytes(), &["PRIVATE KEY"], "CA private key").map_err(|e| {
            IdentityError::BadKey(format!(
                "{e} (convert with `openssl pkcs8 -topk8 -nocrypt`)"
            ))
        })?;
        let key = KeyPair::from_pem(key_pem)
            .map_err(|e| IdentityError::BadKey(format!("cannot load CA private key: {e}")))?;
        if key.algorithm() != &PKCS_ECDSA_P256_SHA256 {
            return Err(IdentityError::BadKey(
                "CA private key is not an ECDSA P-256 key".into(),
            ));
        }
        if key.public_key_raw() != cert.public_key().subject_public_key.data.as_ref() {
            return Err(IdentityError::BadKey(format!(
                "CA private key does not belong to certificate '{subject}'"
            )));
        }
        let issuer = Issuer::from_ca_cert_der(&der.clone().into(), key)
            .map_err(rcgen_err("cannot use the CA certificate as an issuer"))?;
        Ok(Self {
            cert_pem: cert_pem.to_string(),
            key_pem: key_pem.to_string(),
            org_name,
            issuer,
            leaf_validity: VALIDITY,
            signing_algorithm: super::KeyAlgorithm::EcdsaP256,
        })
    }

    /// The same CA issuing signing certificates with `algorithm` keys (P-256 unless set).
    pub fn with_signing_algorithm(mut self, algorithm: super::KeyAlgorithm) -> Self {
        self.signing_algorithm = algorithm;
        self
    }

    /// The same CA issuing certificates valid for `validity` (10 years unless set).
    pub fn with_leaf_validity(mut self, validity: std::time::Duration) -> Self {
        self.leaf_validity = Duration::try_from(validity).unwrap_or(VALIDITY);
        self
    }

    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    /// The organisation (O) of this CA, copied into every certificate it issues.
    pub fn org_name(&self) -> &str {
        &self.org_name
    }

    /// Issue a leaf certificate: subject CN=common_name, O=the CA's org, OU=role.as_str(),
    /// fresh key (P-256; Ed25519 for signing certificates of a CA set to it). Signing: digital
    /// signature key usage. Tls: server+client auth EKUs and SANs (each entry an IP address if
    /// it parses as one, else a DNS name). Valid for the CA's leaf validity (10 years unless
    /// set), starting a minute in the past.
    pub fn issue(
        &self,
        common_name: &str,
        role: Role,
        usage: CertUsage,
        sans: &[String],
    ) -> Result<IssuedCert, IdentityError> {
        if common_name.trim().is_empty() {
            return Err(IdentityError::Certificate(
                "cannot issue a certificate with an empty common name".into(),
            ));
        }
        let algorithm = match (usage, self.signing_algorithm) {
            (CertUsage::Signing, super::KeyAlgorithm::Ed25519) => &PKCS_ED25519,
            _ => &PKCS_ECDSA_P256_SHA256,
        };
        let key = KeyPair::generate_for(algorithm)
            .map_err(|e| IdentityError::BadKey(format!("cannot generate a key: {e}")))?;
        let now = OffsetDateTime::now_utc();
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, self.org_name.as_str());
        dn.push(DnType::OrganizationalUnitName, role.as_str());
        dn.push(DnType::CommonName, common_name);
        params.distinguished_name = dn;
        params.is_ca = IsCa::ExplicitNoCa;
        params.not_before = now - BACKDATE;
        params.not_after = now + self.leaf_validity;
        params.use_authority_key_identifier_extension = true;
        match usage {
            CertUsage::Signing => {
                params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
            }
            CertUsage::Tls => {
                params.key_usages = vec![
                    KeyUsagePurpose::DigitalSignature,
                    KeyUsagePurpose::KeyAgreement,
                ];
                params.extended_key_usages = vec![
                    ExtendedKeyUsagePurpose::ServerAuth,
                    ExtendedKeyUsagePurpose::ClientAuth,
                ];
                params.subject_alt_names =
                    sans.iter().map(|s| san(s)).collect::<Result<Vec<_>, _>>()?;
            }
        }
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(rcgen_err(&format!(
                "cannot issue certificate for '{common_name}'"
            )))?;
        Ok(IssuedCert {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

/// An IP address SAN if `s` parses as one, else a DNS name SAN.
fn san(s: &str) -> Result<SanType, IdentityError> {
    let s = s.trim();
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok(SanType::IpAddress(ip));
    }
    if s.is_empty() {
        return Err(IdentityError::Certificate(
            "empty subject alternative name".into(),
        ));
    }
    s.to_string().try_into().map(SanType::DnsName).map_err(|e| {
        IdentityError::Certificate(format!(
            "subject alternative name '{s}' is neither an IP address nor a valid DNS name: {e}"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use x509_parser::extensions::GeneralName;

    fn parse(pem: &str) -> Vec<u8> {
        decode_pem(pem.as_bytes(), &["CERTIFICATE"], "test cert").unwrap()
    }

    #[test]
    fn generated_ca_is_self_signed_ca_with_org() {
        let ca = CertificateAuthority::generate("Org1", "ca.org1").unwrap();
        let der = parse(ca.cert_pem());
        let cert = parse_cert_der(&der, "ca").unwrap();
        assert!(cert.is_ca());
        assert_eq!(cert.subject().to_string(), "O=Org1, CN=ca.org1");
        assert_eq!(cert.subject(), cert.issuer());
        cert.verify_signature(None).unwrap();
        assert!(cert.validity().is_valid());
        let years = (cert.validity().not_after.timestamp()
            - cert.validity().not_before.timestamp())
            / (365 * 86400);
        assert!(years >= 9, "validity {years} years");
        assert!(ca.key_pem().contains("BEGIN PRIVATE KEY"));
        assert_eq!(ca.org_name(), "Org1");
    }

    #[test]
    fn signing_cert_is_issued_by_ca_with_role_ou() {
        let ca = CertificateAuthority::generate("Org1", "ca.org1").unwrap();
        let other = CertificateAuthority::generate("Org2", "ca.org2").unwrap();
        let leaf = ca
            .issue("peer0.org1", Role::Peer, CertUsage::Signing, &[])
            .unwrap();
        let der = parse(&leaf.cert_pem);
        let cert = parse_cert_der(&der, "leaf").unwrap();
        assert!(!cert.is_ca());
        let subject = cert.subject().to_string();
        assert_eq!(subject, "O=Org1, OU=peer, CN=peer0.org1");

        let ca_der = parse(ca.cert_pem());
        let ca_cert = parse_cert_der(&ca_der, "ca").unwrap();
        cert.verify_signature(Some(ca_cert.public_key())).unwrap();
        let other_der = parse(other.cert_pem());
        let other_cert = parse_cert_der(&other_der, "other").unwrap();
        assert!(cert
            .verify_signature(Some(other_cert.public_key()))
            .is_err());

        let ku = cert.key_usage().unwrap().unwrap().value;
        assert!(ku.digital_signature());
        assert!(cert.extended_key_usage().unwrap().is_none());
        // Started in the past, so a fresh cert is valid right away.
        assert!(cert.validity().is_valid());
        assert!(
            cert.validity().not_before.timestamp() < OffsetDateTime::now_utc().unix_timestamp()
        );
    }

    #[test]
    fn tls_cert_has_ekus_and_sans() {
        let ca = CertificateAuthority::generate("Org1", "tlsca.org1").unwrap();
        let sans = vec![
            "orderer0.org1.example.com".to_string(),
            "127.0.0.1".to_string(),
            "::1".to_string(),
        ];
        let leaf = ca
            .issue("orderer0", Role::Orderer, CertUsage::Tls, &sans)
            .unwrap();
        let der = parse(&leaf.cert_pem);
        let cert = parse_cert_der(&der, "leaf").unwrap();
        let eku = cert.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.server_auth && eku.client_auth);
        let names = &cert
            .subject_alternative_name()
            .unwrap()
            .unwrap()
            .value
            .general_names;
        assert!(names
            .iter()
            .any(|n| matches!(n, GeneralName::DNSName("orderer0.org1.example.com"))));
        assert!(names
            .iter()
            .any(|n| matches!(n, GeneralName::IPAddress(b) if *b == [127, 0, 0, 1])));
        assert!(names
            .iter()
            .any(|n| matches!(n, GeneralName::IPAddress(b) if b.len() == 16)));
    }

    #[test]
    fn bad_san_is_named() {
        let ca = CertificateAuthority::generate("Org1", "tlsca.org1").unwrap();
        let err = ca
            .issue("x", Role::Peer, CertUsage::Tls, &["bad name é".to_string()])
            .unwrap_err();
        assert!(err.to_string().contains("'bad name é'"), "{err}");
    }

    #[test]
    fn from_pem_round_trips_and_issues_verifiable_certs() {
        let ca = CertificateAuthority::generate("Org1", "ca.org1").unwrap();
        let loaded = CertificateAuthority::from_pem(ca.cert_pem(), ca.key_pem()).unwrap();
        assert_eq!(loaded.org_name(), "Org1");
        let leaf = loaded
            .issue("admin", Role::Admin, CertUsage::Signing, &[])
            .unwrap();
        let der = parse(&leaf.cert_pem);
        let cert = parse_cert_der(&der, "leaf").unwrap();
        let ca_der = parse(ca.cert_pem());
        let ca_cert = parse_cert_der(&ca_der, "ca").unwrap();
        cert.verify_signature(Some(ca_cert.public_key())).unwrap();
        assert_eq!(cert.issuer(), ca_cert.subject());
    }

    #[test]
    fn from_pem_rejects_mismatched_key_leaf_cert_and_garbage() {
        let ca = CertificateAuthority::generate("Org1", "ca.org1").unwrap();
        let other = CertificateAuthority::generate("Org2", "ca.org2").unwrap();
        let err = CertificateAuthority::from_pem(ca.cert_pem(), other.key_pem()).unwrap_err();
        assert!(matches!(err, IdentityError::BadKey(_)));
        assert!(err.to_string().contains("does not belong"), "{err}");

        let leaf = ca
            .issue("peer0", Role::Peer, CertUsage::Signing, &[])
            .unwrap();
        let err = CertificateAuthority::from_pem(&leaf.cert_pem, &leaf.key_pem).unwrap_err();
        assert!(err.to_string().contains("is not a CA"), "{err}");

        let err = CertificateAuthority::from_pem("garbage", ca.key_pem()).unwrap_err();
        assert!(err.to_string().contains("not valid PEM"), "{err}");
        let err = CertificateAuthority::from_pem(ca.cert_pem(), "garbage").unwrap_err();
        assert!(matches!(err, IdentityError::BadKey(_)), "{err}");
    }

    #[test]
    fn empty_names_are_rejected() {
        assert!(CertificateAuthority::generate("", "ca").is_err());
        let ca = CertificateAuthority::generate("Org1", "ca.org1").unwrap();
        let err = ca
            .issue(" ", Role::Peer, CertUsage::Signing, &[])
            .unwrap_err();
        assert!(err.to_string().contains("empty common name"), "{err}");
    }
}
