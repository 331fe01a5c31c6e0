//! Validates the transactions of a block, in order, as every peer of the channel does:
//! the creator's signature and the channel's Writers policy, the transaction id, the binding
//! of endorsements to the proposal, the endorsement policy, the namespaces written, MVCC read
//! versions (counting earlier transactions of the same block) and duplicate transaction ids.
//!
//! Verdicts depend only on the block and the state before it: certificates are checked
//! without their validity period (as Fabric's validators do), so a peer judges history the
//! same whatever its clock and however late it catches up; a storage error aborts the block
//! rather than becoming a verdict.
//!
//! Two phases, as in Fabric: [`precheck`] (decoding and signatures, the costly part, needing
//! no state) runs on the block's transactions in parallel; [`BlockValidator::validate`] then
//! judges them one by one, in block order, against the state.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use prost::Message;
use ring::digest::{digest, SHA256};

use super::lifecycle::{self, LIFECYCLE};
use super::statedb::StateReader;
use crate::identity::batch::{verify_all, Check};
use crate::identity::{IdentityError, MspSet, Policy, VerifiedIdentity};
use crate::ledger::compute_tx_id;
use crate::proto::common::{ChannelHeader, Envelope, HeaderType, Payload};
use crate::proto::peer::{
    ChaincodeDefinition, ChaincodeInput, Proposal, ProposalResponsePayload, Transaction,
    TxReadWriteSet, TxValidationCode as Code,
};

/// Endorsements checked per organisation of the channel; more are refused unread, so that a
/// writer cannot make every peer verify thousands of signatures.
const ENDORSEMENTS_PER_ORG: usize = 4;

/// What validation needs to know about a channel.
pub struct ChannelRules {
    pub channel_id: String,
    pub msps: MspSet,
    pub writers: Policy,
    pub admins: Policy,
    /// Who may read blocks and commit events.
    pub readers: Policy,
    /// Endorsements this peer signed, not checked again.
    pub own_endorsements: super::own_endorsements::OwnEndorsements,
    /// Parsed endorsement policies by their text.
    pub policies: Mutex<HashMap<String, Arc<Policy>>>,
}

impl ChannelRules {
    fn policy(&self, text: &str) -> Result<Arc<Policy>, String> {
        let mut cache = self.policies.lock().expect("policies");
        if let Some(p) = cache.get(text) {
            return Ok(p.clone());
        }
        let p = Arc::new(lifecycle::parse_policy(text)?);
        if cache.len() > 1000 {
            cache.clear();
        }
        cache.insert(text.to_string(), p.clone());
        Ok(p)
    }
}

/// The verdict on one transaction.
#[derive(Debug)]
pub struct Verdict {
    /// The id in the envelope's header; None when the envelope does not decode.
    pub tx_id: Option<String>,
    /// The id is now used: the creator was proven, so no later transaction may reuse it.
    pub spends_tx_id: bool,
    pub code: Code,
    /// Why it is invalid, for the log.
    pub reason: String,
    /// The writes to apply (valid transactions only).
    pub rwset: Option<TxReadWriteSet>,
}

struct Invalid(Code, String);

fn invalid(code: Code, reason: impl Into<String>) -> Invalid {
    Invalid(code, reason.into())
}

/// What the stateless checks of one transaction established: they need no ledger state, so
/// the transactions of a block go through them in parallel.
pub struct Prechecked {
    tx_id: Option<String>,
    /// The tx id is the creator's and the creator signed the envelope.
    creator_proven: bool,
    checked: Result<Signed, Invalid>,
}

/// A transaction whose creator, proposal binding and endorsement signatures are checked.
struct Signed {
    creator: Arc<VerifiedIdentity>,
    input: ChaincodeInput,
    chaincode_version: String,
    rwset: TxReadWriteSet,
    /// Endorsers whose signatures verify over the transaction's response payload.
    endorsers: Vec<Arc<VerifiedIdentity>>,
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

/// Judges prechecked transactions in block order against `state` (the state before this
/// block) and the writes of the block's earlier valid transactions.
pub struct BlockValidator<'a> {
    rules: &'a ChannelRules,
    state: &'a StateReader,
    /// Keys written by earlier valid transactions of this block, per namespace.
    updated: HashMap<String, HashSet<String>>,
    seen_tx_ids: HashSet<String>,
    /// Contracts deployed by earlier valid transactions of this block.
    deployed: HashMap<String, ChaincodeDefinition>,
}

