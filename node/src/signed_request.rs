//! Signed read requests: Deliver and CommitEvents carry their sender's signature over the
//! request, its kind, the hash of the sender's TLS certificate, a timestamp and a nonce, so
//! that the server can hold the sender to the channel's Readers policy (Fabric's signed
//! SeekInfo envelope, with its TLS binding). The TLS certificate alone says only which
//! organisation's CA issued the connection's key; the binding keeps a signed request from
//! being replayed over anyone else's connection, or to another service.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prost::Message;
use ring::digest::{Context, SHA256};
use ring::rand::{SecureRandom, SystemRandom};

use crate::identity::{MspSet, Policy, SigningIdentity, VerifiedIdentity};
use crate::proto::common::{RequestSignature, SerializedIdentity};
use crate::proto::orderer::DeliverRequest;
use crate::proto::peer::CommitEventsRequest;

/// How far a request's timestamp may be from the server's clock (Fabric's default
/// authentication time window).
pub const TIME_WINDOW: Duration = Duration::from_secs(15 * 60);

const NONCE: usize = 24;
const DOMAIN: &[u8] = b"raftnet read request v1";

/// A request that carries a [`RequestSignature`].
pub trait SignedRequest: Message + Clone {
    /// What kind of request it is: signed with it, so that a signature for one service is
    /// no good for another.
    const KIND: &'static str;
    fn signature(&self) -> Option<&RequestSignature>;
    fn set_signature(&mut self, s: Option<RequestSignature>);
}

impl SignedRequest for DeliverRequest {
    const KIND: &'static str = "Deliver";
    fn signature(&self) -> Option<&RequestSignature> {
        self.signature.as_ref()
    }
    fn set_signature(&mut self, s: Option<RequestSignature>) {
        self.signature = s;
    }
}

impl SignedRequest for CommitEventsRequest {
    const KIND: &'static str = "CommitEvents";
    fn signature(&self) -> Option<&RequestSignature> {
        self.signature.as_ref()
    }
    fn set_signature(&mut self, s: Option<RequestSignature>) {
        self.signature = s;
    }
}

/// SHA-256 of a TLS certificate, PEM or DER.
fn tls_binding(cert: &[u8]) -> Vec<u8> {
    let der = crate::tls::pem_to_der(cert).unwrap_or_else(|| cert.to_vec());
    ring::digest::digest(&SHA256, &der).as_ref().to_vec()
}

