//! Installing raftnet's CRDs on a server, for the operator's `--install-crds` and the tests.
//! Servers before Kubernetes 1.25 know no CEL rules (`x-kubernetes-validations`): their CRDs
//! are installed without them, and the operator's `InvalidSpec` condition reports the same
//! problems the rules would have refused.

use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::conditions;
use kube::runtime::wait::await_condition;
use kube::Client;
use serde_json::Value;

use crate::labels::MANAGER;
use crate::Result;

/// Whether the server evaluates CEL validation rules (1.25 and later).
pub async fn server_has_cel(client: &Client) -> Result<bool> {
    let version = client.apiserver_version().await?;
    let minor: u32 = version
        .minor
        .trim_end_matches(|c: char| !c.is_ascii_digit())
        .parse()
        .unwrap_or(0);
    Ok(version.major != "1" || minor >= 25)
}

/// The CRD without its CEL rules.
pub fn without_cel(crd: &CustomResourceDefinition) -> Result<CustomResourceDefinition> {
    let mut value = serde_json::to_value(crd)?;
    strip(&mut value);
    Ok(serde_json::from_value(value)?)
}

fn strip(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.remove("x-kubernetes-validations");
            map.values_mut().for_each(strip);
        }
        Value::Array(items) => items.iter_mut().for_each(strip),
        _ => {}
    }
}

/// Applies every CRD (without CEL rules on servers that lack them) and waits until each is
/// established.
pub async fn install(client: &Client) -> Result<()> {
    let cel = server_has_cel(client).await?;
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    for (_, crd) in raftnet_crds::crd::all() {
        let crd = if cel { crd } else { without_cel(&crd)? };
        let name = crd.metadata.name.clone().unwrap_or_default();
        api.patch(
            &name,
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&crd),
        )
        .await?;
        let established = await_condition(api.clone(), &name, conditions::is_crd_established());
        let _ = tokio::time::timeout(Duration::from_secs(30), established).await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cel_rules_are_stripped_everywhere() {
        let with = raftnet_crds::crd::all()
            .into_iter()
            .map(|(_, crd)| serde_json::to_string(&crd).unwrap())
            .filter(|text| text.contains("x-kubernetes-validations"))
            .count();
        assert!(with > 0, "the CRDs carry CEL rules to strip");
        for (_, crd) in raftnet_crds::crd::all() {
            let text = serde_json::to_string(&without_cel(&crd).unwrap()).unwrap();
            assert!(!text.contains("x-kubernetes-validations"));
            assert!(text.contains("openAPIV3Schema"));
        }
    }
}