/// Outer Err: the state database failed and the block cannot be judged. Inner: the verdict.
type Judged<T> = anyhow::Result<Result<T, Invalid>>;

impl<'a> BlockValidator<'a> {
    pub fn new(rules: &'a ChannelRules, state: &'a StateReader) -> Self {
        Self {
            rules,
            state,
            updated: HashMap::new(),
            seen_tx_ids: HashSet::new(),
            deployed: HashMap::new(),
        }
    }

    /// The verdict on the next transaction of the block.
    pub fn validate(&mut self, pre: Prechecked) -> anyhow::Result<Verdict> {
        let Prechecked {
            tx_id,
            creator_proven,
            checked,
        } = pre;
        // An id is judged a duplicate, or spent, only once the creator is proven to own it:
        // a forged envelope must not use up a client's id.
        let result = match (&tx_id, creator_proven) {
            (Some(id), true) => {
                if self.seen_tx_ids.contains(id) || self.state.tx(id)?.is_some() {
                    Err(invalid(
                        Code::DuplicateTxid,
                        format!("transaction {id} was already committed"),
                    ))
                } else {
                    self.seen_tx_ids.insert(id.clone());
                    match checked {
                        Ok(signed) => self.check_state(signed)?,
                        Err(e) => Err(e),
                    }
                }
            }
            _ => Err(checked
                .err()
                .unwrap_or_else(|| invalid(Code::BadPayload, "creator not proven"))),
        };
        let spends_tx_id =
            creator_proven && !matches!(&result, Err(Invalid(Code::DuplicateTxid, _)));
        Ok(match result {
            Ok(rwset) => {
                self.record(&rwset);
                Verdict {
                    tx_id,
                    spends_tx_id,
                    code: Code::Valid,
                    reason: String::new(),
                    rwset: Some(rwset),
                }
            }
            Err(Invalid(code, reason)) => Verdict {
                tx_id,
                spends_tx_id,
                code,
                reason,
                rwset: None,
            },
        })
    }

    /// The contract's definition and endorsement policy, the namespaces written, and MVCC.
    fn check_state(&self, signed: Signed) -> Judged<TxReadWriteSet> {
        let rules = self.rules;
        let Signed {
            creator,
            input,
            chaincode_version,
            rwset,
            endorsers,
        } = signed;
        let (policy_text, writable) = if input.chaincode == LIFECYCLE {
            if !rules.admins.evaluate(&[&creator]) {
                return Ok(Err(invalid(
                    Code::EndorsementPolicyFailure,
                    format!(
                        "deploying a contract needs a creator satisfying the channel's Admins policy; {} of {} does not",
                        creator.common_name, creator.msp_id
                    ),
                )));
            }
            let def = match lifecycle::parse_deploy(&input.args, &rules.msps) {
                Ok((def, _)) => def,
                Err(e) => return Ok(Err(invalid(Code::InvalidChaincode, e))),
            };
            if self.deployed.contains_key(&def.name)
                || lifecycle::definition(self.state, &def.name)?.is_some()
            {
                return Ok(Err(invalid(
                    Code::InvalidChaincode,
                    format!("contract {} is already deployed", def.name),
                )));
            }
            if let Err(e) = lifecycle::check_deploy_writes(&rwset, &def) {
                return Ok(Err(invalid(Code::IllegalWriteset, e)));
            }
            (
                def.endorsement_policy,
                vec![LIFECYCLE.to_string(), def.name],
            )
        } else {
            let def = match self.deployed.get(&input.chaincode) {
                Some(d) => Some(d.clone()),
                None => lifecycle::definition(self.state, &input.chaincode)?,
            };
            let Some(def) = def else {
                return Ok(Err(invalid(
                    Code::InvalidChaincode,
                    format!("contract {} is not deployed", input.chaincode),
                )));
            };
            if chaincode_version != def.version {
                return Ok(Err(invalid(
                    Code::InvalidChaincode,
                    format!(
                        "endorsed with version {chaincode_version} of {}, deployed is {}",
                        def.name, def.version
                    ),
                )));
            }
            (def.endorsement_policy, vec![def.name])
        };
        for ns in &rwset.ns_rwset {
            if !ns.writes.is_empty() && !writable.contains(&ns.namespace) {
                return Ok(Err(invalid(
                    Code::IllegalWriteset,
                    format!(
                        "writes to namespace {} by contract {}",
                        ns.namespace, input.chaincode
                    ),
                )));
            }
        }
        let policy = match rules.policy(&policy_text) {
            Ok(p) => p,
            Err(e) => return Ok(Err(invalid(Code::EndorsementPolicyFailure, e))),
        };
        let refs: Vec<&VerifiedIdentity> = endorsers.iter().map(|a| a.as_ref()).collect();
        if !policy.evaluate(&refs) {
            let who: Vec<String> = refs
                .iter()
                .map(|i| format!("{}.{}", i.msp_id, i.role.map(|r| r.as_str()).unwrap_or("?")))
                .collect();
            return Ok(Err(invalid(
                Code::EndorsementPolicyFailure,
                format!(
                    "valid endorsements [{}] do not satisfy {policy}",
                    who.join(", ")
                ),
            )));
        }
        Ok(self.check_mvcc(&rwset)?.map(|()| rwset))
    }

