//! Endorsements this peer signed itself, remembered until their transaction is validated: a
//! peer need not check its own signature again (one signature check fewer per transaction on
//! every endorsing peer). Only the endorser adds entries, after signing exactly these bytes
//! with its own key, so a remembered (endorser, payload, signature) is valid by construction;
//! anything else is checked as before, and every verdict stays the same.

use std::collections::HashSet;
use std::sync::Mutex;

use ring::digest::{Context, SHA256};

use crate::proto::common::SerializedIdentity;

/// At most this many are remembered (endorsements whose transactions never arrive are
/// forgotten when it fills up: they are then checked like any other).
const LIMIT: usize = 100_000;

#[derive(Default)]
pub struct OwnEndorsements(Mutex<HashSet<[u8; 32]>>);

fn key(endorser: &SerializedIdentity, payload: &[u8], signature: &[u8]) -> [u8; 32] {
    let mut ctx = Context::new(&SHA256);
    for part in [
        endorser.msp_id.as_bytes(),
        &endorser.cert_pem,
        payload,
        signature,
    ] {
        ctx.update(&(part.len() as u64).to_be_bytes());
        ctx.update(part);
    }
    ctx.finish()
        .as_ref()
        .try_into()
        .expect("SHA-256 is 32 bytes")
}

impl OwnEndorsements {
    /// Remembers a signature the endorser just made over `payload`.
    pub fn remember(&self, endorser: &SerializedIdentity, payload: &[u8], signature: &[u8]) {
        let mut set = self.0.lock().expect("own endorsements");
        if set.len() >= LIMIT {
            set.clear();
        }
        set.insert(key(endorser, payload, signature));
    }

    /// Whether this peer made this signature (and forgets it: a transaction is validated once).
    pub fn take(&self, endorser: &SerializedIdentity, payload: &[u8], signature: &[u8]) -> bool {
        self.0
            .lock()
            .expect("own endorsements")
            .remove(&key(endorser, payload, signature))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_endorsement_remembered_is_recognised_once() {
        let own = OwnEndorsements::default();
        let me = SerializedIdentity {
            msp_id: "Org1MSP".into(),
            cert_pem: b"cert".to_vec(),
        };
        own.remember(&me, b"payload", b"sig");
        assert!(!own.take(&me, b"payload", b"sig2"), "another signature");
        assert!(!own.take(&me, b"payload2", b"sig"), "another payload");
        let other = SerializedIdentity {
            msp_id: "Org2MSP".into(),
            cert_pem: b"cert".to_vec(),
        };
        assert!(!own.take(&other, b"payload", b"sig"), "another endorser");
        assert!(own.take(&me, b"payload", b"sig"));
        assert!(!own.take(&me, b"payload", b"sig"), "forgotten once used");
    }
}
