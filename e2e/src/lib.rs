//! End-to-end tests and the seed lab against a real Kubernetes cluster (whatever `KUBECONFIG`
//! names): the operator installed from the chart, `deploy/first-network.yaml` applied, and the
//! lab's steps played with Kubernetes verbs (`kubectl delete pod`, `kubectl scale`), watched
//! through the resources' status as `kubectl get orderers` shows it.

pub mod cli_pod;
pub mod cluster;
pub mod diagnose;
pub mod dns;
pub mod install;
pub mod kubectl;
pub mod lab;
pub mod wait;