/// What the signature covers: the kind, the request without its signature, the TLS binding,
/// then the creator, the timestamp and the nonce, each length-framed.
fn signed_message<R: SignedRequest>(
    req: &R,
    tls: &[u8],
    creator: &SerializedIdentity,
    timestamp_ms: i64,
    nonce: &[u8],
) -> Vec<u8> {
    let mut body = req.clone();
    body.set_signature(None);
    let mut ctx = Context::new(&SHA256);
    ctx.update(DOMAIN);
    for part in [
        R::KIND.as_bytes(),
        &body.encode_to_vec()[..],
        tls,
        creator.msp_id.as_bytes(),
        &creator.cert_pem,
        &timestamp_ms.to_be_bytes(),
        nonce,
    ] {
        ctx.update(&(part.len() as u64).to_be_bytes());
        ctx.update(part);
    }
    ctx.finish().as_ref().to_vec()
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Signs `req` as `signer`, now, for sending over a connection made with the TLS
/// certificate `tls_cert` (PEM or DER).
pub fn sign<R: SignedRequest>(
    req: R,
    signer: &SigningIdentity,
    tls_cert: &[u8],
) -> anyhow::Result<R> {
    sign_at(req, signer, tls_cert, now_ms())
}

/// Like [`sign`], with the given timestamp (tests use old ones).
pub fn sign_at<R: SignedRequest>(
    mut req: R,
    signer: &SigningIdentity,
    tls_cert: &[u8],
    timestamp_ms: i64,
) -> anyhow::Result<R> {
    let mut nonce = vec![0u8; NONCE];
    SystemRandom::new()
        .fill(&mut nonce)
        .map_err(|_| anyhow::anyhow!("system random source failed"))?;
    let creator = signer.serialize();
    req.set_signature(None);
    let msg = signed_message(&req, &tls_binding(tls_cert), &creator, timestamp_ms, &nonce);
    let signature = signer.sign(&msg)?;
    req.set_signature(Some(RequestSignature {
        creator: Some(creator),
        timestamp_ms,
        nonce,
        signature,
    }));
    Ok(req)
}

/// The request's sender, if its signature verifies for this connection's TLS certificate
/// (`tls_cert`, DER), is recent, and satisfies `readers`; otherwise why not.
pub fn authorize<R: SignedRequest>(
    req: &R,
    channel: &str,
    msps: &MspSet,
    readers: &Policy,
    tls_cert: Option<&[u8]>,
) -> Result<Arc<VerifiedIdentity>, String> {
    let tls_cert = tls_cert.ok_or("the connection has no client TLS certificate")?;
    let s = req.signature().ok_or_else(|| {
        format!("the request is not signed: reading channel {channel} needs a request signed by a member of its Readers policy")
    })?;
    let creator = s
        .creator
        .as_ref()
        .ok_or("the request's signature names no creator")?;
    let skew = now_ms().abs_diff(s.timestamp_ms);
    if skew > TIME_WINDOW.as_millis() as u64 {
        return Err(format!(
            "the request was signed {} s away from this node's clock, outside the {} s window (a replay, or a wrong clock)",
            skew / 1000,
            TIME_WINDOW.as_secs()
        ));
    }
    let msg = signed_message(
        req,
        &tls_binding(tls_cert),
        creator,
        s.timestamp_ms,
        &s.nonce,
    );
    let id = msps.verify(creator, &msg, &s.signature).map_err(|e| {
        format!(
            "the request's signature by {} is refused: {e} (signed for another request, service or TLS certificate, or not by this creator)",
            creator.msp_id
        )
    })?;
    if !readers.evaluate(&[&id]) {
        return Err(format!(
            "{} of {} does not satisfy the Readers policy {readers} of channel {channel}",
            id.common_name, id.msp_id
        ));
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::{CertUsage, CertificateAuthority, Role};
    use crate::proto::common::Organization;

    #[test]
    fn a_signature_is_good_for_its_own_kind_of_request_and_connection_only() {
        let ca = CertificateAuthority::generate("Org1MSP", "ca.org1").unwrap();
        let c = ca
            .issue("reader", Role::Client, CertUsage::Signing, &[])
            .unwrap();
        let signer =
            SigningIdentity::from_pem("Org1MSP", c.cert_pem.as_bytes(), c.key_pem.as_bytes())
                .unwrap();
        let msps = MspSet::new(&[Organization {
            msp_id: "Org1MSP".into(),
            root_cert_pem: ca.cert_pem().as_bytes().to_vec(),
            tls_root_cert_pem: ca.cert_pem().as_bytes().to_vec(),
        }])
        .unwrap();
        let readers: Policy = "OR('Org1MSP.member')".parse().unwrap();
        let tls = ca
            .issue("reader", Role::Client, CertUsage::Tls, &[])
            .unwrap();
        let tls_der = crate::tls::pem_to_der(tls.cert_pem.as_bytes()).unwrap();
        let events = sign(
            CommitEventsRequest {
                channel_id: "ch".into(),
                start: Some(3),
                signature: None,
            },
            &signer,
            tls.cert_pem.as_bytes(),
        )
        .unwrap();
        assert!(authorize(&events, "ch", &msps, &readers, Some(&tls_der)).is_ok());
        // The same bytes as a Deliver request (same channel and start) carry no weight there.
        let deliver = DeliverRequest {
            channel_id: "ch".into(),
            start: 3,
            signature: events.signature.clone(),
            ..Default::default()
        };
        assert!(authorize(&deliver, "ch", &msps, &readers, Some(&tls_der)).is_err());
        // Nor over another connection.
        let other = ca
            .issue("other", Role::Client, CertUsage::Tls, &[])
            .unwrap();
        let other_der = crate::tls::pem_to_der(other.cert_pem.as_bytes()).unwrap();
        assert!(authorize(&events, "ch", &msps, &readers, Some(&other_der)).is_err());
        assert!(authorize(&events, "ch", &msps, &readers, None).is_err());
    }
}
