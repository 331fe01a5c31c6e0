//! The `Network` resource: the organisations of a ledger network, its orderer organisation and
//! the Raft and block-cutting options its orderers run with.
//!
//! The operator makes `Orderer`, `Peer` and `Channel` children of a `Network` unless the user
//! writes them; `raftnet up` reads the same manifest and runs the network as local processes.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::keys::KeyAlgorithm;
use crate::names::{check_msp_id, MSP_ID_PATTERN};
use crate::problems::{Duplicates, Problems};
use crate::units::{DURATION_PATTERN, SIZE_PATTERN};

/// The most orderers a network may have (a Raft group of 9 tolerates 4 failures).
pub const MAX_ORDERERS: u32 = 9;

/// The most peers an organisation may have.
pub const MAX_PEERS_PER_ORGANIZATION: u32 = 8;

/// The MSP id of the orderer organisation when a manifest names none.
pub const DEFAULT_ORDERER_MSP_ID: &str = "OrdererMSP";

/// Why the orderer count must be odd; the schema's CEL rule and `validate` both say it.
pub const ODD_ORDERERS_MESSAGE: &str = "orderers must be odd: a Raft group of N tolerates (N-1)/2 \
                                        failures; use 1, 3, 5, 7 or 9";

/// A ledger network: organisations with their peers, and an orderer organisation whose orderers
/// form one Raft group per channel.
// Each printcolumn(..) repeats `type_ = ..`, which clippy takes for duplicated attributes.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[kube(
    group = "raftnet.dev",
    version = "v1alpha1",
    kind = "Network",
    namespaced,
    shortname = "rnet",
    category = "raftnet",
    status = "NetworkStatus",
    derive = "PartialEq",
    doc = "A ledger network: organisations and their peers, an orderer organisation whose \
           orderers form a Raft group per channel, and the Raft and block-cutting options.",
    printcolumn(
        name = "ORDERERS",
        type_ = "string",
        json_path = ".status.orderers",
        description = "Ready orderers / all orderers"
    ),
    printcolumn(
        name = "PEERS",
        type_ = "string",
        json_path = ".status.peers",
        description = "Ready peers / all peers"
    ),
    printcolumn(
        name = "LEADER",
        type_ = "string",
        json_path = ".status.leader",
        description = "The orderer that leads the Raft group"
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
pub struct NetworkSpec {
    /// The orderer organisation: its MSP id and how many orderers it runs.
    pub orderer_organization: OrdererOrganizationSpec,

    /// The peer organisations (at least one); MSP ids are unique, also against the orderer
    /// organisation's.
    #[schemars(length(min = 1))]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["mspId".into()]))]
    pub organizations: Vec<OrganizationSpec>,

    /// Raft options of every channel's ordering group, named as Fabric names them.
    #[serde(default)]
    pub raft: RaftSpec,

    /// Block cutting: when the orderers close a block.
    #[serde(default)]
    pub batch: BatchSpec,

    /// Persistent storage of every node (Kubernetes only; local nodes keep data in a directory).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<StorageSpec>,

    /// Container image of the nodes; the operator's default when unset (Kubernetes only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub image: Option<String>,

    /// How long the certificates issued to nodes, admins and clients are valid, e.g. `8760h`
    /// (the CAs are valid ten years); default one year. `NodeInfo` reports each node's expiry.
    #[serde(default = "default_certificate_validity")]
    #[schemars(pattern(DURATION_PATTERN))]
    pub certificate_validity: String,
}

/// One year.
pub const DEFAULT_CERTIFICATE_VALIDITY: &str = "8760h";

fn default_certificate_validity() -> String {
    DEFAULT_CERTIFICATE_VALIDITY.into()
}

/// The orderer organisation.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[x_kube(validation = Rule::new("self.orderers % 2 == 1").message(ODD_ORDERERS_MESSAGE))]
pub struct OrdererOrganizationSpec {
    /// MSP id of the orderer organisation.
    #[serde(default = "default_orderer_msp_id")]
    #[schemars(pattern(MSP_ID_PATTERN))]
    pub msp_id: String,

    /// Number of orderers, 1 to 9 and odd: a Raft group of N orderers elects a leader and orders
    /// transactions while a majority, (N+1)/2, is up, so it tolerates (N-1)/2 failures, and an
    /// even N tolerates no more failures than N-1.
    #[schemars(range(min = 1, max = MAX_ORDERERS))]
    pub orderers: u32,

    /// Key algorithm of the orderers' signing identities (block signatures): `ECDSA-P256`
    /// (default) or `Ed25519`.
    #[serde(default)]
    pub key_algorithm: KeyAlgorithm,
}

/// A peer organisation.
#[derive(JsonSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OrganizationSpec {
    /// MSP id of the organisation, e.g. `Org1MSP`.
    #[schemars(pattern(MSP_ID_PATTERN))]
    pub msp_id: String,

    /// Key algorithm of its members' signing identities (transactions, endorsements):
    /// `ECDSA-P256` (default) or `Ed25519`.
    #[serde(default)]
    pub key_algorithm: KeyAlgorithm,

    /// Number of peers of the organisation, 0 to 8.
    #[serde(default = "default_peers")]
    #[schemars(range(max = MAX_PEERS_PER_ORGANIZATION))]
    pub peers: u32,
}

