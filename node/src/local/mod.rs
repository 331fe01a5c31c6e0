//! Orderers and peers as local processes: started from their config files, stopped with
//! SIGKILL like a crashed container, restarted with their data. Used by `raftnet bench`, the
//! tests, and, as processes that outlive the command, `raftnet up`.

pub mod daemon;
pub mod lab;
pub mod network;
pub mod process;

pub use daemon::Daemon;
pub use network::LocalNetwork;
pub use process::{LocalCluster, LocalNode, NodeKind};
