//! A channel's configuration from a network plan: its organisations' CAs, its consenters, the
//! network's Raft and batch options and its policies, checked as every node will check it.
//! `raftnet up` and the operator build genesis blocks from it alike.

use anyhow::Context;

use super::plan::{ChannelPlan, NetworkPlan};
use crate::proto::common::{ChannelConfig, Consenter, Organization};

/// An organisation's CA certificates (PEM), as a channel configuration names them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrgCas {
    pub msp_id: String,
    pub ca_cert_pem: Vec<u8>,
    pub tls_ca_cert_pem: Vec<u8>,
}

impl OrgCas {
    fn organization(&self) -> Organization {
        Organization {
            msp_id: self.msp_id.clone(),
            root_cert_pem: self.ca_cert_pem.clone(),
            tls_root_cert_pem: self.tls_ca_cert_pem.clone(),
        }
    }
}

/// The configuration of channel `ch`: the orderer organisation and the channel's
/// organisations (from `orgs`, which holds at least those), its consenters (those `ch` names,
/// or all of `orderers`), the plan's Raft and batch options and the channel's policies.
pub fn channel_config(
    plan: &NetworkPlan,
    ch: &ChannelPlan,
    orgs: &[OrgCas],
    orderers: &[Consenter],
) -> anyhow::Result<ChannelConfig> {
    let find = |msp: &str| {
        orgs.iter().find(|o| o.msp_id == msp).with_context(|| {
            format!(
                "channel {}: {msp} is not an organisation of the network",
                ch.name
            )
        })
    };
    let mut organizations = vec![find(&plan.orderer_msp)?.organization()];
    for msp in &ch.orgs {
        organizations.push(find(msp)?.organization());
    }
    let consenters: Vec<Consenter> = match &ch.consenters {
        None => orderers.to_vec(),
        Some(names) => names
            .iter()
            .map(|n| {
                orderers
                    .iter()
                    .find(|c| &c.name == n)
                    .cloned()
                    .with_context(|| {
                        format!("channel {}: orderer {n} is not in the network", ch.name)
                    })
            })
            .collect::<anyhow::Result<_>>()?,
    };
    let config = ChannelConfig {
        channel_id: ch.name.clone(),
        organizations,
        consenters,
        raft: Some(plan.raft),
        batch: Some(plan.batch),
        policies: Some(ch.policies(&plan.orderer_msp)),
    };
    crate::ledger::check_config(&config).with_context(|| format!("channel {}", ch.name))?;
    Ok(config)
}