/// Raft options of a channel's ordering group (raft-rs), named as Fabric's etcdraft names them.
/// Pre-vote and check-quorum are always on.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[x_kube(validation = Rule::new("self.electionTick > self.heartbeatTick")
    .message("electionTick must be greater than heartbeatTick"))]
pub struct RaftSpec {
    /// Time between two Raft ticks: `100ms`, `2s`, `1m`.
    #[serde(default = "default_tick_interval")]
    #[schemars(pattern(DURATION_PATTERN))]
    pub tick_interval: String,

    /// Ticks without word from a leader before a follower starts an election; greater than
    /// heartbeatTick.
    #[serde(default = "default_election_tick")]
    #[schemars(range(min = 1))]
    pub election_tick: u32,

    /// Ticks between two heartbeats of the leader.
    #[serde(default = "default_heartbeat_tick")]
    #[schemars(range(min = 1))]
    pub heartbeat_tick: u32,

    /// Blocks the leader sends a follower before waiting for its acknowledgement.
    #[serde(default = "default_max_inflight_blocks")]
    #[schemars(range(min = 1))]
    pub max_inflight_blocks: u32,

    /// Bytes of blocks between two snapshots of the Raft log: `16Mi`, `512Ki`, or plain bytes.
    #[serde(default = "default_snapshot_interval_size")]
    #[schemars(pattern(SIZE_PATTERN))]
    pub snapshot_interval_size: String,
}

/// When the orderers cut a block: after `batchTimeout`, or at `maxMessageCount` transactions,
/// or near `preferredMaxBytes`; no block exceeds `absoluteMaxBytes`.
#[derive(JsonSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BatchSpec {
    /// Longest wait after the first transaction of a block before the block is cut: `2s`.
    #[serde(default = "default_batch_timeout")]
    #[schemars(pattern(DURATION_PATTERN))]
    pub batch_timeout: String,

    /// Most transactions in a block.
    #[serde(default = "default_max_message_count")]
    #[schemars(range(min = 1))]
    pub max_message_count: u32,

    /// Preferred largest block: `2Mi`; at most absoluteMaxBytes. A bigger single transaction
    /// gets a block of its own.
    #[serde(default = "default_preferred_max_bytes")]
    #[schemars(pattern(SIZE_PATTERN))]
    pub preferred_max_bytes: String,

    /// Largest block; a bigger transaction is refused: `10Mi`.
    #[serde(default = "default_absolute_max_bytes")]
    #[schemars(pattern(SIZE_PATTERN))]
    pub absolute_max_bytes: String,
}

/// Persistent storage of each node.
#[derive(JsonSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StorageSpec {
    /// Size of each node's volume: `1Gi`.
    #[serde(default = "default_storage_size")]
    #[schemars(pattern(SIZE_PATTERN))]
    pub size: String,

    /// Storage class of the volumes; the cluster's default when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub storage_class_name: Option<String>,
}

/// What the operator last saw of a network.
#[derive(JsonSchema, Deserialize, Serialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NetworkStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// Ready orderers / all orderers: `4/5`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orderers: Option<String>,

    /// Ready peers / all peers: `4/4`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peers: Option<String>,

    /// Name of the orderer that leads the Raft group, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader: Option<String>,

    /// `Healthy` (all orderers up), `Degraded` (a quorum, not all) or `Lost` (no quorum: nothing
    /// can be ordered).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quorum: Option<String>,

    /// `Ready`, `QuorumAvailable` and `Degraded` conditions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
}