    /// Every read version must still be current, and every range must return the same keys.
    fn check_mvcc(&self, rwset: &TxReadWriteSet) -> Judged<()> {
        for ns in &rwset.ns_rwset {
            let updated = self.updated.get(&ns.namespace);
            for r in &ns.reads {
                if updated.is_some_and(|u| u.contains(&r.key)) {
                    return Ok(Err(invalid(
                        Code::MvccReadConflict,
                        format!(
                            "{}/{} was written by an earlier transaction of this block",
                            ns.namespace, r.key
                        ),
                    )));
                }
                let current = self.state.get(&ns.namespace, &r.key)?;
                if current.map(|v| v.version) != r.version {
                    return Ok(Err(invalid(
                        Code::MvccReadConflict,
                        format!("{}/{} changed since it was read", ns.namespace, r.key),
                    )));
                }
            }
            for rr in &ns.range_reads {
                let in_range = |k: &str| {
                    k >= rr.start_key.as_str() && (rr.end_key.is_empty() || k < rr.end_key.as_str())
                };
                let phantom = |why: &str| {
                    Ok(Err(invalid(
                        Code::PhantomReadConflict,
                        format!(
                            "range [{}, {}) of {} {why}",
                            rr.start_key, rr.end_key, ns.namespace
                        ),
                    )))
                };
                if updated.is_some_and(|u| u.iter().any(|k| in_range(k))) {
                    return phantom("was written by an earlier transaction of this block");
                }
                let now = self
                    .state
                    .range(&ns.namespace, &rr.start_key, &rr.end_key)?;
                let same = now.len() == rr.results.len()
                    && now
                        .iter()
                        .zip(&rr.results)
                        .all(|((k, v), r)| *k == r.key && Some(v.version) == r.version);
                if !same {
                    return phantom("changed since it was read");
                }
            }
        }
        Ok(Ok(()))
    }

    fn record(&mut self, rwset: &TxReadWriteSet) {
        for ns in &rwset.ns_rwset {
            let set = self.updated.entry(ns.namespace.clone()).or_default();
            for w in &ns.writes {
                set.insert(w.key.clone());
                // check_deploy_writes made sure the only lifecycle write is the definition
                // under its own name.
                if ns.namespace == LIFECYCLE && !w.is_delete {
                    if let Ok(def) = ChaincodeDefinition::decode(&w.value[..]) {
                        if def.name == w.key {
                            self.deployed.insert(def.name.clone(), def);
                        }
                    }
                }
            }
        }
    }
}
