//! What the nodes say, live. For every node the operator runs it keeps a `NodeInfo` poll and
//! one `WatchStatus` stream per channel the node serves, reconnecting with backoff; each change
//! wakes the reconcilers of the node, its channel and its network, which write status from the
//! latest views. Nothing here reads logs or pod state: only the nodes' admin API.

pub mod hub;
mod tasks;

pub use hub::{Hub, NodeKey, NodeTarget, NodeView, Triggers};