fn default_orderer_msp_id() -> String {
    DEFAULT_ORDERER_MSP_ID.to_owned()
}
fn default_peers() -> u32 {
    2
}
/// raftnet's Raft and block-cutting defaults, in manifest form: the CRD, `raftnet up`,
/// `raftnet bootstrap`'s flags and the operator all take them from here.
pub mod defaults {
    pub const TICK_INTERVAL: &str = "100ms";
    pub const ELECTION_TICK: u32 = 10;
    pub const HEARTBEAT_TICK: u32 = 1;
    pub const MAX_INFLIGHT_BLOCKS: u32 = 5;
    pub const SNAPSHOT_INTERVAL_SIZE: &str = "16Mi";
    pub const BATCH_TIMEOUT: &str = "100ms";
    pub const MAX_MESSAGE_COUNT: u32 = 500;
    pub const PREFERRED_MAX_BYTES: &str = "2Mi";
    pub const ABSOLUTE_MAX_BYTES: &str = "10Mi";
}
fn default_tick_interval() -> String {
    defaults::TICK_INTERVAL.to_owned()
}
fn default_election_tick() -> u32 {
    defaults::ELECTION_TICK
}
fn default_heartbeat_tick() -> u32 {
    defaults::HEARTBEAT_TICK
}
fn default_max_inflight_blocks() -> u32 {
    defaults::MAX_INFLIGHT_BLOCKS
}
fn default_snapshot_interval_size() -> String {
    defaults::SNAPSHOT_INTERVAL_SIZE.to_owned()
}
fn default_batch_timeout() -> String {
    defaults::BATCH_TIMEOUT.to_owned()
}
fn default_max_message_count() -> u32 {
    defaults::MAX_MESSAGE_COUNT
}
fn default_preferred_max_bytes() -> String {
    defaults::PREFERRED_MAX_BYTES.to_owned()
}
fn default_absolute_max_bytes() -> String {
    defaults::ABSOLUTE_MAX_BYTES.to_owned()
}
fn default_storage_size() -> String {
    "1Gi".to_owned()
}

/// raftnet's defaults: 100ms, 10, 1, 5, 16Mi.
impl Default for RaftSpec {
    fn default() -> Self {
        Self {
            tick_interval: default_tick_interval(),
            election_tick: default_election_tick(),
            heartbeat_tick: default_heartbeat_tick(),
            max_inflight_blocks: default_max_inflight_blocks(),
            snapshot_interval_size: default_snapshot_interval_size(),
        }
    }
}

/// raftnet's defaults: 100ms, 500 transactions, 2Mi, 10Mi.
impl Default for BatchSpec {
    fn default() -> Self {
        Self {
            batch_timeout: default_batch_timeout(),
            max_message_count: default_max_message_count(),
            preferred_max_bytes: default_preferred_max_bytes(),
            absolute_max_bytes: default_absolute_max_bytes(),
        }
    }
}

impl Default for StorageSpec {
    fn default() -> Self {
        Self {
            size: default_storage_size(),
            storage_class_name: None,
        }
    }
}

impl NetworkSpec {
    /// Checks everything the CRD schema checks, and what it cannot: unique MSP ids,
    /// electionTick > heartbeatTick, preferredMaxBytes <= absoluteMaxBytes, durations and sizes
    /// above zero. For manifests that reach raftnet without an API server (`raftnet up`), and
    /// for the operator before it acts on a spec.
    ///
    /// Each message starts with the path of the field: `spec.ordererOrganization.orderers: ...`.
    pub fn validate(&self) -> Result<(), Vec<String>> {
        let mut problems = Problems::default();
        self.orderer_organization.validate(&mut problems);
        self.validate_organizations(&mut problems);
        self.raft.validate(&mut problems);
        self.batch.validate(&mut problems);
        if let Some(storage) = &self.storage {
            problems.positive_size("spec.storage.size", &storage.size);
            if let Some(class) = &storage.storage_class_name {
                problems.not_blank("spec.storage.storageClassName", class);
            }
        }
        if let Some(image) = &self.image {
            problems.not_blank("spec.image", image);
        }
        problems.positive_duration("spec.certificateValidity", &self.certificate_validity);
        problems.into_result()
    }

