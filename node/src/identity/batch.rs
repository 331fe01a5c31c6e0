//! Checks many signatures at once, with the same verdict on each as checking it alone.
//!
//! Ed25519 signatures are verified as one batch: a single multi-scalar equation, in which
//! the terms of one signer's signatures are merged, costs far less than one check per
//! signature (a block's signatures come from a handful of clients and peers). Ed25519 is
//! checked under ZIP-215's rules everywhere in raftnet (see [`ed25519_verify`]), the rules
//! under which a batch accepts exactly the signatures that single checks accept, so peers
//! that batch differently still reach the same verdicts. When a batch fails, each of its
//! signatures is checked alone to find and name the bad ones.
//!
//! ECDSA has no batch equation: its signatures are checked one by one.

use ed25519_zebra::batch;
use ed25519_zebra::{Signature, VerificationKey, VerificationKeyBytes};

use super::{KeyAlgorithm, VerifiedIdentity};

/// One signature to check: `sig` by `signer` over `msg`.
pub struct Check<'a> {
    pub signer: &'a VerifiedIdentity,
    pub msg: &'a [u8],
    pub sig: &'a [u8],
}

/// Whether each signature verifies, in the order given.
pub fn verify_all(checks: &[Check]) -> Vec<bool> {
    let mut ok = vec![false; checks.len()];
    let mut batch = batch::Verifier::new();
    let mut batched = Vec::new();
    for (i, c) in checks.iter().enumerate() {
        match c.signer.algorithm() {
            KeyAlgorithm::Ed25519 => match ed25519_parts(c.signer.public_key(), c.sig) {
                // A key or signature of the wrong length is simply invalid.
                None => {}
                Some((key, sig)) => {
                    batch.queue((key, sig, c.msg));
                    batched.push(i);
                }
            },
            KeyAlgorithm::EcdsaP256 => ok[i] = c.signer.verify_signature(c.msg, c.sig).is_ok(),
        }
    }
    if batched.is_empty() {
        return ok;
    }
    // The batch's random coefficients only need to be unpredictable to whoever made the
    // signatures.
    if batch.verify(rand_core::OsRng).is_ok() {
        for i in batched {
            ok[i] = true;
        }
    } else {
        for i in batched {
            let c = &checks[i];
            ok[i] = ed25519_verify(c.signer.public_key(), c.msg, c.sig);
        }
    }
    ok
}

/// A single Ed25519 check under ZIP-215's rules: `s` canonical, `R` and `A` any encoding of a
/// curve point, and the cofactored equation `[8][s]B = [8]R + [8][k]A`. Signatures made by
/// RFC 8032 signers (ring, Go, OpenSSL) all pass; the rules only settle edge cases that
/// implementations used to judge differently.
pub fn ed25519_verify(public_key: &[u8], msg: &[u8], sig: &[u8]) -> bool {
    let Some((key, sig)) = ed25519_parts(public_key, sig) else {
        return false;
    };
    VerificationKey::try_from(key).is_ok_and(|k| k.verify(&sig, msg).is_ok())
}

fn ed25519_parts(public_key: &[u8], sig: &[u8]) -> Option<(VerificationKeyBytes, Signature)> {
    let key = VerificationKeyBytes::try_from(public_key).ok()?;
    let sig = Signature::from_slice(sig).ok()?;
    Some((key, sig))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::{CertUsage, CertificateAuthority, MspSet, Role, SigningIdentity};
    use crate::proto::common::Organization;
    use std::sync::Arc;

    /// `n` members of an organisation whose signing identities use `algorithm`.
    fn members(
        msp_id: &str,
        algorithm: KeyAlgorithm,
        n: usize,
    ) -> (Organization, Vec<SigningIdentity>) {
        let ca = CertificateAuthority::generate(msp_id, "ca")
            .unwrap()
            .with_signing_algorithm(algorithm);
        let ids = (0..n)
            .map(|i| {
                let leaf = ca
                    .issue(&format!("user{i}"), Role::Client, CertUsage::Signing, &[])
                    .unwrap();
                SigningIdentity::from_pem(msp_id, leaf.cert_pem.as_bytes(), leaf.key_pem.as_bytes())
                    .unwrap()
            })
            .collect();
        let org = Organization {
            msp_id: msp_id.into(),
            root_cert_pem: ca.cert_pem().as_bytes().to_vec(),
            tls_root_cert_pem: ca.cert_pem().as_bytes().to_vec(),
        };
        (org, ids)
    }

    #[test]
    fn every_forged_signature_in_a_batch_is_found_and_no_other() {
        let (org1, ed) = members("Org1MSP", KeyAlgorithm::Ed25519, 3);
        let (org2, ec) = members("Org2MSP", KeyAlgorithm::EcdsaP256, 1);
        let msps = MspSet::new(&[org1, org2]).unwrap();
        let signers: Vec<&SigningIdentity> = ed.iter().chain(&ec).collect();
        let verified: Vec<Arc<VerifiedIdentity>> = signers
            .iter()
            .map(|s| msps.validate(&s.serialize()).unwrap())
            .collect();
        // 32 messages signed round robin by three Ed25519 signers and one P-256 signer.
        let msgs: Vec<Vec<u8>> = (0..32)
            .map(|i| format!("tx {i}").repeat(50).into())
            .collect();
        let mut sigs: Vec<Vec<u8>> = msgs
            .iter()
            .enumerate()
            .map(|(i, m)| signers[i % 4].sign(m).unwrap())
            .collect();
        let checks = |sigs: &[Vec<u8>], msgs: &[Vec<u8>]| -> Vec<bool> {
            let checks: Vec<Check> = (0..msgs.len())
                .map(|i| Check {
                    signer: &verified[i % 4],
                    msg: &msgs[i],
                    sig: &sigs[i],
                })
                .collect();
            let all = verify_all(&checks);
            // The batch's verdict on each is the single check's.
            for (c, ok) in checks.iter().zip(&all) {
                assert_eq!(c.signer.verify_signature(c.msg, c.sig).is_ok(), *ok);
            }
            all
        };
        assert_eq!(checks(&sigs, &msgs), vec![true; 32]);

        // Ed25519: a bit flipped in s, another in R, a signature over another message, one
        // truncated; P-256: a bit flipped.
        sigs[5][40] ^= 0x01;
        sigs[10][3] ^= 0x80;
        sigs[13] = signers[1].sign(b"something else").unwrap();
        sigs[22].pop();
        sigs[27][12] ^= 0x01;
        let bad: Vec<usize> = checks(&sigs, &msgs)
            .iter()
            .enumerate()
            .filter(|(_, ok)| !**ok)
            .map(|(i, _)| i)
            .collect();
        assert_eq!(bad, [5, 10, 13, 22, 27]);
        assert!(verify_all(&[]).is_empty());
    }
}
