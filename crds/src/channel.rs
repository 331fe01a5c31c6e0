//! The `Channel` resource: a ledger shared by some organisations of a network, ordered by its
//! own Raft group of orderers, with the contracts deployed on it.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::names::{
    check_contract_name, check_dns_label, check_msp_id, CONTRACT_NAME_PATTERN, DNS_LABEL_PATTERN,
    MSP_ID_PATTERN,
};
use crate::network::{NetworkSpec, MAX_ORDERERS};
use crate::problems::{Duplicates, Problems};

/// A channel of a network.
// Each printcolumn(..) repeats `type_ = ..`, which clippy takes for duplicated attributes.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[kube(
    group = "raftnet.dev",
    version = "v1alpha1",
    kind = "Channel",
    namespaced,
    shortname = "chan",
    category = "raftnet",
    status = "ChannelStatus",
    derive = "PartialEq",
    doc = "A channel: a ledger shared by some organisations of a network, ordered by its own Raft \
           group, with the contracts deployed on it.",
    printcolumn(
        name = "NETWORK",
        type_ = "string",
        json_path = ".spec.network",
        description = "The network the channel belongs to"
    ),
    printcolumn(
        name = "LEADER",
        type_ = "string",
        json_path = ".status.leader",
        description = "The orderer that leads the channel's Raft group"
    ),
    printcolumn(
        name = "TERM",
        type_ = "integer",
        json_path = ".status.term",
        description = "Raft term"
    ),
    printcolumn(
        name = "HEIGHT",
        type_ = "integer",
        json_path = ".status.height",
        description = "Blocks ordered"
    ),
    printcolumn(
        name = "QUORUM",
        type_ = "string",
        json_path = ".status.quorum",
        description = "Healthy, Degraded (a quorum but some orderers down) or Lost"
    ),
    printcolumn(
        name = "AGE",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChannelSpec {
    /// Name of the `Network` (same namespace) the channel belongs to.
    #[schemars(pattern(DNS_LABEL_PATTERN))]
    pub network: String,

    /// MSP ids of the member organisations (at least one), each an organisation of the network.
    #[schemars(length(min = 1), inner(pattern(MSP_ID_PATTERN)))]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub organizations: Vec<String>,

    /// Names of the `Orderer`s that form the channel's Raft group (its consenters); all of the
    /// network's orderers when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = MAX_ORDERERS), inner(pattern(DNS_LABEL_PATTERN)))]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub orderers: Option<Vec<String>>,

    /// Who may write, read and administer the channel; raftnet's defaults when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policies: Option<ChannelPolicies>,

    /// Contracts to deploy on the channel.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["name".into()]))]
    pub contracts: Vec<ContractSpec>,
}

/// Channel policies, as signature policy expressions such as
/// `OR('Org1MSP.member','Org2MSP.member')`.
/// Each unset policy takes raftnet's default: Writers, any member of the channel's
/// organisations; Readers, those members and the orderer organisation's; Admins, any admin of
/// the channel's organisations (one organisation's admin deploys a contract; Fabric's
/// MAJORITY Admins needs multi-signature updates, which raftnet does not have yet);
/// BlockValidation, any orderer of the orderer organisation.
#[derive(JsonSchema, Deserialize, Serialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChannelPolicies {
    /// Who may submit transactions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub writers: Option<String>,

    /// Who may read blocks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub readers: Option<String>,

    /// Who may change the channel's configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub admins: Option<String>,

    /// Whose signatures a block needs before peers accept it (Fabric's BlockValidation);
    /// default: any orderer of the orderer organisation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub block_validation: Option<String>,
}

/// A contract deployed on a channel.
#[derive(JsonSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContractSpec {
    /// Name of the contract on the channel, unique in it: `mycc`.
    #[schemars(pattern(CONTRACT_NAME_PATTERN))]
    pub name: String,

    /// Which built-in contract runs under that name.
    pub contract: BuiltinContract,

    /// Version of the deployment.
    #[serde(default = "default_version")]
    #[schemars(length(min = 1))]
    pub version: String,

    /// Which endorsements a transaction needs: `AND('Org1MSP.peer','Org2MSP.peer')`,
    /// `OR(...)`, `OutOf(n, ...)`.
    #[schemars(length(min = 1))]
    pub endorsement_policy: String,

    /// Arguments of the contract's init call: `["a", "100", "b", "200"]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub init: Vec<String>,
}

