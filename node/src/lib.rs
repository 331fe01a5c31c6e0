//! raftnet data plane: Raft ordering nodes, peers, contracts, their storage and wire API,
//! and the client.
//! Nothing here talks to Kubernetes.
//!
//! Without the `runtime` feature (on by default) only what the control plane shares with the
//! nodes is built: identities and policies, blocks and channel configurations, the bootstrap of
//! a network's material, the wire API and the client. No Raft, no storage engine, no servers.

#[cfg(feature = "runtime")]
pub mod adminapi;
#[cfg(feature = "runtime")]
pub mod chaincode;
#[cfg(feature = "runtime")]
pub mod cli;
pub mod client;
pub mod codec;
pub mod config;
#[cfg(feature = "runtime")]
pub mod connections;
pub mod deploy;
pub mod gateway;
pub mod identity;
pub mod ledger;
pub mod limits;
#[cfg(feature = "runtime")]
pub mod local;
pub mod network;
#[cfg(feature = "runtime")]
pub mod operations;
#[cfg(feature = "runtime")]
pub mod orderer;
#[cfg(feature = "runtime")]
pub mod peer;
#[cfg(feature = "runtime")]
pub mod pinned;
pub mod proto;
pub mod report;
#[cfg(feature = "runtime")]
pub mod serve;
pub mod signed_request;
pub mod tls;
