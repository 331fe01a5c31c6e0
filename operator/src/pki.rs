//! The certificates of a network, kept in Secrets: each organisation's CA and TLS CA (made
//! once, never regenerated), each node's TLS and signing certificates, and each organisation's
//! admin and client users. Issued with the same library as `raftnet up`.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::ByteString;
use kube::Api;
use raftnet_crds::{KeyAlgorithm, Network};
use raftnet_node::identity::{CertUsage, CertificateAuthority, Role};
use raftnet_node::network::{ClientProfile, OrgCas};
use raftnet_node::tls::TlsMaterial;

use crate::apply::create_once;
use crate::labels::network_labels;
use crate::{Error, Result};

/// Keys of a CA Secret.
pub const CA_CERT: &str = "ca-cert.pem";
pub const CA_KEY: &str = "ca-key.pem";
pub const TLSCA_CERT: &str = "tlsca-cert.pem";
pub const TLSCA_KEY: &str = "tlsca-key.pem";

/// Keys of a node or user Secret.
pub const TLS_CERT: &str = "tls-cert.pem";
pub const TLS_KEY: &str = "tls-key.pem";
pub const SIGN_CERT: &str = "sign-cert.pem";
pub const SIGN_KEY: &str = "sign-key.pem";
/// A user Secret's profile for the `raftnet` client (`--identity profile.yaml`).
pub const PROFILE: &str = "profile.yaml";

/// The Secret of an organisation's CAs: `first-network-org1msp-ca`.
pub fn ca_secret_name(network: &str, msp_id: &str) -> String {
    format!("{network}-{}-ca", msp_id.to_lowercase())
}

/// The Secret of a user (`admin`, `client`) of an organisation: `first-network-org1msp-admin`.
pub fn user_secret_name(network: &str, msp_id: &str, user: &str) -> String {
    format!("{network}-{}-{user}", msp_id.to_lowercase())
}

/// The Secret of a node's certificates and keys: `orderer1-crypto`.
pub fn node_secret_name(node: &str) -> String {
    format!("{node}-crypto")
}

/// The file name of an organisation's TLS CA certificate among a node's or user's roots.
pub fn tls_root_file(msp_id: &str) -> String {
    format!("tlsca-{msp_id}.pem")
}

/// An organisation's CA and TLS CA, ready to issue.
pub struct OrgCa {
    pub msp_id: String,
    pub ca: CertificateAuthority,
    pub tls_ca: CertificateAuthority,
}

impl OrgCa {
    /// The CA certificates as a channel configuration names them.
    pub fn cas(&self) -> OrgCas {
        OrgCas {
            msp_id: self.msp_id.clone(),
            ca_cert_pem: self.ca.cert_pem().as_bytes().to_vec(),
            tls_ca_cert_pem: self.tls_ca.cert_pem().as_bytes().to_vec(),
        }
    }
}

/// How long the network's leaf certificates are valid.
pub fn validity(network: &Network) -> Result<Duration> {
    raftnet_crds::parse_duration(&network.spec.certificate_validity)
        .map_err(|e| Error::InvalidSpec(format!("spec.certificateValidity: {e}")))
}

/// The key algorithm of an organisation's signing identities.
pub fn algorithm(network: &Network, msp_id: &str) -> KeyAlgorithm {
    if msp_id == network.spec.orderer_organization.msp_id {
        return network.spec.orderer_organization.key_algorithm;
    }
    network
        .spec
        .organization(msp_id)
        .map(|o| o.key_algorithm)
        .unwrap_or_default()
}

/// The organisation's CAs: made and stored the first time, read back ever after.
pub async fn ensure_org_ca(
    api: &Api<Secret>,
    network: &Network,
    owner: OwnerReference,
    msp_id: &str,
) -> Result<(OrgCa, bool)> {
    let name = network_name(network);
    if let Some(stored) = api.get_opt(&ca_secret_name(&name, msp_id)).await? {
        return Ok((org_ca_from(&stored, network, msp_id)?, false));
    }
    let lower = msp_id.to_lowercase();
    let ca = CertificateAuthority::generate(msp_id, &format!("ca.{lower}")).map_err(Error::pki)?;
    let tls_ca =
        CertificateAuthority::generate(msp_id, &format!("tlsca.{lower}")).map_err(Error::pki)?;
    let secret = secret(
        ca_secret_name(&name, msp_id),
        network,
        owner,
        [
            (CA_CERT, ca.cert_pem()),
            (CA_KEY, ca.key_pem()),
            (TLSCA_CERT, tls_ca.cert_pem()),
            (TLSCA_KEY, tls_ca.key_pem()),
        ],
    );
    let (stored, created) = create_once(api, &secret).await?;
    Ok((org_ca_from(&stored, network, msp_id)?, created))
}

/// The organisation's CAs if their Secret exists.
pub async fn load_org_ca(api: &Api<Secret>, network: &Network, msp_id: &str) -> Result<OrgCa> {
    let name = ca_secret_name(&network_name(network), msp_id);
    let secret = api.get_opt(&name).await?.ok_or_else(|| {
        Error::Waiting(format!(
            "the CAs of {msp_id} (Secret {name}) are not issued yet"
        ))
    })?;
    org_ca_from(&secret, network, msp_id)
}

