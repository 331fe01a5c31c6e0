//! Blocks, their hash chain, and the durable block store.

pub mod block;
pub mod signature;
pub mod store;
pub mod txwindow;

pub use block::{channel_config, data_hash, genesis_block, header_hash, new_block, tx_ids};
pub use signature::{block_validation_policy, sign_block, verify_block, BlockVerifier};
pub use store::BlockStore;
