//! Orderers and peers as local processes: started from their config files, stopped with
//! SIGKILL like a crashed container, restarted with their data. Used by `raftnet bench`, the
//! tests and (later) `raftnet up`.

pub mod process;

pub use process::{LocalCluster, LocalNode, NodeKind};
