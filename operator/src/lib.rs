//! raftnet's control plane: the Kubernetes operator that turns `Network`, `Orderer`, `Peer` and
//! `Channel` resources into running ledger networks and reports, from the nodes themselves, who
//! leads each Raft group and whether it has a quorum.
//!
//! It knows nothing of Raft internals: it reaches nodes only through their admin API (mTLS with
//! an organisation's admin certificate) and builds the same crypto material and genesis blocks
//! as `raftnet up`, from the node crate's library built without its runtime.
//!
//! Error policy: one [`Error`] enum whose variants the reconcilers branch on (an invalid spec is
//! reported in status and not retried; everything else is retried with backoff).

pub mod apply;
pub mod context;
pub mod controllers;
pub mod crd_install;
pub mod error;
pub mod labels;
pub mod metrics;
pub mod objects;
pub mod observe;
pub mod operator;
pub mod pki;
mod rbac_check;
pub mod settings;

pub use context::Context;
pub use error::{Error, Result};
pub use settings::Settings;
