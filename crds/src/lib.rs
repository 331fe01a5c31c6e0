//! raftnet's API: the `Network`, `Channel`, `Orderer` and `Peer` custom resources
//! (group `raftnet.dev`, version `v1alpha1`), their CRDs, and the checks and manifest loading
//! that let both planes read the same manifests.
//!
//! - The operator (control plane) watches these resources in Kubernetes; the CRD schema makes the
//!   API server refuse most bad specs, and `validate` does the rest.
//! - The data plane (`raftnet up`) has no API server: it reads manifests with
//!   [`manifest::load_manifests`] and checks them with [`manifest::Manifests::validate`], which
//!   enforces what the schema would, plus the references between resources.
//!
//! This crate makes no Kubernetes calls and pulls in no Kubernetes client.

pub mod channel;
pub mod crd;
pub mod health;
pub mod keys;
pub mod manifest;
pub mod names;
pub mod network;
pub mod orderer;
pub mod peer;
mod problems;
pub mod status;
pub mod units;

pub use channel::{
    BuiltinContract, Channel, ChannelPolicies, ChannelSpec, ChannelStatus, ConsenterStatus,
    ContractSpec,
};
pub use keys::KeyAlgorithm;
pub use manifest::{load_manifests, ManifestError, Manifests};
pub use network::{
    BatchSpec, Network, NetworkSpec, NetworkStatus, OrdererOrganizationSpec, OrganizationSpec,
    RaftSpec, StorageSpec,
};
pub use orderer::{Orderer, OrdererChannelStatus, OrdererSpec, OrdererStatus};
pub use peer::{Peer, PeerSpec, PeerStatus};
pub use units::{parse_duration, parse_size};

/// API group of raftnet's resources.
pub const GROUP: &str = "raftnet.dev";

/// API version of raftnet's resources.
pub const VERSION: &str = "v1alpha1";

/// The `apiVersion` of raftnet's manifests.
pub const API_VERSION: &str = "raftnet.dev/v1alpha1";
