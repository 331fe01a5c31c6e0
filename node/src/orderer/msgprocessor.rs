//! Checks an envelope before it is ordered: size, shape, channel, transaction id, the
//! creator's certificate and signature, and the channel's Writers policy. Nothing that fails
//! here reaches the Raft log.

use prost::Message;

use super::chain::ChainHandle;
use crate::identity::IdentityError;
use crate::ledger::compute_tx_id;
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

/// Validates an envelope for `chain`; returns its transaction id.
pub fn validate(
    chain: &ChainHandle,
    env: &Envelope,
    payload: &Payload,
    size: usize,
) -> Result<String, Rejection> {
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
    let identity = chain
        .msps
        .verify(creator, &env.payload, &env.signature)
        .map_err(|e| match e {
            IdentityError::UnknownMsp(msp) => Rejection::new(
                Status::Forbidden,
                format!("organisation {msp} is not a member of channel {channel}"),
            ),
            IdentityError::BadSignature => Rejection::new(
                Status::Forbidden,
                "signature does not verify against the creator's certificate",
            ),
            other => Rejection::new(
                Status::Forbidden,
                format!("creator identity refused: {other}"),
            ),
        })?;
    if !chain.writers.evaluate(&[&identity]) {
        return Err(Rejection::new(
            Status::Forbidden,
            format!(
                "creator {} of {} does not satisfy the Writers policy {} of channel {channel}",
                identity.common_name, identity.msp_id, chain.writers
            ),
        ));
    }
    Ok(header.tx_id.clone())
}
