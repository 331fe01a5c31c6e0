//! The e2e crate's one integration-test binary.
mod chart;
mod dns;
mod seed_lab;
