//! Signed read requests: Deliver and CommitEvents carry their sender's signature over the
//! request, a timestamp and a nonce, so that the server can hold the sender to the channel's
//! Readers policy (Fabric's signed SeekInfo envelope). The TLS certificate alone says only
//! which organisation's CA issued the connection's key.

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
    fn signature(&self) -> Option<&RequestSignature>;
    fn set_signature(&mut self, s: Option<RequestSignature>);
}

impl SignedRequest for DeliverRequest {
    fn signature(&self) -> Option<&RequestSignature> {
        self.signature.as_ref()
    }
    fn set_signature(&mut self, s: Option<RequestSignature>) {
        self.signature = s;
    }
}

impl SignedRequest for CommitEventsRequest {
    fn signature(&self) -> Option<&RequestSignature> {
        self.signature.as_ref()
    }
    fn set_signature(&mut self, s: Option<RequestSignature>) {
        self.signature = s;
    }
}

/// What the signature covers: the request without its signature, then the creator, the
/// timestamp and the nonce, each length-framed.
fn signed_message<R: SignedRequest>(
    req: &R,
    creator: &SerializedIdentity,
    timestamp_ms: i64,
    nonce: &[u8],
) -> Vec<u8> {
    let mut body = req.clone();
    body.set_signature(None);
    let mut ctx = Context::new(&SHA256);
    ctx.update(DOMAIN);
    for part in [
        &body.encode_to_vec()[..],
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

/// Signs `req` as `signer`, now.
pub fn sign<R: SignedRequest>(req: R, signer: &SigningIdentity) -> anyhow::Result<R> {
    sign_at(req, signer, now_ms())
}

/// Signs `req` as `signer` with the given timestamp (tests use old ones).
pub fn sign_at<R: SignedRequest>(
    mut req: R,
    signer: &SigningIdentity,
    timestamp_ms: i64,
) -> anyhow::Result<R> {
    let mut nonce = vec![0u8; NONCE];
    SystemRandom::new()
        .fill(&mut nonce)
        .map_err(|_| anyhow::anyhow!("system random source failed"))?;
    let creator = signer.serialize();
    req.set_signature(None);
    let signature = signer.sign(&signed_message(&req, &creator, timestamp_ms, &nonce))?;
    req.set_signature(Some(RequestSignature {
        creator: Some(creator),
        timestamp_ms,
        nonce,
        signature,
    }));
    Ok(req)
}

/// The request's sender, if its signature verifies, is recent, and satisfies `readers`;
/// otherwise why not.
pub fn authorize<R: SignedRequest>(
    req: &R,
    channel: &str,
    msps: &MspSet,
    readers: &Policy,
) -> Result<Arc<VerifiedIdentity>, String> {
    let s = req.signature().ok_or_else(|| {
        format!("the request is not signed: reading channel {channel} needs a request signed by a member of its Readers policy")
    })?;
    let creator = s
        .creator
        .as_ref()
        .ok_or("the request's signature names no creator")?;
    let skew = (now_ms() - s.timestamp_ms).unsigned_abs();
    if skew > TIME_WINDOW.as_millis() as u64 {
        return Err(format!(
            "the request was signed {} s away from this node's clock, outside the {} s window (a replay, or a wrong clock)",
            skew / 1000,
            TIME_WINDOW.as_secs()
        ));
    }
    let msg = signed_message(req, creator, s.timestamp_ms, &s.nonce);
    let id = msps.verify(creator, &msg, &s.signature).map_err(|e| {
        format!(
            "the request's signature by {} is refused: {e}",
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
