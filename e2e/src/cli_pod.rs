//! The client pod (Fabric's `cli` container): the node image, each peer organisation's client
//! Secret and the orderer organisation's admin Secret mounted, and `raftnet channel status -w`
//! (as that admin) as its main process, so that
//! `kubectl logs -f raftnet-cli` shows every orderer's role and leader as it changes. The lab
//! runs `raftnet chaincode query|invoke` in it with `kubectl exec`.

use std::time::Duration;

use anyhow::Context;
use k8s_openapi::api::core::v1::Pod;
use serde_json::json;

use crate::cluster::{Cluster, CHANNEL, CONTRACT, NETWORK};
use crate::wait;

pub const POD: &str = "raftnet-cli";
/// Where the orderer organisation's admin Secret is mounted.
const ORDERER_ADMIN: &str = "/clients/orderer-admin";

/// The client pod of a cluster's network.
pub struct CliPod {
    cluster: Cluster,
    /// Peer organisations' short names (`org1`), each with its client identity mounted.
    orgs: Vec<String>,
    orderers: Vec<String>,
}

/// What `raftnet chaincode invoke` answered.
#[derive(Debug)]
pub struct Invoked {
    pub output: String,
}

impl CliPod {
    /// Creates the pod (or keeps the one there) and waits until it runs.
    pub async fn start(
        cluster: &Cluster,
        image: &str,
        orgs: &[String],
        orderers: u32,
    ) -> anyhow::Result<Self> {
        let orderer_addrs = cluster.orderer_addresses(orderers);
        // The orderers' status is an admin call of their organisation: the watch runs as the
        // orderer organisation's admin; queries and invokes as each peer organisation's client.
        let mut volumes = vec![json!({
            "name": "orderer-admin",
            "secret": {"secretName": format!("{NETWORK}-orderermsp-admin"), "defaultMode": 0o440}
        })];
        let mut mounts =
            vec![json!({"name": "orderer-admin", "mountPath": ORDERER_ADMIN, "readOnly": true})];
        for org in orgs {
            volumes.push(json!({
                "name": org,
                "secret": {
                    "secretName": format!("{NETWORK}-{org}msp-client"),
                    "defaultMode": 0o440,
                }
            }));
            mounts.push(
                json!({"name": org, "mountPath": format!("/clients/{org}"), "readOnly": true}),
            );
        }
        let pod = json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": POD, "labels": {"app.kubernetes.io/name": POD}},
            "spec": {
                "securityContext": {
                    "runAsNonRoot": true, "runAsUser": 65532, "runAsGroup": 65532, "fsGroup": 65532
                },
                "terminationGracePeriodSeconds": 1,
                "containers": [{
                    "name": "cli",
                    "image": image,
                    "imagePullPolicy": "IfNotPresent",
                    "command": ["raftnet", "channel", "status", "--watch", "-c", CHANNEL,
                                "--orderer", orderer_addrs.join(",")],
                    "env": [{"name": "RAFTNET_IDENTITY",
                             "value": format!("{ORDERER_ADMIN}/profile.yaml")}],
                    "volumeMounts": mounts,
                    "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}},
                    "securityContext": {
                        "readOnlyRootFilesystem": true,
                        "allowPrivilegeEscalation": false,
                        "capabilities": {"drop": ["ALL"]}
                    }
                }],
                "volumes": volumes,
            }
        });
        cluster
            .kubectl
            .run_with_input(&["apply", "-f", "-"], Some(&pod.to_string()))
            .await?;
        let pods = cluster.api::<Pod>();
        wait::until(
            "the client pod to run",
            Duration::from_secs(120),
            || async {
                let pod = pods.get(POD).await?;
                let running = pod
                    .status
                    .and_then(|s| s.container_statuses)
                    .is_some_and(|c| c.iter().all(|c| c.ready));
                Ok(running.then_some(()))
            },
        )
        .await?;
        Ok(Self {
            cluster: cluster.clone(),
            orgs: orgs.to_vec(),
            orderers: orderer_addrs,
        })
    }

    fn identity(&self, org: &str) -> String {
        format!("/clients/{org}/profile.yaml")
    }

    /// `raftnet chaincode query` on `peer` as a client of `org`; the answer as text.
    pub async fn query(&self, org: &str, peer: &str, args: &[&str]) -> anyhow::Result<String> {
        let peer = self.cluster.address(peer, 7051);
        let mut cmd = self.chaincode("query", org, args);
        cmd.extend(["--peer".to_owned(), peer]);
        Ok(self.exec(&cmd).await?.trim().to_owned())
    }

    /// `raftnet chaincode invoke` endorsed by `peers` (one per organisation), ordered by any
    /// orderer; returns once committed, or the client's error.
    pub async fn invoke(
        &self,
        org: &str,
        peers: &[&str],
        args: &[&str],
    ) -> anyhow::Result<Invoked> {
        let mut cmd = self.chaincode("invoke", org, args);
        cmd.extend(["--orderer".to_owned(), self.orderers.join(",")]);
        for p in peers {
            cmd.extend(["--peer".to_owned(), self.cluster.address(p, 7051)]);
        }
        let output = self.exec(&cmd).await?;
        Ok(Invoked {
            output: output.trim().to_owned(),
        })
    }

    /// `chaincode VERB -C mychannel -n mycc -c {"Args":[...]} --identity ORG's client`.
    fn chaincode(&self, verb: &str, org: &str, args: &[&str]) -> Vec<String> {
        let ctor = json!({ "Args": args }).to_string();
        [
            "chaincode",
            verb,
            "-C",
            CHANNEL,
            "-n",
            CONTRACT,
            "-c",
            &ctor,
            "--identity",
        ]
        .iter()
        .map(|a| a.to_string())
        .chain([self.identity(org)])
        .collect()
    }

    /// `kubectl exec raftnet-cli -- raftnet ARGS`.
    pub async fn exec<S: AsRef<str>>(&self, args: &[S]) -> anyhow::Result<String> {
        let mut full = vec!["exec", POD, "-c", "cli", "--", "raftnet"];
        full.extend(args.iter().map(|a| a.as_ref()));
        self.cluster.kubectl.run(&full).await.with_context(|| {
            let verb = args.first().map(|a| a.as_ref()).unwrap_or_default();
            format!("raftnet {verb}")
        })
    }

    /// The organisations whose clients the pod holds.
    pub fn orgs(&self) -> &[String] {
        &self.orgs
    }
}
