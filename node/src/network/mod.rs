//! Bootstrap shared by both planes: crypto material for organisations, node configs and
//! channel genesis blocks, written to a directory.

pub mod addressing;
pub mod channel;
pub mod crypto;
pub mod manifest;
pub mod ordering;
pub mod plan;
pub mod ports;
pub mod profile;

pub use addressing::{Addressing, NodeAddress, NodeKind};
pub use channel::{channel_config, OrgCas};
pub use crypto::OrgMaterial;
pub use ordering::{OrdererEntry, OrderingLayout, OrderingSpec, PeerEntry};
pub use profile::ClientProfile;
