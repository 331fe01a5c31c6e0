//! The checks a channel configuration must pass before a genesis block is built from it or a
//! node joins it: the same in `raftnet up`, the operator and the nodes themselves.

use anyhow::{bail, Context};

use crate::identity::{MspSet, Policy};
use crate::proto::common::ChannelConfig;

/// Channel names as Fabric allows them.
pub fn check_channel_name(name: &str) -> anyhow::Result<()> {
    let ok = !name.is_empty()
        && name.len() < 250
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-');
    if !ok {
        bail!("channel name {name:?} is invalid: use lowercase letters, digits, '.' and '-', starting with a letter, under 250 characters");
    }
    Ok(())
}

const MAX_TICK_MS: u64 = 60_000;
const MAX_ELECTION_TICK: u32 = 1_000;
const MAX_INFLIGHT_BLOCKS: u32 = 1_000;
const MAX_BATCH_TIMEOUT_MS: u64 = 600_000;
const MAX_BLOCK_BYTES: u64 = 1 << 30;

/// Refuses a configuration the chain could not run with, naming the field.
pub fn check_config(cfg: &ChannelConfig) -> anyhow::Result<()> {
    check_channel_name(&cfg.channel_id)?;
    if cfg.consenters.is_empty() {
        bail!("consenters: a channel needs at least one consenter");
    }
    let mut ids: Vec<u64> = cfg.consenters.iter().map(|c| c.id).collect();
    ids.sort_unstable();
    ids.dedup();
    if ids.len() != cfg.consenters.len() || ids.contains(&0) {
        bail!("consenters: ids must be unique and non-zero");
    }
    let raft = cfg.raft.as_ref().context("raft options are missing")?;
    if raft.tick_interval_ms == 0 {
        bail!("raft.tickInterval must be positive");
    }
    if raft.heartbeat_tick == 0 || raft.election_tick <= raft.heartbeat_tick {
        bail!("raft.electionTick ({}) must be greater than raft.heartbeatTick ({}), which must be positive", raft.election_tick, raft.heartbeat_tick);
    }
    if raft.max_inflight_blocks == 0 {
        bail!("raft.maxInflightBlocks must be positive");
    }
    // Upper bounds: beyond them timers overflow or a node waits for hours; none is a sane
    // setting for an ordering service.
    if raft.tick_interval_ms > MAX_TICK_MS {
        bail!(
            "raft.tickInterval ({} ms) must be at most 1m",
            raft.tick_interval_ms
        );
    }
    if raft.election_tick > MAX_ELECTION_TICK {
        bail!(
            "raft.electionTick ({}) must be at most {MAX_ELECTION_TICK}",
            raft.election_tick
        );
    }
    if raft.max_inflight_blocks > MAX_INFLIGHT_BLOCKS {
        bail!(
            "raft.maxInflightBlocks ({}) must be at most {MAX_INFLIGHT_BLOCKS}",
            raft.max_inflight_blocks
        );
    }
    let batch = cfg.batch.as_ref().context("batch options are missing")?;
    if batch.max_message_count == 0
        || batch.absolute_max_bytes == 0
        || batch.preferred_max_bytes == 0
    {
        bail!("batch: maxMessageCount, preferredMaxBytes and absoluteMaxBytes must be positive");
    }
    if batch.preferred_max_bytes > batch.absolute_max_bytes {
        bail!("batch.preferredMaxBytes must not exceed batch.absoluteMaxBytes");
    }
    if batch.batch_timeout_ms > MAX_BATCH_TIMEOUT_MS {
        bail!(
            "batch.batchTimeout ({} ms) must be at most 10m",
            batch.batch_timeout_ms
        );
    }
    if u64::from(batch.absolute_max_bytes) > MAX_BLOCK_BYTES {
        bail!(
            "batch.absoluteMaxBytes ({}) must be at most 1Gi",
            batch.absolute_max_bytes
        );
    }
    let msps = MspSet::new(&cfg.organizations).context("organizations")?;
    for c in &cfg.consenters {
        if !msps.contains(&c.msp_id) {
            bail!(
                "consenter {} belongs to {}, which is not among the channel's organizations",
                c.name,
                c.msp_id
            );
        }
    }
    let policies = cfg.policies.as_ref().context("policies are missing")?;
    for (name, text) in [
        ("writers", &policies.writers),
        ("readers", &policies.readers),
        ("admins", &policies.admins),
        ("blockValidation", &policies.block_validation),
    ] {
        // An empty BlockValidation policy means the default (any consenter organisation's
        // orderer); the others are required.
        if name == "blockValidation" && text.trim().is_empty() {
            continue;
        }
        let p: Policy = text.parse().with_context(|| format!("policies.{name}"))?;
        for msp in p.msp_ids() {
            if !msps.contains(&msp) {
                bail!(
                    "policies.{name} names {msp}, which is not among the channel's organizations"
                );
            }
        }
    }
    check_policies_let_the_channel_run(cfg, policies)
}

