//! A peer: pulls blocks from the orderers, validates and commits them to its ledger and
//! state database, endorses proposals by running contracts, and tells clients the outcome
//! of their transactions.

pub mod admin;
pub mod channel;
pub mod committer;
pub mod deliverclient;
pub mod endorser;
pub mod events;
pub mod lifecycle;
pub mod own_endorsements;
pub mod precheck;
pub mod registrar;
pub mod server;
pub mod simulator;
pub mod statedb;
pub mod validator;

pub use server::run;

#[cfg(test)]
mod tests;
