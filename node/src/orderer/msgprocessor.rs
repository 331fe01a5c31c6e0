//! Checks an envelope before it is ordered: size, shape, channel, transaction id, timestamp,
//! the creator's certificate and signature, and the channel's Writers policy. Nothing that
//! fails here reaches the Raft log.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use prost::Message;

use super::chain::ChainHandle;
use crate::identity::{IdentityError, VerifiedIdentity};
use crate::ledger::{compute_tx_id, ENVELOPE_TIME_WINDOW};
use crate::proto::common::{Envelope, HeaderType, Payload, Status};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub status: Status,
    pub info: String,
}

impl Rejection {
    pub fn new(status: Status, info: impl Into<String>) -> Self {
        Self {
            status,
            info: info.into(),
        }
    }
}

/// The payload of an envelope, decoded far enough to route it to a channel.
pub fn open(env: &Envelope) -> Result<Payload, Rejection> {
    let payload = Payload::decode(&env.payload[..]).map_err(|e| {
        Rejection::new(
            Status::BadRequest,
            format!("envelope payload does not decode: {e}"),
        )
    })?;
    if payload.header.is_none() {
        return Err(Rejection::new(
            Status::BadRequest,
            "envelope payload has no header",
        ));
    }
    Ok(payload)
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// An envelope must have been signed within [`ENVELOPE_TIME_WINDOW`] of this orderer's clock:
/// an old envelope read from Deliver and broadcast again is refused here, and one inside the
/// window is still in the ledger's window of recent transaction ids, answered as a duplicate.
fn check_timestamp(timestamp_ms: i64, now_ms: i64) -> Result<(), Rejection> {
    let window = ENVELOPE_TIME_WINDOW.as_millis() as i64;
    let skew = now_ms.saturating_sub(timestamp_ms);
    if skew.unsigned_abs() <= window as u64 {
        return Ok(());
    }
    let how = if skew > 0 { "older" } else { "newer" };
    Err(Rejection::new(
        Status::BadRequest,
        format!(
            "envelope timestamp is {}s {how} than this orderer's clock; an envelope must be \
             broadcast within {}s of its signing: sign a new one (and check the client's clock)",
            skew.unsigned_abs() / 1000,
            window / 1000
        ),
    ))
}

/// Who checks the creator's signature of an envelope.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignatureCheck {
    /// This orderer: it leads, or it is the leader judging a forwarded envelope.
    Here,
    /// The leader, to which a follower forwards the envelope: the leader checks every
    /// envelope it orders (a consenter is not trusted with that), so the follower's own
    /// check would prove nothing new.
    ByLeader,
}

/// An envelope that passed validation.
pub struct Validated {
    pub tx_id: String,
    pub creator: Arc<VerifiedIdentity>,
    /// Whether the creator's signature was checked; see [`Validated::check_signature`].
    pub signature_checked: bool,
}

impl Validated {
    /// Checks the creator's signature if validation left it to the leader and this node is
    /// about to order the envelope itself (leadership came to it meanwhile).
    pub fn check_signature(&mut self, env: &Envelope) -> Result<(), Rejection> {
        if !self.signature_checked {
            self.creator
                .verify_signature(&env.payload, &env.signature)
                .map_err(identity_refused)?;
            self.signature_checked = true;
        }
        Ok(())
    }
}

fn identity_refused(e: IdentityError) -> Rejection {
    match e {
        IdentityError::BadSignature => Rejection::new(
            Status::Forbidden,
            "signature does not verify against the creator's certificate",
        ),
        other => Rejection::new(
            Status::Forbidden,
            format!("creator identity refused: {other}"),
        ),
    }
}

/// Validates an envelope for `chain`, its creator's signature as `signature` says.
pub fn validate(
    chain: &ChainHandle,
    env: &Envelope,
    payload: &Payload,
    size: usize,
    signature: SignatureCheck,
) -> Result<Validated, Rejection> {
    let channel = chain.channel_id();
    let max = chain.batch_options().absolute_max_bytes as usize;
    if max > 0 && size > max {
        return Err(Rejection::new(
            Status::RequestEntityTooLarge,
            format!("envelope of {size} bytes exceeds absoluteMaxBytes {max} of channel {channel}"),
        ));
    }
    let header = payload.header.as_ref().expect("checked by open");
    if header.r#type != HeaderType::Transaction as i32 {
        return Err(Rejection::new(
            Status::BadRequest,
            "only TRANSACTION envelopes can be broadcast; channel configuration is set by the genesis block",
        ));
    }
    let creator = header
        .creator
        .as_ref()
        .ok_or_else(|| Rejection::new(Status::BadRequest, "header has no creator identity"))?;
    if header.nonce.is_empty() {
        return Err(Rejection::new(Status::BadRequest, "header has no nonce"));
    }
    if header.tx_id != compute_tx_id(&header.nonce, &creator.cert_pem) {
        return Err(Rejection::new(
            Status::BadRequest,
            "tx_id is not the hex SHA-256 of nonce and creator certificate",
        ));
    }
    check_timestamp(header.timestamp_ms, now_ms())?;
    let identity = chain.msps.validate(creator).map_err(|e| match e {
        IdentityError::UnknownMsp(msp) => Rejection::new(
            Status::Forbidden,
            format!("organisation {msp} is not a member of channel {channel}"),
        ),
        other => identity_refused(other),
    })?;
    let mut validated = Validated {
        tx_id: header.tx_id.clone(),
        creator: identity,
        signature_checked: false,
    };
    if signature == SignatureCheck::Here {
        validated.check_signature(env)?;
    }
    let identity = &validated.creator;
    if !chain.writers.evaluate(&[identity]) {
        return Err(Rejection::new(
            Status::Forbidden,
            format!(
                "creator {} of {} does not satisfy the Writers policy {} of channel {channel}",
                identity.common_name, identity.msp_id, chain.writers
            ),
        ));
    }
    Ok(validated)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_accepted_within_the_window_only() {
        let now = 1_800_000_000_000;
        let window = ENVELOPE_TIME_WINDOW.as_millis() as i64;
        for ts in [now, now - window, now + window, now - 1000] {
            assert!(check_timestamp(ts, now).is_ok(), "{ts}");
        }
        let old = check_timestamp(now - window - 1000, now).unwrap_err();
        assert_eq!(old.status, Status::BadRequest);
        assert!(old.info.contains("61s older"), "{}", old.info);
        let ahead = check_timestamp(now + 3_600_000, now).unwrap_err();
        assert!(ahead.info.contains("3600s newer"), "{}", ahead.info);
        // A zero or absurd timestamp is refused, without overflow.
        assert!(check_timestamp(0, now).is_err());
        assert!(check_timestamp(i64::MIN, now).is_err());
        assert!(check_timestamp(i64::MAX, now).is_err());
    }
}