fn org_ca_from(secret: &Secret, network: &Network, msp_id: &str) -> Result<OrgCa> {
    let get = |key: &str| text(secret, key);
    let leaf = validity(network)?;
    let ca = CertificateAuthority::from_pem(&get(CA_CERT)?, &get(CA_KEY)?)
        .map_err(Error::pki)?
        .with_leaf_validity(leaf)
        .with_signing_algorithm(algorithm(network, msp_id));
    let tls_ca = CertificateAuthority::from_pem(&get(TLSCA_CERT)?, &get(TLSCA_KEY)?)
        .map_err(Error::pki)?
        .with_leaf_validity(leaf);
    Ok(OrgCa {
        msp_id: msp_id.to_owned(),
        ca,
        tls_ca,
    })
}

/// A node's Secret: its TLS certificate for `hosts` and its signing certificate, issued once.
pub fn node_secret(
    node: &str,
    role: Role,
    hosts: &[String],
    org: &OrgCa,
    network: &Network,
    owner: OwnerReference,
) -> Result<Secret> {
    let tls = org
        .tls_ca
        .issue(node, role, CertUsage::Tls, hosts)
        .map_err(Error::pki)?;
    let sign = org
        .ca
        .issue(node, role, CertUsage::Signing, &[])
        .map_err(Error::pki)?;
    Ok(secret(
        node_secret_name(node),
        network,
        owner,
        [
            (TLS_CERT, tls.cert_pem.as_str()),
            (TLS_KEY, tls.key_pem.as_str()),
            (SIGN_CERT, sign.cert_pem.as_str()),
            (SIGN_KEY, sign.key_pem.as_str()),
        ],
    ))
}

/// A user's Secret: signing and TLS client certificates, the TLS roots of every organisation
/// and a profile for the `raftnet` client (`raftnet --identity DIR/profile.yaml` with the
/// Secret mounted at DIR).
pub fn user_secret(
    user: &str,
    role: Role,
    org: &OrgCa,
    roots: &[OrgCas],
    network: &Network,
    owner: OwnerReference,
) -> Result<Secret> {
    let sign = org
        .ca
        .issue(user, role, CertUsage::Signing, &[])
        .map_err(Error::pki)?;
    let tls = org
        .tls_ca
        .issue(user, role, CertUsage::Tls, &["localhost".to_owned()])
        .map_err(Error::pki)?;
    let profile = ClientProfile {
        msp_id: org.msp_id.clone(),
        cert: SIGN_CERT.into(),
        key: SIGN_KEY.into(),
        tls_cert: TLS_CERT.into(),
        tls_key: TLS_KEY.into(),
        tls_root_cas: roots
            .iter()
            .map(|r| tls_root_file(&r.msp_id).into())
            .collect(),
    };
    let profile = serde_norway::to_string(&profile).map_err(Error::pki)?;
    let root_files: Vec<(String, String)> = roots
        .iter()
        .map(|r| {
            (
                tls_root_file(&r.msp_id),
                String::from_utf8_lossy(&r.tls_ca_cert_pem).into_owned(),
            )
        })
        .collect();
    let mut s = secret(
        user_secret_name(&network_name(network), &org.msp_id, user),
        network,
        owner,
        [
            (SIGN_CERT, sign.cert_pem.as_str()),
            (SIGN_KEY, sign.key_pem.as_str()),
            (TLS_CERT, tls.cert_pem.as_str()),
            (TLS_KEY, tls.key_pem.as_str()),
            (PROFILE, profile.as_str()),
        ],
    );
    let data = s.data.get_or_insert_with(BTreeMap::new);
    for (file, pem) in root_files {
        data.insert(file, ByteString(pem.into_bytes()));
    }
    Ok(s)
}

/// The TLS material an admin of `msp_id` calls nodes with: its client certificate from the
/// admin Secret, trusting every organisation's TLS CA.
pub async fn admin_tls(
    api: &Api<Secret>,
    network: &str,
    msp_id: &str,
    roots: &[OrgCas],
) -> Result<TlsMaterial> {
    let name = user_secret_name(network, msp_id, "admin");
    let secret = api.get_opt(&name).await?.ok_or_else(|| {
        Error::Waiting(format!(
            "the admin of {msp_id} (Secret {name}) is not issued yet"
        ))
    })?;
    let mut roots_pem = Vec::new();
    for root in roots {
        roots_pem.extend_from_slice(&root.tls_ca_cert_pem);
        roots_pem.push(b'\n');
    }
    Ok(TlsMaterial {
        cert_pem: text(&secret, TLS_CERT)?.into_bytes(),
        key_pem: text(&secret, TLS_KEY)?.into_bytes(),
        roots_pem,
    })
}

/// A key of a Secret as text; the error names the Secret and the key.
pub fn text(secret: &Secret, key: &str) -> Result<String> {
    let name = secret.metadata.name.as_deref().unwrap_or_default();
    let bytes = secret
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .ok_or_else(|| Error::Pki(format!("Secret {name} has no {key}")))?;
    String::from_utf8(bytes.0.clone())
        .map_err(|_| Error::Pki(format!("Secret {name}: {key} is not text")))
}

fn network_name(network: &Network) -> String {
    network.metadata.name.clone().unwrap_or_default()
}

fn secret<'a>(
    name: String,
    network: &Network,
    owner: OwnerReference,
    entries: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: network.metadata.namespace.clone(),
            labels: Some(network_labels(&network_name(network))),
            owner_references: Some(vec![owner]),
            ..ObjectMeta::default()
        },
        data: Some(
            entries
                .into_iter()
                .map(|(k, v)| (k.to_owned(), ByteString(v.as_bytes().to_vec())))
                .collect(),
        ),
        type_: Some("Opaque".into()),
        ..Secret::default()
    }
}
