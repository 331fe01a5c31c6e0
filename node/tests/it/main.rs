//! Integration tests: real orderer and peer processes on 127.0.0.1, killed with SIGKILL.

mod bad_input;
mod catch_up;
mod cli;
mod deliver;
mod failover;
mod fuzz;
mod halt;
mod handoff;
mod hostile_consenter;
mod joins;
mod limits;
mod local_up;
mod operations;
mod peers;
mod pinned_dialing;
mod signed_blocks;
mod signed_requests;
mod support;
