//! From `Network` and `Channel` manifests (the same files `kubectl apply` takes) to a
//! [`NetworkPlan`]: the checks the API server's schema would make, the checks across
//! resources, and the conversion of durations and sizes.

use anyhow::{bail, Context};
use raftnet_crds::{load_manifests, parse_duration, parse_size, BatchSpec, Manifests, RaftSpec};

use super::plan::{ChannelPlan, ContractPlan, NetworkPlan, OrgPlan};
use crate::proto::common::{BatchOptions, Policies, RaftOptions};

/// Reads manifest files (multi-document YAML) into one set.
pub fn read_files(paths: &[std::path::PathBuf]) -> anyhow::Result<Manifests> {
    let mut all = Manifests::default();
    for path in paths {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let m = load_manifests(&text).with_context(|| format!("{}", path.display()))?;
        all.networks.extend(m.networks);
        all.channels.extend(m.channels);
        all.orderers.extend(m.orderers);
        all.peers.extend(m.peers);
    }
    Ok(all)
}

/// The network the manifests describe: exactly one `Network` and its `Channel`s.
///
/// The manifests are checked first with [`Manifests::validate`], as the operator checks them,
/// so that both planes accept and refuse the same manifests with the same messages.
pub fn plan(m: &Manifests) -> anyhow::Result<NetworkPlan> {
    if let Err(problems) = m.validate() {
        bail!("the manifests are invalid:\n  {}", problems.join("\n  "));
    }
    let network = match &m.networks[..] {
        [n] => n,
        [] => bail!("no Network resource: the manifests need one (see deploy/minimal.yaml)"),
        more => bail!(
            "{} Network resources ({}); run one network at a time",
            more.len(),
            more.iter()
                .map(|n| n.metadata.name.clone().unwrap_or_default())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let name = network
        .metadata
        .name
        .clone()
        .context("Network: metadata.name is missing")?;
    let spec = &network.spec;
    spec.validate()
        .map_err(|p| anyhow::anyhow!("Network {name}:\n  {}", p.join("\n  ")))?;
    let ms = |field: &str, v: &str| -> anyhow::Result<u64> {
        Ok(parse_duration(v)
            .map_err(|e| anyhow::anyhow!("Network {name}: {field}: {e}"))?
            .as_millis() as u64)
    };
    let mut channels = Vec::new();
    for ch in &m.channels {
        let ch_name = ch
            .metadata
            .name
            .clone()
            .context("Channel: metadata.name is missing")?;
        if ch.spec.network != name {
            bail!(
                "Channel {ch_name}: spec.network: {} is not the Network in these manifests ({name})",
                ch.spec.network
            );
        }
        ch.spec
            .validate(spec)
            .map_err(|p| anyhow::anyhow!("Channel {ch_name}:\n  {}", p.join("\n  ")))?;
        let orderers = spec.orderer_organization.orderers as usize;
        if let Some(names) = &ch.spec.orderers {
            for (i, n) in names.iter().enumerate() {
                let known = (1..=orderers).any(|k| *n == format!("orderer{k}"));
                if !known {
                    bail!("Channel {ch_name}: spec.orderers[{i}]: {n} is not an orderer of network {name} (it has orderer1..orderer{orderers})");
                }
            }
        }
        // Set only when the manifest sets some: unset, the plan keeps raftnet's defaults
        // (the same, from crds::channel::default_policies).
        let policies = ch.spec.policies.as_ref().map(|_| {
            let p = ch
                .spec
                .effective_policies(&spec.orderer_organization.msp_id);
            Policies {
                writers: p.writers,
                readers: p.readers,
                admins: p.admins,
                block_validation: p.block_validation,
            }
        });
        channels.push(ChannelPlan {
            name: ch_name,
            orgs: ch.spec.organizations.clone(),
            consenters: ch.spec.orderers.clone(),
            policies,
            contracts: ch
                .spec
                .contracts
                .iter()
                .map(|c| ContractPlan {
                    name: c.name.clone(),
                    contract: c.contract.as_str().to_string(),
                    version: c.version.clone(),
                    endorsement_policy: c.endorsement_policy.clone(),
                    init: c.init.clone(),
                })
                .collect(),
        });
    }
    if channels.is_empty() {
        bail!("network {name} has no Channel: add one (see deploy/minimal.yaml)");
    }
    if !m.orderers.is_empty() || !m.peers.is_empty() {
        tracing::warn!(
            "Orderer and Peer resources are made by the operator from the Network; locally the Network's counts apply"
        );
    }
    Ok(NetworkPlan {
        name: name.clone(),
        orderer_msp: spec.orderer_organization.msp_id.clone(),
        orderers: spec.orderer_organization.orderers as usize,
        orderer_key_algorithm: spec.orderer_organization.key_algorithm,
        orgs: spec
            .organizations
            .iter()
            .map(|o| OrgPlan {
                msp_id: o.msp_id.clone(),
                peers: o.peers as usize,
                key_algorithm: o.key_algorithm,
            })
            .collect(),
        raft: raft_options(&spec.raft).map_err(|e| anyhow::anyhow!("Network {name}: {e}"))?,
        batch: batch_options(&spec.batch).map_err(|e| anyhow::anyhow!("Network {name}: {e}"))?,
        certificate_validity: std::time::Duration::from_millis(ms(
            "spec.certificateValidity",
            &spec.certificate_validity,
        )?),
        channels,
    })
}

fn millis(field: &str, value: &str) -> Result<u64, String> {
    Ok(parse_duration(value)
        .map_err(|e| format!("{field}: {e}"))?
        .as_millis() as u64)
}

fn bytes(field: &str, value: &str) -> Result<u64, String> {
    parse_size(value).map_err(|e| format!("{field}: {e}"))
}

fn bytes32(field: &str, value: &str) -> Result<u32, String> {
    u32::try_from(bytes(field, value)?).map_err(|_| format!("{field}: {value} is above 4Gi"))
}

/// A network's Raft options as channels carry them; errors name the field.
pub fn raft_options(raft: &RaftSpec) -> Result<RaftOptions, String> {
    Ok(RaftOptions {
        tick_interval_ms: millis("spec.raft.tickInterval", &raft.tick_interval)?,
        election_tick: raft.election_tick,
        heartbeat_tick: raft.heartbeat_tick,
        max_inflight_blocks: raft.max_inflight_blocks,
        snapshot_interval_size: bytes(
            "spec.raft.snapshotIntervalSize",
            &raft.snapshot_interval_size,
        )?,
    })
}

/// A network's block-cutting options as channels carry them; errors name the field.
pub fn batch_options(batch: &BatchSpec) -> Result<BatchOptions, String> {
    Ok(BatchOptions {
        batch_timeout_ms: millis("spec.batch.batchTimeout", &batch.batch_timeout)?,
        max_message_count: batch.max_message_count,
        preferred_max_bytes: bytes32("spec.batch.preferredMaxBytes", &batch.preferred_max_bytes)?,
        absolute_max_bytes: bytes32("spec.batch.absoluteMaxBytes", &batch.absolute_max_bytes)?,
    })
}
