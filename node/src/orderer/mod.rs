//! The Raft ordering service, in the shape of Fabric's etcdraft: one raft-rs group per
//! channel, joined through the admin API, with broadcast, deliver and a cluster service.

pub mod admin;
pub mod apply;
pub mod blockcreator;
pub mod blockcutter;
pub mod blockpuller;
pub mod broadcast;
pub mod chain;
pub mod cluster;
pub mod deliver;
pub mod forwarder;
pub mod handoff;
pub mod inbox;
pub mod msgprocessor;
pub mod pending;
pub mod raft_guard;
pub mod registrar;
pub mod server;
pub mod status;
pub mod storage;
pub mod transport;

pub use server::run;
