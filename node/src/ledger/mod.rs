//! Blocks, their hash chain, channel configurations, transaction ids, and (with the node
//! runtime) the durable block store.

pub mod block;
pub mod config_check;
pub mod signature;
#[cfg(feature = "runtime")]
pub mod store;
pub mod txid;
#[cfg(feature = "runtime")]
pub mod txwindow;

pub use block::{channel_config, data_hash, genesis_block, header_hash, new_block, tx_ids};
pub use config_check::{check_channel_name, check_config};
pub use signature::{block_validation_policy, sign_block, verify_block, BlockVerifier};
#[cfg(feature = "runtime")]
pub use store::BlockStore;
pub use txid::compute_tx_id;
#[cfg(feature = "runtime")]
pub use txwindow::ENVELOPE_TIME_WINDOW;
