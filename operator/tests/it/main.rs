//! The operator against a real Kubernetes API server (etcd + kube-apiserver 1.20), with real
//! `raftnet-node` processes started from the objects it wrote. One test binary, one module per
//! concern.

mod apiserver;
mod first_network;
mod harness;
mod invalid;
mod nodes;
