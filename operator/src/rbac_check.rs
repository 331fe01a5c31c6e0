//! `deploy/operator.yaml` grants the operator what it uses, and no more verbs than that.
#![cfg(test)]

use k8s_openapi::api::rbac::v1::ClusterRole;

fn cluster_role() -> ClusterRole {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/operator.yaml");
    let text = std::fs::read_to_string(path).expect("deploy/operator.yaml");
    let role = serde_norway::Deserializer::from_str(&text)
        .map(|doc| serde_norway::Value::deserialize(doc).expect("YAML"))
        .find(|doc| doc["kind"] == "ClusterRole")
        .map(|doc| serde_norway::from_value(doc).expect("a ClusterRole"))
        .expect("deploy/operator.yaml has a ClusterRole");
    role
}

use serde::Deserialize;

fn allows(role: &ClusterRole, group: &str, resource: &str, verb: &str) -> bool {
    role.rules.iter().flatten().any(|rule| {
        rule.api_groups.iter().flatten().any(|g| g == group)
            && rule.resources.iter().flatten().any(|r| r == resource)
            && rule.verbs.iter().any(|v| v == verb)
    })
}

#[test]
fn the_deployed_role_covers_what_the_operator_does() {
    let role = cluster_role();
    for resource in ["networks", "channels", "orderers", "peers"] {
        for verb in ["get", "list", "watch", "create", "patch"] {
            assert!(
                allows(&role, "raftnet.dev", resource, verb),
                "{verb} {resource}"
            );
        }
        assert!(allows(
            &role,
            "raftnet.dev",
            &format!("{resource}/status"),
            "patch"
        ));
    }
    for (group, resource) in [
        ("", "secrets"),
        ("", "configmaps"),
        ("", "services"),
        ("apps", "statefulsets"),
        ("policy", "poddisruptionbudgets"),
    ] {
        for verb in ["get", "list", "watch", "create", "patch"] {
            assert!(
                allows(&role, group, resource, verb),
                "{verb} {group}/{resource}"
            );
        }
    }
    assert!(allows(&role, "events.k8s.io", "events", "create"));
    // Least privilege: nothing is deleted, and no wildcard.
    for rule in role.rules.iter().flatten() {
        assert!(
            !rule.verbs.iter().any(|v| v == "delete" || v == "*"),
            "{rule:?}"
        );
        assert!(
            !rule.resources.iter().flatten().any(|r| r == "*"),
            "{rule:?}"
        );
    }
}
