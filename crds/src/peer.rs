//! The `Peer` resource: one peer node of an organisation. It keeps the ledger and state of the
//! channels it joined, endorses transactions and commits blocks.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::names::{check_dns_label, check_msp_id, DNS_LABEL_PATTERN, MSP_ID_PATTERN};
use crate::network::NetworkSpec;
use crate::problems::Problems;

/// One peer node of an organisation.
// Each printcolumn(..) repeats `type_ = ..`, which clippy takes for duplicated attributes.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, JsonSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[kube(
    group = "raftnet.dev",
    version = "v1alpha1",
    kind = "Peer",
    namespaced,
    shortname = "peer",
    category = "raftnet",
    status = "PeerStatus",
    derive = "PartialEq",
    doc = "One peer node of an organisation: it endorses transactions and commits the blocks of \
           the channels it joined.",
    printcolumn(
        name = "ORG",
        type_ = "string",
        json_path = ".spec.organization",
        description = "MSP id of the peer's organisation"
    ),
    printcolumn(
        name = "CHANNELS",
        type_ = "integer",
        json_path = ".status.channels",
        description = "Channels joined"
    ),
    printcolumn(
        name = "HEIGHT",
        type_ = "integer",
        json_path = ".status.height",
        description = "Blocks committed"
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
pub struct PeerSpec {
    /// Name of the `Network` (same namespace) this peer belongs to.
    #[schemars(pattern(DNS_LABEL_PATTERN))]
    pub network: String,

    /// MSP id of the peer's organisation, one of the network's organisations.
    #[schemars(pattern(MSP_ID_PATTERN))]
    pub organization: String,
}

/// What the peer node last reported.
#[derive(JsonSchema, Deserialize, Serialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PeerStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// Number of channels the peer joined.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channels: Option<u32>,

    /// Blocks committed (the largest height over its channels).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u64>,

    /// `Ready` and `Degraded` conditions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
}

impl PeerSpec {
    /// Checks everything the CRD schema checks, and that the organisation is one of the
    /// network's. Each message starts with the path of the field.
    pub fn validate(&self, network: &NetworkSpec) -> Result<(), Vec<String>> {
        let mut problems = Problems::default();
        problems.check("spec.network", check_dns_label(&self.network));
        problems.check("spec.organization", check_msp_id(&self.organization));
        if network.organization(&self.organization).is_none() {
            problems.add(
                "spec.organization",
                network.not_an_organization(&self.organization, &self.network),
            );
        }
        problems.into_result()
    }
}