    /// The MSP ids of the peer organisations, in manifest order.
    pub fn organization_msp_ids(&self) -> impl Iterator<Item = &str> {
        self.organizations.iter().map(|org| org.msp_id.as_str())
    }

    /// The peer organisation with this MSP id.
    pub fn organization(&self, msp_id: &str) -> Option<&OrganizationSpec> {
        self.organizations.iter().find(|org| org.msp_id == msp_id)
    }

    /// The message for a reference to an organisation this network does not have:
    /// `Org3MSP is not an organisation of network first-network (it has Org1MSP, Org2MSP)`.
    pub(crate) fn not_an_organization(&self, msp_id: &str, network_name: &str) -> String {
        let known: Vec<&str> = self.organization_msp_ids().collect();
        format!(
            "{msp_id} is not an organisation of network {network_name} (it has {})",
            known.join(", ")
        )
    }

    fn validate_organizations(&self, problems: &mut Problems) {
        problems.not_empty("spec.organizations", &self.organizations, "organisation");
        let mut seen = Duplicates::default();
        let orderer_msp_id = &self.orderer_organization.msp_id;
        seen.check(
            problems,
            "spec.ordererOrganization.mspId".to_owned(),
            orderer_msp_id,
            "MSP id",
        );
        for (index, org) in self.organizations.iter().enumerate() {
            let path = format!("spec.organizations[{index}]");
            problems.check(format!("{path}.mspId"), check_msp_id(&org.msp_id));
            seen.check(problems, format!("{path}.mspId"), &org.msp_id, "MSP id");
            problems.range(
                format!("{path}.peers"),
                org.peers.into(),
                0,
                MAX_PEERS_PER_ORGANIZATION.into(),
            );
        }
    }
}

impl OrdererOrganizationSpec {
    fn validate(&self, problems: &mut Problems) {
        problems.check("spec.ordererOrganization.mspId", check_msp_id(&self.msp_id));
        let path = "spec.ordererOrganization.orderers";
        if problems.range(path, self.orderers.into(), 1, MAX_ORDERERS.into())
            && self.orderers.is_multiple_of(2)
        {
            problems.add(
                path,
                format!("{ODD_ORDERERS_MESSAGE} (got {})", self.orderers),
            );
        }
    }
}

impl RaftSpec {
    fn validate(&self, problems: &mut Problems) {
        problems.positive_duration("spec.raft.tickInterval", &self.tick_interval);
        problems.at_least("spec.raft.electionTick", self.election_tick.into(), 1);
        problems.at_least("spec.raft.heartbeatTick", self.heartbeat_tick.into(), 1);
        if self.election_tick <= self.heartbeat_tick {
            problems.add(
                "spec.raft.electionTick",
                format!(
                    "must be greater than heartbeatTick (got electionTick {}, heartbeatTick {})",
                    self.election_tick, self.heartbeat_tick
                ),
            );
        }
        problems.at_least(
            "spec.raft.maxInflightBlocks",
            self.max_inflight_blocks.into(),
            1,
        );
        problems.positive_size(
            "spec.raft.snapshotIntervalSize",
            &self.snapshot_interval_size,
        );
    }
}

impl BatchSpec {
    fn validate(&self, problems: &mut Problems) {
        problems.positive_duration("spec.batch.batchTimeout", &self.batch_timeout);
        problems.at_least(
            "spec.batch.maxMessageCount",
            self.max_message_count.into(),
            1,
        );
        let preferred =
            problems.positive_size("spec.batch.preferredMaxBytes", &self.preferred_max_bytes);
        let absolute =
            problems.positive_size("spec.batch.absoluteMaxBytes", &self.absolute_max_bytes);
        if let (Some(preferred), Some(absolute)) = (preferred, absolute) {
            if preferred > absolute {
                problems.add(
                    "spec.batch.preferredMaxBytes",
                    format!(
                        "must be at most absoluteMaxBytes ({} > {})",
                        self.preferred_max_bytes, self.absolute_max_bytes
                    ),
                );
            }
        }
    }
}
