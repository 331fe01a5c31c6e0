//! The `Orderer` resource: one orderer node of a network, a member (consenter) of the Raft group
//! of each channel it serves. Its status is what the node itself reports: its Raft role, the
//! leader it knows, the term and the block height.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::names::{check_dns_label, check_msp_id, DNS_LABEL_PATTERN, MSP_ID_PATTERN};
use crate::network::{NetworkSpec, DEFAULT_ORDERER_MSP_ID, MAX_ORDERERS};
use crate::problems::Problems;

/// One orderer node of a network.
// Each printcolumn(..) repeats `type_ = ..`, which clippy takes for duplicated attributes.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, JsonSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[kube(
    group = "raftnet.dev",
    version = "v1alpha1",
    kind = "Orderer",
    namespaced,
    shortname = "ord",
    category = "raftnet",
    status = "OrdererStatus",
    derive = "PartialEq",
    doc = "One orderer node of a network: a consenter of the Raft group of each channel it serves.",
    printcolumn(
        name = "NETWORK",
        type_ = "string",
        json_path = ".spec.network",
        description = "The network the orderer belongs to"
    ),
    printcolumn(
        name = "ROLE",
        type_ = "string",
        json_path = ".status.role",
        description = "Leader, Follower, Candidate, Halted or Unavailable"
    ),
    printcolumn(
        name = "LEADER",
        type_ = "string",
        json_path = ".status.leader",
        description = "The leader this orderer knows"
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
        description = "Blocks written"
    ),
    printcolumn(
        name = "READY",
        type_ = "string",
        json_path = r#".status.conditions[?(@.type=="Ready")].status"#
    ),
    printcolumn(
        name = "AGE",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OrdererSpec {
    /// Name of the `Network` (same namespace) this orderer belongs to.
    #[schemars(pattern(DNS_LABEL_PATTERN))]
    pub network: String,

    /// MSP id of the orderer organisation; the network's.
    #[serde(default = "default_msp_id")]
    #[schemars(pattern(MSP_ID_PATTERN))]
    pub msp_id: String,

    /// Raft node id of this orderer, 1 to 9, unique in the network.
    #[schemars(range(min = 1, max = MAX_ORDERERS))]
    pub consenter_id: u32,
}

/// What the orderer node last reported.
#[derive(JsonSchema, Deserialize, Serialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct OrdererStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// `Leader`, `Follower`, `Candidate`, `Halted` or `Unavailable` (see `status::role`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,

    /// Name of the orderer this one knows as leader.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader: Option<String>,

    /// Raft term.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub term: Option<u64>,

    /// Number of blocks written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u64>,

    /// Blocks this orderer is behind the leader of its first channel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lag: Option<u64>,

    /// While the node does not answer: when the operator last heard from it (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_contact: Option<String>,

    /// When the first of the node's certificates (TLS, signing) expires (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_expiry: Option<String>,

    /// The orderer's part in each channel it serves.
    #[serde(default)]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub channels: Vec<OrdererChannelStatus>,

    /// `Ready`, `QuorumAvailable` and `Degraded` conditions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
}

/// An orderer's part in one channel, as it reports it.
#[derive(JsonSchema, Deserialize, Serialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct OrdererChannelStatus {
    /// The channel.
    pub name: String,
    /// Leader, Follower, Candidate, Halted or Unavailable.
    pub role: String,
    /// The leader it knows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader: Option<String>,
    pub term: u64,
    pub height: u64,
}

fn default_msp_id() -> String {
    DEFAULT_ORDERER_MSP_ID.to_owned()
}

impl OrdererSpec {
    /// Checks everything the CRD schema checks, and that the orderer belongs to its network's
    /// orderer organisation.
    /// Each message starts with the path of the field.
    pub fn validate(&self, network: &NetworkSpec) -> Result<(), Vec<String>> {
        let mut problems = Problems::default();
        problems.check("spec.network", check_dns_label(&self.network));
        problems.check("spec.mspId", check_msp_id(&self.msp_id));
        let orderer_msp_id = &network.orderer_organization.msp_id;
        if self.msp_id != *orderer_msp_id {
            problems.add(
                "spec.mspId",
                format!(
                    "{} is not the orderer organisation of network {} (it is {orderer_msp_id})",
                    self.msp_id, self.network
                ),
            );
        }
        // Not bounded by the network's orderer count: a replaced orderer gets a fresh Raft id,
        // ids are never reused.
        problems.range(
            "spec.consenterId",
            self.consenter_id.into(),
            1,
            MAX_ORDERERS.into(),
        );
        problems.into_result()
    }
}
