//! Bad manifests: refused by the CRD schema, or reported in an `InvalidSpec` condition with the
//! message `raftnet up` prints for the same manifest, and nothing made from them.

use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams};
use raftnet_crds::status::{find_condition, READY};
use raftnet_crds::{Channel, Network};

use crate::apiserver::ApiServer;
use crate::harness::{apply_manifests, namespace, wait_for, Operator};

const NETWORK: &str = "\
apiVersion: raftnet.dev/v1alpha1
kind: Network
metadata: {name: net}
spec:
  ordererOrganization: {mspId: OrdererMSP, orderers: 1}
  organizations: [{mspId: Org1MSP, peers: 1}]
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_manifests_are_refused_or_reported() {
    let (server, client) = ApiServer::start().await;
    raftnet_operator::crd_install::install(&client)
        .await
        .expect("the CRDs install on Kubernetes 1.20");
    namespace(&client, "bad").await;

    // The schema refuses what it can see: a field of the wrong form.
    let networks: Api<Network> = Api::namespaced(client.clone(), "bad");
    let wrong = serde_json::json!({
        "apiVersion": "raftnet.dev/v1alpha1", "kind": "Network",
        "metadata": {"name": "wrong"},
        "spec": {"ordererOrganization": {"mspId": "Orderer MSP", "orderers": 0},
                 "organizations": [{"mspId": "Org1MSP"}]}
    });
    let err = networks
        .patch("wrong", &PatchParams::apply("test"), &Patch::Apply(&wrong))
        .await
        .expect_err("the schema refuses an orderer count of 0 and a bad MSP id");
    let text = err.to_string();
    assert!(text.contains("spec.ordererOrganization.orderers"), "{text}");
    assert!(text.contains("spec.ordererOrganization.mspId"), "{text}");

    // What only the operator can see: a channel naming an organisation the network lacks.
    let operator = Operator::start(&client, None);
    let manifest = format!(
        "{NETWORK}---\napiVersion: raftnet.dev/v1alpha1\nkind: Channel\nmetadata: {{name: ch}}\nspec:\n  network: net\n  organizations: [Org1MSP, Org3MSP]\n"
    );
    apply_manifests(&client, "bad", &manifest).await;
    let expected = {
        let manifests = raftnet_crds::load_manifests(&manifest).unwrap();
        format!(
            "{:#}",
            raftnet_node::network::manifest::plan(&manifests).expect_err("raftnet up refuses it")
        )
    };
    assert!(expected.contains("Org3MSP"), "{expected}");
    let channels: Api<Channel> = Api::namespaced(client.clone(), "bad");
    let message = wait_for(
        "the channel's InvalidSpec condition",
        Duration::from_secs(30),
        || async {
            let channel = channels.get("ch").await.map_err(|e| e.to_string())?;
            let conditions = channel.status.map(|s| s.conditions).unwrap_or_default();
            match find_condition(&conditions, READY) {
                Some(c) if c.reason == "InvalidSpec" => Ok(c.message.clone()),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await;
    assert_eq!(message, expected, "the same message as raftnet up");

    // An even orderer count passes a server without CEL rules (1.20), and is reported.
    let even = NETWORK
        .replace("name: net", "name: even")
        .replace("orderers: 1", "orderers: 4");
    namespace(&client, "even").await;
    apply_manifests(&client, "even", &even).await;
    let even_networks: Api<Network> = Api::namespaced(client.clone(), "even");
    let message = wait_for(
        "the network's InvalidSpec condition",
        Duration::from_secs(30),
        || async {
            let network = even_networks.get("even").await.map_err(|e| e.to_string())?;
            let conditions = network.status.map(|s| s.conditions).unwrap_or_default();
            match find_condition(&conditions, READY) {
                Some(c) if c.reason == "InvalidSpec" => Ok(c.message.clone()),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await;
    assert!(message.contains("orderers must be odd"), "{message}");

    // Nothing was made from either: no genesis block, no CA of the even network.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), "bad");
    assert!(config_maps.get_opt("ch-genesis").await.unwrap().is_none());
    let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(client.clone(), "even");
    assert!(secrets
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .is_empty());
    operator.stop().await;
    drop(server);
}
