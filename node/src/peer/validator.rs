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
//! Two phases, as in Fabric: [`super::precheck`] (decoding and signatures, the costly part,
//! needing no state) runs on the block's transactions in parallel; [`BlockValidator::validate`]
//! then judges them one by one, in block order, against the state.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use prost::Message;

use super::lifecycle::{self, LIFECYCLE};
use super::precheck::{Prechecked, Signed};
use super::statedb::StateReader;
use crate::identity::{MspSet, Policy, VerifiedIdentity};
use crate::proto::peer::{ChaincodeDefinition, TxReadWriteSet, TxValidationCode as Code};

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

pub(super) struct Invalid(pub(super) Code, pub(super) String);

pub(super) fn invalid(code: Code, reason: impl Into<String>) -> Invalid {
    Invalid(code, reason.into())
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
