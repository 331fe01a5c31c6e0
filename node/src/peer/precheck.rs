//! The stateless checks of a block's transactions, the costly part of validation: decoding,
//! the creator's certificate and signature, the Writers policy, the binding of the endorsed
//! response to the proposal, and which endorsements verify. They need no ledger state, so
//! a block's transactions go through them in parallel, one chunk per core; within a chunk
//! every other check comes first and then all the signatures are verified together
//! ([`verify_all`]: Ed25519 ones as one batch, each verdict what checking it alone gives).
//! [`super::validator::BlockValidator`] then judges the transactions in block order.

use std::collections::HashSet;
use std::sync::Arc;

use prost::Message;
use ring::digest::{digest, SHA256};

use super::validator::{invalid, ChannelRules, Invalid};
use crate::identity::batch::{verify_all, Check};
use crate::identity::{IdentityError, VerifiedIdentity};
use crate::ledger::compute_tx_id;
use crate::proto::common::{ChannelHeader, Envelope, HeaderType, Payload};
use crate::proto::peer::{
    ChaincodeInput, Proposal, ProposalResponsePayload, Transaction, TxReadWriteSet,
    TxValidationCode as Code,
};

/// Endorsements checked per organisation of the channel; more are refused unread, so that a
/// writer cannot make every peer verify thousands of signatures.
const ENDORSEMENTS_PER_ORG: usize = 4;

/// What the stateless checks of one transaction established: they need no ledger state, so
/// the transactions of a block go through them in parallel.
pub struct Prechecked {
    pub(super) tx_id: Option<String>,
    /// The tx id is the creator's and the creator signed the envelope.
    pub(super) creator_proven: bool,
    pub(super) checked: Result<Signed, Invalid>,
}

/// A transaction whose creator, proposal binding and endorsement signatures are checked.
pub(super) struct Signed {
    pub(super) creator: Arc<VerifiedIdentity>,
    pub(super) input: ChaincodeInput,
    pub(super) chaincode_version: String,
    pub(super) rwset: TxReadWriteSet,
    /// Endorsers whose signatures verify over the transaction's response payload.
    pub(super) endorsers: Vec<Arc<VerifiedIdentity>>,
}

/// Decodes transactions (encoded envelopes) and checks their signatures. Every other check
/// comes first; then the signatures of all the transactions are verified together
/// ([`verify_all`]: Ed25519 ones as one batch), with the verdict on each that checking it
/// alone gives.
pub fn precheck(rules: &ChannelRules, raws: &[Vec<u8>]) -> Vec<Prechecked> {
    let gathered: Vec<Gathered> = raws.iter().map(|raw| gather(rules, raw)).collect();
    let checks: Vec<Check> = gathered.iter().flat_map(Gathered::checks).collect();
    let mut verdicts = verify_all(&checks).into_iter();
    gathered
        .into_iter()
        .map(|g| g.settle(&mut verdicts))
        .collect()
}

/// One transaction with everything but its signatures checked.
struct Gathered {
    tx_id: Option<String>,
    /// Err: refused before any signature was needed (the creator is not proven).
    state: Result<Unverified, Invalid>,
}

/// A transaction from a known member of the channel, whose signatures are yet to be verified.
struct Unverified {
    creator: Arc<VerifiedIdentity>,
    /// The envelope's payload and the creator's signature over it.
    payload: Vec<u8>,
    signature: Vec<u8>,
    /// Outer Err: the creator may not write. Inner: the verdict on the endorsed parts.
    rest: Result<Result<Endorsed, Invalid>, Invalid>,
}

/// The endorsed parts of a transaction; endorsers are members, signatures not yet verified.
struct Endorsed {
    input: ChaincodeInput,
    chaincode_version: String,
    rwset: TxReadWriteSet,
    /// What the endorsers signed.
    response_payload: Vec<u8>,
    /// Each endorser with its signature to verify; `None` for this peer's own endorsement,
    /// made by its endorser over these very bytes and known good.
    endorsers: Vec<(Arc<VerifiedIdentity>, Option<Vec<u8>>)>,
}

