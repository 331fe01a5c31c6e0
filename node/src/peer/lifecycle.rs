//! Contract deployment ("instantiate"): a contract's definition (name, version, built-in
//! contract, endorsement policy) is written to the ledger by an ordered transaction, under
//! the `_lifecycle` namespace, so that every peer of the channel enforces the same policy.
//!
//! A deploy proposal calls contract `_lifecycle` with
//! `["deploy", NAME, VERSION, CONTRACT, POLICY, INIT_ARGS_JSON]`. The endorsers check the
//! definition, run the contract's `init`, and sign both the definition and the init writes.
//! Its creator must satisfy the channel's Admins policy; its endorsements must satisfy the
//! new contract's own endorsement policy.

use prost::Message;

use super::statedb::StateReader;
use crate::chaincode::{builtin, BUILTIN};
use crate::identity::{MspSet, Policy};
use crate::proto::peer::{ChaincodeDefinition, TxReadWriteSet};

pub use crate::deploy::{deploy_args, DEPLOY, LIFECYCLE};

/// Contract names are namespaces in the state database and appear on command lines.
pub fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "contract name {name:?} is invalid: use letters, digits, '_', '-' and '.', starting with a letter or digit, at most 64 characters"
        ))
    }
}

/// Parses and checks a deploy proposal's arguments against the channel's organisations;
/// returns the definition and the init arguments.
pub fn parse_deploy(
    args: &[String],
    msps: &MspSet,
) -> Result<(ChaincodeDefinition, Vec<String>), String> {
    let [cmd, name, version, contract, policy, init] = args else {
        return Err(format!(
            "_lifecycle needs [\"deploy\", NAME, VERSION, CONTRACT, POLICY, INIT_ARGS_JSON]; got {} arguments",
            args.len()
        ));
    };
    if cmd != DEPLOY {
        return Err(format!("_lifecycle knows only \"deploy\", not {cmd:?}"));
    }
    check_name(name)?;
    if version.is_empty() {
        return Err("contract version must not be empty".into());
    }
    if builtin(contract).is_none() {
        return Err(format!(
            "unknown contract {contract:?}; the built-in contracts are {}",
            BUILTIN.join(", ")
        ));
    }
    let parsed = parse_policy(policy)?;
    for msp in parsed.msp_ids() {
        if !msps.contains(&msp) {
            return Err(format!(
                "endorsement policy names {msp}, which is not an organisation of this channel"
            ));
        }
    }
    let init: Vec<String> = serde_json::from_str(init)
        .map_err(|e| format!("init arguments must be a JSON array of strings: {e}"))?;
    Ok((
        ChaincodeDefinition {
            name: name.clone(),
            version: version.clone(),
            contract: contract.clone(),
            endorsement_policy: policy.clone(),
        },
        init,
    ))
}

pub fn parse_policy(text: &str) -> Result<Policy, String> {
    if text.trim().is_empty() {
        return Err(
            "endorsement policy must not be empty, e.g. AND('Org1MSP.peer','Org2MSP.peer')".into(),
        );
    }
    text.parse::<Policy>()
        .map_err(|e| format!("endorsement policy {text:?}: {e}"))
}

/// The committed definition of contract `name`, if deployed.
pub fn definition(state: &StateReader, name: &str) -> anyhow::Result<Option<ChaincodeDefinition>> {
    match state.get(LIFECYCLE, name)? {
        None => Ok(None),
        Some(v) => Ok(Some(ChaincodeDefinition::decode(&v.value[..]).map_err(
            |e| anyhow::anyhow!("stored definition of contract {name} is corrupt: {e}"),
        )?)),
    }
}

/// A deploy writes exactly one lifecycle key, the contract's name, holding its definition:
/// it must not touch any other contract's definition.
pub fn check_deploy_writes(
    rwset: &TxReadWriteSet,
    def: &ChaincodeDefinition,
) -> Result<(), String> {
    let writes: Vec<_> = rwset
        .ns_rwset
        .iter()
        .filter(|ns| ns.namespace == LIFECYCLE)
        .flat_map(|ns| &ns.writes)
        .collect();
    let [w] = writes[..] else {
        return Err(format!(
            "a deploy must write one {LIFECYCLE} key, not {}",
            writes.len()
        ));
    };
    if w.key != def.name || w.is_delete {
        return Err(format!(
            "a deploy of {} may write only {LIFECYCLE}/{}",
            def.name, def.name
        ));
    }
    match ChaincodeDefinition::decode(&w.value[..]) {
        Ok(written) if written == *def => Ok(()),
        _ => Err("the deploy does not write the proposed definition".into()),
    }
}