/// Policies that would stall the channel are refused: orderers pull blocks from each other and
/// peers read them (Readers), and each block carries one signature, its creator's
/// (BlockValidation).
fn check_policies_let_the_channel_run(
    cfg: &ChannelConfig,
    policies: &crate::proto::common::Policies,
) -> anyhow::Result<()> {
    use crate::identity::{Role, VerifiedIdentity};
    let readers: Policy = policies.readers.parse().context("policies.readers")?;
    let blocks = crate::ledger::block_validation_policy(cfg)?;
    let admits =
        |p: &Policy, msp: &str, role| p.evaluate(&[&VerifiedIdentity::principal(msp, role)]);
    let mut orderer_orgs: Vec<&str> = cfg.consenters.iter().map(|c| c.msp_id.as_str()).collect();
    orderer_orgs.sort_unstable();
    orderer_orgs.dedup();
    for msp in &orderer_orgs {
        if !admits(&readers, msp, Role::Orderer) {
            bail!("policies.readers ({}) must admit the orderers of {msp}: they pull blocks from each other to catch up", policies.readers);
        }
        if !admits(&blocks, msp, Role::Orderer) {
            bail!("policies.blockValidation ({blocks}) must be satisfied by the signature of one orderer of {msp}: a block carries only its creator's");
        }
    }
    for org in &cfg.organizations {
        let msp = org.msp_id.as_str();
        if !orderer_orgs.contains(&msp) && !admits(&readers, msp, Role::Peer) {
            bail!("policies.readers ({}) must admit the peers of {msp}: they read the channel's blocks", policies.readers);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::ordering::{default_batch, default_raft};
    use crate::proto::common::Consenter;

    fn config() -> ChannelConfig {
        ChannelConfig {
            channel_id: "mychannel".into(),
            organizations: Vec::new(),
            consenters: vec![Consenter {
                id: 1,
                name: "orderer1".into(),
                ..Consenter::default()
            }],
            raft: Some(default_raft()),
            batch: Some(default_batch()),
            policies: None,
        }
    }

    #[test]
    fn values_beyond_the_bounds_are_refused_naming_the_field() {
        type Change = fn(&mut ChannelConfig);
        let cases: [(Change, &str); 5] = [
            (
                |c| c.raft.as_mut().unwrap().tick_interval_ms = u64::MAX,
                "raft.tickInterval",
            ),
            (
                |c| c.raft.as_mut().unwrap().election_tick = u32::MAX,
                "raft.electionTick",
            ),
            (
                |c| c.raft.as_mut().unwrap().max_inflight_blocks = 1 << 20,
                "raft.maxInflightBlocks",
            ),
            (
                |c| c.batch.as_mut().unwrap().batch_timeout_ms = u64::MAX,
                "batch.batchTimeout",
            ),
            (
                |c| {
                    let b = c.batch.as_mut().unwrap();
                    b.absolute_max_bytes = u32::MAX;
                    b.preferred_max_bytes = 1 << 20;
                },
                "batch.absoluteMaxBytes",
            ),
        ];
        for (change, field) in cases {
            let mut c = config();
            change(&mut c);
            let err = format!("{:#}", check_config(&c).unwrap_err());
            assert!(err.contains(field), "{field}: {err}");
        }
    }
}