impl Gathered {
    /// The signatures to verify: the creator's, then the endorsers', in order.
    fn checks(&self) -> Vec<Check<'_>> {
        let Ok(u) = &self.state else {
            return Vec::new();
        };
        let mut checks = vec![Check {
            signer: &u.creator,
            msg: &u.payload,
            sig: &u.signature,
        }];
        if let Ok(Ok(e)) = &u.rest {
            checks.extend(e.endorsers.iter().filter_map(|(id, sig)| {
                Some(Check {
                    signer: id,
                    msg: &e.response_payload,
                    sig: sig.as_ref()?,
                })
            }));
        }
        checks
    }

    /// The verdict, given the outcomes of [`Gathered::checks`] in their order.
    fn settle(self, verdicts: &mut impl Iterator<Item = bool>) -> Prechecked {
        let tx_id = self.tx_id;
        let u = match self.state {
            Ok(u) => u,
            Err(e) => {
                return Prechecked {
                    tx_id,
                    creator_proven: false,
                    checked: Err(e),
                }
            }
        };
        // A missing outcome would be a bug: it counts as a bad signature.
        let creator_signed = verdicts.next() == Some(true);
        let rest = u.rest.map(|r| {
            r.map(|e| {
                let endorsers = e
                    .endorsers
                    .into_iter()
                    .filter(|(_, sig)| sig.is_none() || verdicts.next() == Some(true))
                    .map(|(id, _)| id)
                    .collect();
                Signed {
                    creator: u.creator,
                    input: e.input,
                    chaincode_version: e.chaincode_version,
                    rwset: e.rwset,
                    endorsers,
                }
            })
        });
        let (creator_proven, checked) = match rest {
            _ if !creator_signed => (
                false,
                Err(invalid(
                    Code::BadCreatorSignature,
                    IdentityError::BadSignature.to_string(),
                )),
            ),
            Err(unwritable) => (false, Err(unwritable)),
            Ok(checked) => (true, checked),
        };
        Prechecked {
            tx_id,
            creator_proven,
            checked,
        }
    }
}

/// Every check of one transaction but its signatures.
fn gather(rules: &ChannelRules, raw: &[u8]) -> Gathered {
    let (env, payload, header) = match open(raw) {
        Ok(x) => x,
        Err((tx_id, e)) => {
            return Gathered {
                tx_id,
                state: Err(e),
            }
        }
    };
    let tx_id = Some(header.tx_id.clone());
    let state = creator(rules, &header).map(|creator| {
        let rest = if rules.writers.evaluate(&[&creator]) {
            Ok(endorsed(rules, &payload, &header))
        } else {
            Err(invalid(
                Code::BadCreatorSignature,
                format!(
                    "creator of {} does not satisfy the Writers policy",
                    creator.msp_id
                ),
            ))
        };
        Unverified {
            creator,
            payload: env.payload,
            signature: env.signature,
            rest,
        }
    });
    Gathered { tx_id, state }
}

/// The envelope, its payload and header; on failure the header's tx id if it decoded.
fn open(raw: &[u8]) -> Result<(Envelope, Payload, ChannelHeader), (Option<String>, Invalid)> {
    let env = Envelope::decode(raw)
        .map_err(|e| (None, invalid(Code::BadPayload, format!("envelope: {e}"))))?;
    let payload = Payload::decode(&env.payload[..])
        .map_err(|e| (None, invalid(Code::BadPayload, format!("payload: {e}"))))?;
    let header = payload
        .header
        .clone()
        .ok_or_else(|| (None, invalid(Code::BadPayload, "no header")))?;
    if header.r#type != HeaderType::Transaction as i32 {
        return Err((
            Some(header.tx_id),
            invalid(Code::BadPayload, "not a TRANSACTION"),
        ));
    }
    Ok((env, payload, header))
}

