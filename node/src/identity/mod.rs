//! Organisations' certificate authorities, signing identities, MSPs and policies.
//!
//! Each organisation (MSP) has a root CA for signing identities and a root CA for TLS.
//! A member's role (admin, client, peer, orderer) is carried in its certificate's OU,
//! as Fabric's "NodeOUs" do, so policies can name roles without extra configuration.

pub mod batch;
pub mod ca;
pub mod msp;
pub mod policy;
pub mod signer;

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

pub use ca::{CertUsage, CertificateAuthority, IssuedCert};
pub use msp::{MspSet, VerifiedIdentity};
pub use policy::Policy;
/// The key algorithm of signing identities, as the `Network` spec names it.
pub use raftnet_crds::KeyAlgorithm;
pub use signer::SigningIdentity;

/// The role of a member of an organisation, carried in the OU of its certificates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    Admin,
    Client,
    Peer,
    Orderer,
}

impl Role {
    /// Every role, in a fixed order (used to list valid values in error messages).
    pub const ALL: [Role; 4] = [Role::Admin, Role::Client, Role::Peer, Role::Orderer];

    /// The lowercase name used in certificate OUs and policies.
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Client => "client",
            Role::Peer => "peer",
            Role::Orderer => "orderer",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = IdentityError;

    /// Case-insensitive, surrounding whitespace ignored.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        Role::ALL
            .into_iter()
            .find(|r| r.as_str().eq_ignore_ascii_case(t))
            .ok_or_else(|| IdentityError::UnknownRole(s.to_string()))
    }
}

/// Everything that can go wrong creating, loading or checking identities and policies.
#[derive(thiserror::Error, Debug)]
pub enum IdentityError {
    #[error("invalid certificate: {0}")]
    Certificate(String),

    #[error(
        "unknown MSP '{0}': it is not one of this channel's organisations \
         (check the MSP id, or add the organisation to the channel)"
    )]
    UnknownMsp(String),

    #[error(
        "certificate '{subject}' was not issued by the root CA of MSP '{msp_id}' \
         (use a certificate issued by that organisation's CA, or claim the MSP that issued it)"
    )]
    NotIssuedByOrg { msp_id: String, subject: String },

    #[error("certificate is not within its validity period: {0} (issue a new certificate)")]
    Expired(String),

    #[error(
        "signature does not verify against the signer's certificate \
         (the message was altered, or it was signed with a different key)"
    )]
    BadSignature,

    #[error("invalid private key: {0}")]
    BadKey(String),

    #[error("invalid policy: {0}")]
    Policy(String),

    #[error("unknown role '{0}': expected one of admin, client, peer, orderer")]
    UnknownRole(String),

    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Decodes the first PEM block in `data`, requiring one of `labels`.
/// Shared by the CA, signer and MSP code so PEM errors read the same everywhere.
pub(crate) fn decode_pem(data: &[u8], labels: &[&str], what: &str) -> Result<Vec<u8>, String> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(data)
        .map_err(|e| format!("{what} is not valid PEM ({})", nom_error(e)))?;
    if !labels.iter().any(|l| *l == pem.label) {
        return Err(format!(
            "{what} is a PEM '{}' block, expected {}",
            pem.label,
            labels
                .iter()
                .map(|l| format!("'{l}'"))
                .collect::<Vec<_>>()
                .join(" or ")
        ));
    }
    Ok(pem.contents)
}

/// Parses one DER certificate, naming `what` in the error.
pub(crate) fn parse_cert_der<'a>(
    der: &'a [u8],
    what: &str,
) -> Result<x509_parser::certificate::X509Certificate<'a>, String> {
    x509_parser::parse_x509_certificate(der)
        .map(|(_, c)| c)
        .map_err(|e| format!("{what} is not a valid X.509 certificate ({})", nom_error(e)))
}

/// Unwraps a nom error to its inner message (nom's own Display adds parser noise).
pub(crate) fn nom_error<E: fmt::Display>(e: x509_parser::nom::Err<E>) -> String {
    match e {
        x509_parser::nom::Err::Incomplete(_) => "truncated data".to_string(),
        x509_parser::nom::Err::Error(e) | x509_parser::nom::Err::Failure(e) => e.to_string(),
    }
}

/// Formats a certificate's subject for error messages.
pub(crate) fn subject_string(cert: &x509_parser::certificate::X509Certificate<'_>) -> String {
    let s = cert.subject().to_string();
    if s.is_empty() {
        "<empty subject>".to_string()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_round_trips_and_is_case_insensitive() {
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>().unwrap(), r);
            assert_eq!(r.to_string(), r.as_str());
        }
        assert_eq!(" PEER ".parse::<Role>().unwrap(), Role::Peer);
        assert_eq!("Orderer".parse::<Role>().unwrap(), Role::Orderer);
    }

    #[test]
    fn unknown_role_lists_valid_roles() {
        let err = "member".parse::<Role>().unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("'member'"), "{msg}");
        assert!(msg.contains("admin, client, peer, orderer"), "{msg}");
    }

    #[test]
    fn decode_pem_rejects_wrong_label_and_garbage() {
        let err = decode_pem(b"not pem at all", &["CERTIFICATE"], "root cert").unwrap_err();
        assert!(err.contains("root cert is not valid PEM"), "{err}");
        let pem = b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        let err = decode_pem(pem, &["CERTIFICATE"], "root cert").unwrap_err();
        assert!(err.contains("'PRIVATE KEY'"), "{err}");
        assert!(err.contains("expected 'CERTIFICATE'"), "{err}");
        assert_eq!(
            decode_pem(pem, &["PRIVATE KEY"], "key").unwrap(),
            vec![0, 0, 0]
        );
    }
}
