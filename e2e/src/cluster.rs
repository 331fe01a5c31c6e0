//! The cluster as the suite sees it: a kube client for one namespace, the raftnet resources in
//! it, and the network's nodes by name and address.

use anyhow::Context;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use kube::Client;
use raftnet_crds::status::find_condition;
use raftnet_crds::{Channel, Network, Orderer, Peer};

use crate::kubectl::Kubectl;

/// The network the lab applies (`deploy/first-network.yaml`) and its channel and contract.
pub const NETWORK: &str = "first-network";
pub const CHANNEL: &str = "mychannel";
pub const CONTRACT: &str = "mycc";
pub const FIRST_NETWORK_YAML: &str = include_str!("../../deploy/first-network.yaml");

/// One namespace of a cluster.
#[derive(Clone)]
pub struct Cluster {
    pub client: Client,
    pub namespace: String,
    pub kubectl: Kubectl,
    /// The cluster's DNS domain (`RAFTNET_E2E_CLUSTER_DOMAIN`, default cluster.local).
    pub domain: String,
}

impl Cluster {
    /// Connects as `KUBECONFIG` (or the in-cluster account) says.
    pub async fn connect(namespace: &str) -> anyhow::Result<Self> {
        let client = Client::try_default()
            .await
            .context("no cluster: set KUBECONFIG (e2e/cluster/local.sh up prints it)")?;
        Ok(Self {
            client,
            namespace: namespace.to_owned(),
            kubectl: Kubectl::new(namespace),
            domain: std::env::var("RAFTNET_E2E_CLUSTER_DOMAIN")
                .unwrap_or_else(|_| "cluster.local".to_owned()),
        })
    }

    pub fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        <K as kube::Resource>::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    pub async fn network(&self) -> anyhow::Result<Network> {
        Ok(self.api::<Network>().get(NETWORK).await?)
    }

    pub async fn channel(&self) -> anyhow::Result<Channel> {
        Ok(self.api::<Channel>().get(CHANNEL).await?)
    }

    /// The network's orderers, by name.
    pub async fn orderers(&self) -> anyhow::Result<Vec<Orderer>> {
        let mut list = self
            .api::<Orderer>()
            .list(&ListParams::default())
            .await?
            .items;
        list.sort_by_key(|o| o.metadata.name.clone());
        Ok(list)
    }

    pub async fn peers(&self) -> anyhow::Result<Vec<Peer>> {
        let mut list = self.api::<Peer>().list(&ListParams::default()).await?.items;
        list.sort_by_key(|p| p.metadata.name.clone());
        Ok(list)
    }

    pub async fn pod(&self, name: &str) -> anyhow::Result<Pod> {
        Ok(self.api::<Pod>().get(name).await?)
    }

    /// The leader every reporting orderer agrees on, if they do.
    pub async fn agreed_leader(&self) -> anyhow::Result<Option<String>> {
        let orderers = self.orderers().await?;
        let mut leaders = orderers
            .iter()
            .filter_map(|o| o.status.as_ref())
            .filter(|s| s.role.as_deref().is_some_and(|r| r != "Unavailable"))
            .map(|s| s.leader.clone());
        let Some(first) = leaders.next().flatten() else {
            return Ok(None);
        };
        Ok(leaders
            .all(|l| l.as_deref() == Some(first.as_str()))
            .then_some(first))
    }

    /// The address a pod in the cluster dials an orderer or peer by.
    pub fn address(&self, node: &str, port: u16) -> String {
        format!(
            "{node}-0.{node}.{}.svc.{}:{port}",
            self.namespace, self.domain
        )
    }

    pub fn orderer_addresses(&self, orderers: u32) -> Vec<String> {
        (1..=orderers)
            .map(|k| self.address(&raftnet_crds::names::orderer_node(k), 7050))
            .collect()
    }
}

/// A condition of the network: whether it holds, and its message.
pub fn network_condition(network: &Network, type_: &str) -> Option<(bool, String)> {
    let conditions = network.status.as_ref()?.conditions.as_slice();
    find_condition(conditions, type_).map(|c| (c.status == "True", c.message.clone()))
}