/// The creator chains to a channel organisation and owns the tx id.
fn creator(rules: &ChannelRules, header: &ChannelHeader) -> Result<Arc<VerifiedIdentity>, Invalid> {
    if header.channel_id != rules.channel_id {
        return Err(invalid(
            Code::BadPayload,
            format!("transaction is for channel {}", header.channel_id),
        ));
    }
    let creator = header
        .creator
        .as_ref()
        .ok_or_else(|| invalid(Code::BadPayload, "no creator"))?;
    if header.nonce.is_empty() || header.tx_id != compute_tx_id(&header.nonce, &creator.cert_pem) {
        return Err(invalid(
            Code::BadProposalTxid,
            "tx_id is not the hash of a nonce and the creator's certificate",
        ));
    }
    rules
        .msps
        .validate_ignoring_time(creator)
        .map_err(|e| invalid(Code::BadCreatorSignature, e.to_string()))
}

/// The proposal is this transaction's, the endorsed response is for that proposal, and
/// which endorsers are members.
fn endorsed(
    rules: &ChannelRules,
    payload: &Payload,
    header: &ChannelHeader,
) -> Result<Endorsed, Invalid> {
    let tx = Transaction::decode(&payload.data[..]).map_err(|e| {
        invalid(
            Code::BadPayload,
            format!("not an endorsed transaction: {e}"),
        )
    })?;
    let proposal = Proposal::decode(&tx.proposal_bytes[..])
        .map_err(|e| invalid(Code::InvalidEndorserTransaction, format!("proposal: {e}")))?;
    let input = proposal.input.unwrap_or_default();
    if proposal.header.as_ref() != Some(header) {
        return Err(invalid(
            Code::InvalidEndorserTransaction,
            "the proposal's header is not the transaction's header",
        ));
    }
    let resp = ProposalResponsePayload::decode(&tx.response_payload[..]).map_err(|e| {
        invalid(
            Code::InvalidEndorserTransaction,
            format!("response payload: {e}"),
        )
    })?;
    if resp.proposal_hash != digest(&SHA256, &tx.proposal_bytes).as_ref() {
        return Err(invalid(
            Code::InvalidEndorserTransaction,
            "the endorsed response is for another proposal",
        ));
    }
    if resp.response.as_ref().is_none_or(|r| r.status >= 400) {
        return Err(invalid(
            Code::InvalidEndorserTransaction,
            "the contract's response is an error",
        ));
    }
    let cc = resp.chaincode_id.unwrap_or_default();
    if cc.name != input.chaincode {
        return Err(invalid(
            Code::InvalidEndorserTransaction,
            "endorsed contract is not the proposal's",
        ));
    }
    let rwset = resp.results.unwrap_or_default();
    let mut namespaces = HashSet::new();
    if !rwset
        .ns_rwset
        .iter()
        .all(|n| namespaces.insert(&n.namespace))
    {
        return Err(invalid(Code::BadRwset, "a namespace appears twice"));
    }
    let max = ENDORSEMENTS_PER_ORG * rules.msps.msp_ids().count();
    if tx.endorsements.len() > max {
        return Err(invalid(
            Code::EndorsementPolicyFailure,
            format!(
                "{} endorsements; at most {max} are accepted",
                tx.endorsements.len()
            ),
        ));
    }
    // Only members' endorsements are kept, their signatures to be verified; a certificate
    // given twice is checked once.
    let mut seen = HashSet::new();
    let endorsers = tx
        .endorsements
        .iter()
        .filter_map(|e| {
            let id = e.endorser.as_ref()?;
            if !seen.insert((&id.msp_id, &id.cert_pem)) {
                return None;
            }
            let own = rules
                .own_endorsements
                .take(id, &tx.response_payload, &e.signature);
            let member = rules.msps.validate_ignoring_time(id).ok()?;
            Some((member, (!own).then(|| e.signature.clone())))
        })
        .collect();
    Ok(Endorsed {
        input,
        chaincode_version: cc.version,
        rwset,
        response_payload: tx.response_payload,
        endorsers,
    })
}