/// The built-in contracts.
#[derive(JsonSchema, Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum BuiltinContract {
    /// Fabric's chaincode_example02: accounts `a` and `b` (init a 100 b 200, invoke a b 10,
    /// query a).
    Example02,
    /// A key/value asset store.
    Asset,
}

/// What the orderers of the channel last reported.
#[derive(JsonSchema, Deserialize, Serialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ChannelStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// Name of the orderer that leads the channel's Raft group, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader: Option<String>,

    /// Raft term of the channel's group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub term: Option<u64>,

    /// Number of blocks of the channel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u64>,

    /// `Healthy` (all consenters up), `Degraded` (a quorum, not all) or `Lost` (no quorum).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quorum: Option<String>,

    /// Each consenter as it reports itself.
    #[serde(default)]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub consenters: Vec<ConsenterStatus>,

    /// The orderers and peers that joined the channel (each is joined once).
    #[serde(default)]
    #[schemars(extend("x-kubernetes-list-type" = "set"))]
    pub joined: Vec<String>,

    /// The contracts deployed on the channel, as `name@version`.
    #[serde(default)]
    #[schemars(extend("x-kubernetes-list-type" = "set"))]
    pub deployed: Vec<String>,

    /// `Ready`, `QuorumAvailable` and `Degraded` conditions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
}

/// A consenter of a channel, as it reports itself.
#[derive(JsonSchema, Deserialize, Serialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ConsenterStatus {
    /// The orderer.
    pub name: String,
    /// Leader, Follower, Candidate, Halted or Unavailable.
    pub role: String,
    /// Blocks in its ledger.
    pub height: u64,
    /// Whether it takes part in Raft (answers and its chain runs).
    pub active: bool,
}

fn default_version() -> String {
    "1.0".to_owned()
}

impl BuiltinContract {
    /// The name manifests use: `example02`, `asset`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Example02 => "example02",
            Self::Asset => "asset",
        }
    }
}

impl std::fmt::Display for BuiltinContract {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A channel's four policies, each set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EffectivePolicies {
    pub writers: String,
    pub readers: String,
    pub admins: String,
    pub block_validation: String,
}

/// raftnet's default policies of a channel of `organizations` ordered by `orderer_msp_id`'s
/// orderers: Writers, any member of the organisations; Readers, those and the orderer
/// organisation's members (orderers pull blocks from each other); Admins, any admin of the
/// organisations (one organisation's admin deploys a contract); BlockValidation, any orderer
/// of the orderer organisation.
pub fn default_policies(organizations: &[String], orderer_msp_id: &str) -> EffectivePolicies {
    let any = |role: &str, extra: Option<&str>| {
        let leaves: Vec<String> = organizations
            .iter()
            .map(String::as_str)
            .chain(extra)
            .map(|m| format!("'{m}.{role}'"))
            .collect();
        format!("OR({})", leaves.join(","))
    };
    EffectivePolicies {
        writers: any("member", None),
        readers: any("member", Some(orderer_msp_id)),
        admins: any("admin", None),
        block_validation: format!("OR('{orderer_msp_id}.orderer')"),
    }
}

impl ChannelSpec {
    /// The channel's policies: those the spec sets, raftnet's defaults for the others.
    pub fn effective_policies(&self, orderer_msp_id: &str) -> EffectivePolicies {
        let defaults = default_policies(&self.organizations, orderer_msp_id);
        let Some(set) = &self.policies else {
            return defaults;
        };
        EffectivePolicies {
            writers: set.writers.clone().unwrap_or(defaults.writers),
            readers: set.readers.clone().unwrap_or(defaults.readers),
            admins: set.admins.clone().unwrap_or(defaults.admins),
            block_validation: set
                .block_validation
                .clone()
                .unwrap_or(defaults.block_validation),
        }
    }

