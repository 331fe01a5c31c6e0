//! raftnet data plane: Raft ordering nodes, peers, contracts, their storage and wire API,
//! and the client.
//! Nothing here talks to Kubernetes.

pub mod adminapi;
pub mod chaincode;
pub mod cli;
pub mod client;
pub mod codec;
pub mod config;
pub mod gateway;
pub mod identity;
pub mod ledger;
pub mod local;
pub mod network;
pub mod operations;
pub mod orderer;
pub mod peer;
pub mod proto;
pub mod serve;
pub mod signed_request;
pub mod tls;
