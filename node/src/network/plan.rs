//! What a network is made of, independent of where it comes from (`raftnet bootstrap`
//! flags, or `Network` and `Channel` manifests): organisations and their peers, orderers,
//! channel options, channels and the contracts to deploy on them.

use serde::{Deserialize, Serialize};

use crate::identity::KeyAlgorithm;
use crate::proto::common::{BatchOptions, Policies, RaftOptions};

#[derive(Clone, Debug)]
pub struct NetworkPlan {
    pub name: String,
    pub orderer_msp: String,
    pub orderers: usize,
    /// Of the orderers' signing identities.
    pub orderer_key_algorithm: KeyAlgorithm,
    pub orgs: Vec<OrgPlan>,
    pub raft: RaftOptions,
    pub batch: BatchOptions,
    /// How long node, admin and client certificates are valid.
    pub certificate_validity: std::time::Duration,
    pub channels: Vec<ChannelPlan>,
}

/// The `Network` spec's default `certificateValidity`.
pub fn default_certificate_validity() -> std::time::Duration {
    raftnet_crds::parse_duration(raftnet_crds::network::DEFAULT_CERTIFICATE_VALIDITY)
        .expect("the default certificate validity parses")
}

#[derive(Clone, Debug)]
pub struct OrgPlan {
    pub msp_id: String,
    pub peers: usize,
    /// Of its members' signing identities.
    pub key_algorithm: KeyAlgorithm,
}

#[derive(Clone, Debug)]
pub struct ChannelPlan {
    pub name: String,
    /// Application organisations (MSP ids) that are members.
    pub orgs: Vec<String>,
    /// Orderer names that are consenters; all orderers when None.
    pub consenters: Option<Vec<String>>,
    /// Defaults: members of the channel's organisations write and read (the orderers read
    /// too), their admins administer.
    pub policies: Option<Policies>,
    pub contracts: Vec<ContractPlan>,
}

/// A contract to deploy on a channel once it is up.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContractPlan {
    pub name: String,
    pub contract: String,
    pub version: String,
    pub endorsement_policy: String,
    #[serde(default)]
    pub init: Vec<String>,
}

impl ChannelPlan {
    /// The channel's policies: the plan's, or the defaults over its organisations.
    pub fn policies(&self, orderer_msp: &str) -> Policies {
        if let Some(p) = &self.policies {
            return p.clone();
        }
        let d = raftnet_crds::channel::default_policies(&self.orgs, orderer_msp);
        Policies {
            writers: d.writers,
            readers: d.readers,
            admins: d.admins,
            block_validation: d.block_validation,
        }
    }
}
