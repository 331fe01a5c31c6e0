//! Integration tests: real orderer processes on 127.0.0.1, killed with SIGKILL.

mod bad_input;
mod catch_up;
mod deliver;
mod failover;
mod support;
