//! The e2e crate's one integration-test binary.
mod chart;
mod seed_lab;