    /// Checks everything the CRD schema checks, and the channel against its network: every
    /// organisation is one of the network's. Orderer names are checked in form only (they name
    /// `Orderer` resources, not part of the network's spec).
    ///
    /// Each message starts with the path of the field: `spec.organizations[1]: Org3MSP is not
    /// an organisation of network first-network (it has Org1MSP, Org2MSP)`.
    pub fn validate(&self, network: &NetworkSpec) -> Result<(), Vec<String>> {
        let mut problems = Problems::default();
        problems.check("spec.network", check_dns_label(&self.network));

        problems.not_empty("spec.organizations", &self.organizations, "organisation");
        let mut seen = Duplicates::default();
        for (index, msp_id) in self.organizations.iter().enumerate() {
            let path = format!("spec.organizations[{index}]");
            if let Err(message) = check_msp_id(msp_id) {
                problems.add(&path, message);
            } else if network.organization(msp_id).is_none() {
                problems.add(&path, network.not_an_organization(msp_id, &self.network));
            }
            seen.check(&mut problems, path, msp_id, "organisation");
        }

        if let Some(orderers) = &self.orderers {
            problems.not_empty("spec.orderers", orderers, "orderer");
            if orderers.len() > MAX_ORDERERS as usize {
                problems.add(
                    "spec.orderers",
                    format!(
                        "must list at most {MAX_ORDERERS} orderers (got {})",
                        orderers.len()
                    ),
                );
            }
            let mut seen = Duplicates::default();
            for (index, name) in orderers.iter().enumerate() {
                let path = format!("spec.orderers[{index}]");
                problems.check(&path, check_dns_label(name));
                seen.check(&mut problems, path, name, "orderer");
            }
        }

        if let Some(policies) = &self.policies {
            for (field, policy) in [
                ("writers", &policies.writers),
                ("readers", &policies.readers),
                ("admins", &policies.admins),
                ("blockValidation", &policies.block_validation),
            ] {
                if let Some(policy) = policy {
                    problems.not_blank(format!("spec.policies.{field}"), policy);
                }
            }
        }

        let mut seen = Duplicates::default();
        for (index, contract) in self.contracts.iter().enumerate() {
            let path = format!("spec.contracts[{index}]");
            problems.check(format!("{path}.name"), check_contract_name(&contract.name));
            seen.check(
                &mut problems,
                format!("{path}.name"),
                &contract.name,
                "contract",
            );
            problems.not_blank(format!("{path}.version"), &contract.version);
            problems.not_blank(
                format!("{path}.endorsementPolicy"),
                &contract.endorsement_policy,
            );
        }
        problems.into_result()
    }
}

#[cfg(test)]
mod policy_tests {
    use super::*;

    #[test]
    fn unset_policies_take_the_defaults_and_set_ones_stay() {
        let orgs = vec!["Org1MSP".to_owned(), "Org2MSP".to_owned()];
        let d = default_policies(&orgs, "OrdererMSP");
        assert_eq!(d.writers, "OR('Org1MSP.member','Org2MSP.member')");
        assert_eq!(
            d.readers,
            "OR('Org1MSP.member','Org2MSP.member','OrdererMSP.member')"
        );
        assert_eq!(d.admins, "OR('Org1MSP.admin','Org2MSP.admin')");
        assert_eq!(d.block_validation, "OR('OrdererMSP.orderer')");
        let spec = ChannelSpec {
            network: "net".into(),
            organizations: orgs,
            orderers: None,
            policies: Some(ChannelPolicies {
                admins: Some("AND('Org1MSP.admin','Org2MSP.admin')".into()),
                ..ChannelPolicies::default()
            }),
            contracts: Vec::new(),
        };
        let p = spec.effective_policies("OrdererMSP");
        assert_eq!(p.admins, "AND('Org1MSP.admin','Org2MSP.admin')");
        assert_eq!(p.writers, d.writers);
    }
}
