//! The Helm chart `charts/raftnet-operator` as its users meet it: linted and rendered by the
//! real Helm library (`e2e/cluster/helm.py`, over helm-sdkpy), with default values and with the
//! values a user sets. No cluster needed: `helm.py template` renders against a stub API server.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Container, PodSecurityContext, PodSpec};
use k8s_openapi::api::rbac::v1::{ClusterRole, PolicyRule, Role, RoleBinding};
use serde::Deserialize;
use serde_norway::Value;

const CHART: &str = "charts/raftnet-operator";
const RELEASE: &str = "raftnet-operator";
const NAMESPACE: &str = "raftnet-system";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the e2e crate is in the repository")
        .to_owned()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

/// The venv's `helm` (its python under Helm's name), made once by `e2e/cluster/helm-venv.sh`.
fn venv_helm() -> &'static Path {
    static HELM: OnceLock<PathBuf> = OnceLock::new();
    HELM.get_or_init(|| {
        let script = repo().join("e2e/cluster/helm-venv.sh");
        let out = Command::new(&script)
            .output()
            .unwrap_or_else(|err| panic!("cannot run {}: {err}", script.display()));
        assert!(
            out.status.success(),
            "cannot make helm-sdkpy's venv: `e2e/cluster/helm-venv.sh` failed ({}); run it to \
             see why (it needs python3 with venv and pip, and PyPI):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let python = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        python.with_file_name("helm")
    })
}

/// Runs `e2e/cluster/helm.py ARGS` in the repository: its exit status, stdout and stderr.
fn helm_py(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(venv_helm())
        .arg(repo().join("e2e/cluster/helm.py"))
        .args(args)
        .current_dir(repo())
        .output()
        .expect("run helm.py");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `helm.py ARGS`, which must succeed: its stdout.
fn helm_ok(args: &[&str]) -> String {
    let (ok, stdout, stderr) = helm_py(args);
    assert!(ok, "helm.py {}:\n{stdout}{stderr}", args.join(" "));
    stdout
}

/// The chart's manifests as `helm template` prints them, with `extra` options (`--set K=V`...).
fn template(extra: &[&str]) -> Vec<Value> {
    let mut args = vec!["template", RELEASE, CHART, "--namespace", NAMESPACE];
    args.extend_from_slice(extra);
    documents(&helm_ok(&args))
}

/// The documents of a multi-document YAML text, empty ones left out.
fn documents(text: &str) -> Vec<Value> {
    serde_norway::Deserializer::from_str(text)
        .map(|doc| Value::deserialize(doc).expect("helm.py prints YAML"))
        .filter(|doc| !doc.is_null())
        .collect()
}

fn kinds(docs: &[Value]) -> Vec<String> {
    let mut kinds: Vec<String> = docs
        .iter()
        .map(|doc| doc["kind"].as_str().unwrap_or("?").to_owned())
        .collect();
    kinds.sort();
    kinds
}

/// The one document of `kind`, as `T`.
fn only<T: serde::de::DeserializeOwned>(docs: &[Value], kind: &str) -> T {
    let found: Vec<&Value> = docs.iter().filter(|doc| doc["kind"] == kind).collect();
    assert_eq!(found.len(), 1, "one {kind} in {:?}", kinds(docs));
    serde_norway::from_value(found[0].clone()).unwrap_or_else(|err| panic!("a {kind}: {err}"))
}

fn pod_spec(deployment: &Deployment) -> PodSpec {
    deployment
        .spec
        .template
        .spec
        .clone()
        .expect("a pod template")
}

fn pod_security(deployment: &Deployment) -> PodSecurityContext {
    pod_spec(deployment)
        .security_context
        .expect("the pod has a security context")
}

fn container(deployment: &Deployment) -> Container {
    let containers = pod_spec(deployment).containers;
    assert_eq!(containers.len(), 1, "one container");
    containers[0].clone()
}

/// The value of the container's environment variable `name`.
fn env(container: &Container, name: &str) -> Option<String> {
    container
        .env
        .iter()
        .flatten()
        .find(|var| var.name == name)
        .and_then(|var| var.value.clone())
}

/// The rules of `deploy/operator.yaml`'s ClusterRole.
fn deploy_cluster_role_rules() -> Vec<PolicyRule> {
    let docs = documents(&read(&repo().join("deploy/operator.yaml")));
    only::<ClusterRole>(&docs, "ClusterRole").rules.unwrap()
}

// --- Lint ----------------------------------------------------------------------------------

#[test]
fn helm_lint_is_clean() {
    let out = helm_ok(&["lint", "--strict", CHART]);
    assert!(
        out.contains("1 chart(s) linted, 0 chart(s) failed"),
        "{out}"
    );
    assert!(
        !out.contains("[WARNING]") && !out.contains("[ERROR]"),
        "{out}"
    );
}

// --- Default values ------------------------------------------------------------------------

#[test]
fn default_render_is_an_account_cluster_rbac_the_operator_and_its_metrics_service() {
    let docs = template(&[]);
    assert_eq!(
        kinds(&docs),
        [
            "ClusterRole",
            "ClusterRoleBinding",
            "Deployment",
            "Service",
            "ServiceAccount"
        ]
    );
    let namespaced = docs
        .iter()
        .filter(|doc| !doc["kind"].as_str().unwrap().starts_with("Cluster"));
    for doc in namespaced {
        assert_eq!(doc["metadata"]["namespace"], NAMESPACE, "{doc:?}");
    }
}

#[test]
fn operator_runs_the_app_version_image_with_json_logs() {
    let container = container(&only(&template(&[]), "Deployment"));
    assert_eq!(container.image.as_deref(), Some("raftnet/operator:0.1.0"));
    assert_eq!(container.image_pull_policy.as_deref(), Some("IfNotPresent"));
    assert_eq!(container.args.as_deref().unwrap(), ["--log-format", "json"]);
    assert_eq!(
        env(&container, "RUST_LOG").as_deref(),
        Some("info,kube=warn")
    );
}

#[test]
fn operator_runs_non_root_read_only_without_privileges() {
    let deployment: Deployment = only(&template(&[]), "Deployment");
    let pod = pod_security(&deployment);
    assert_eq!(pod.run_as_non_root, Some(true));
    assert_eq!(pod.run_as_user, Some(65532));
    assert_eq!(pod.run_as_group, Some(65532));
    assert_eq!(pod.seccomp_profile.unwrap().type_, "RuntimeDefault");
    let security = container(&deployment).security_context.unwrap();
    assert_eq!(security.read_only_root_filesystem, Some(true));
    assert_eq!(security.allow_privilege_escalation, Some(false));
    assert_eq!(security.capabilities.unwrap().drop.unwrap(), ["ALL"]);
}

#[test]
fn probes_ask_healthz_on_the_metrics_port() {
    let container = container(&only(&template(&[]), "Deployment"));
    let port = &container.ports.as_ref().unwrap()[0];
    assert_eq!(
        (port.name.as_deref(), port.container_port),
        (Some("metrics"), 8080)
    );
    assert_eq!(
        env(&container, "RAFTNET_METRICS_ADDRESS").as_deref(),
        Some("0.0.0.0:8080")
    );
    for probe in [&container.liveness_probe, &container.readiness_probe] {
        let get = probe.as_ref().unwrap().http_get.as_ref().unwrap();
        assert_eq!(get.path.as_deref(), Some("/healthz"));
        assert_eq!(
            serde_json::to_value(&get.port).unwrap(),
            serde_json::json!("metrics")
        );
    }
}

#[test]
fn resources_are_the_documented_defaults() {
    let container = container(&only(&template(&[]), "Deployment"));
    let resources = serde_json::to_value(container.resources.unwrap()).unwrap();
    assert_eq!(
        resources,
        serde_json::json!({
            "requests": {"cpu": "100m", "memory": "64Mi"},
            "limits": {"memory": "256Mi"},
        })
    );
}

#[test]
fn nodes_get_the_app_version_node_image_and_the_cluster_domain() {
    let container = container(&only(&template(&[]), "Deployment"));
    assert_eq!(
        env(&container, "RAFTNET_NODE_IMAGE").as_deref(),
        Some("raftnet/node:0.1.0")
    );
    assert_eq!(
        env(&container, "RAFTNET_IMAGE_PULL_POLICY").as_deref(),
        Some("IfNotPresent")
    );
    assert_eq!(
        env(&container, "RAFTNET_CLUSTER_DOMAIN").as_deref(),
        Some("cluster.local")
    );
    assert_eq!(env(&container, "WATCH_NAMESPACE"), None, "all namespaces");
}

#[test]
fn metrics_service_reaches_the_operator_pod() {
    let docs = template(&[]);
    let service = docs.iter().find(|doc| doc["kind"] == "Service").unwrap();
    assert_eq!(service["spec"]["type"], "ClusterIP");
    assert_eq!(service["spec"]["ports"][0]["port"], 8080);
    assert_eq!(service["spec"]["ports"][0]["targetPort"], "metrics");
    let deployment: Deployment = only(&docs, "Deployment");
    let pod_labels = deployment.spec.template.metadata.unwrap().labels.unwrap();
    let selector: std::collections::BTreeMap<String, String> =
        serde_norway::from_value(service["spec"]["selector"].clone()).unwrap();
    for (key, value) in &selector {
        assert_eq!(
            pod_labels.get(key),
            Some(value),
            "the pod has {key}={value}"
        );
    }
}

// --- Agreement with deploy/operator.yaml and crds/ -----------------------------------------

#[test]
fn cluster_role_grants_what_deploy_operator_yaml_grants() {
    // deploy/operator.yaml's rules are checked against what the operator does by the
    // operator crate's `rbac_check` test; the chart must grant exactly the same.
    let role: ClusterRole = only(&template(&[]), "ClusterRole");
    assert_eq!(role.rules.unwrap(), deploy_cluster_role_rules());
}

#[test]
fn operator_container_is_the_one_deploy_operator_yaml_runs() {
    let docs = documents(&read(&repo().join("deploy/operator.yaml")));
    let plain: Deployment = only(&docs, "Deployment");
    let charted: Deployment = only(&template(&[]), "Deployment");
    let (plain_container, charted_container) = (container(&plain), container(&charted));
    assert_eq!(charted_container.image, plain_container.image);
    assert_eq!(charted_container.args, plain_container.args);
    assert_eq!(charted_container.resources, plain_container.resources);
    assert_eq!(
        charted_container.security_context,
        plain_container.security_context
    );
    for probe in ["livenessProbe", "readinessProbe"] {
        let value = |c: &Container| serde_json::to_value(c).unwrap()[probe].clone();
        assert_eq!(
            value(&charted_container),
            value(&plain_container),
            "{probe}"
        );
    }
    // The chart's pod security context holds deploy/operator.yaml's, and may add to it.
    let charted_pod = serde_json::to_value(pod_security(&charted)).unwrap();
    let plain_pod = serde_json::to_value(pod_security(&plain)).unwrap();
    for (field, value) in plain_pod.as_object().unwrap() {
        assert_eq!(&charted_pod[field], value, "pod securityContext.{field}");
    }
}

#[test]
fn chart_crds_are_the_generated_crds() {
    let generated = repo().join("crds");
    let charted = repo().join(CHART).join("crds");
    let yaml_files = |dir: &Path| -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap_or_else(|err| panic!("{}: {err}", dir.display()))
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.ends_with(".yaml"))
            .collect();
        names.sort();
        names
    };
    assert_eq!(yaml_files(&charted), yaml_files(&generated));
    for file in yaml_files(&generated) {
        assert!(
            read(&charted.join(&file)) == read(&generated.join(&file)),
            "{CHART}/crds/{file} differs from crds/{file}: run \
             `cargo run -p raftnet-crds --bin crdgen`"
        );
    }
}

#[test]
fn helm_installs_the_four_crds() {
    let docs = template(&["--include-crds"]);
    let mut crds: Vec<String> = docs
        .iter()
        .filter(|doc| doc["kind"] == "CustomResourceDefinition")
        .map(|doc| doc["metadata"]["name"].as_str().unwrap().to_owned())
        .collect();
    crds.sort();
    assert_eq!(
        crds,
        [
            "channels.raftnet.dev",
            "networks.raftnet.dev",
            "orderers.raftnet.dev",
            "peers.raftnet.dev"
        ]
    );
}

// --- Values a user sets --------------------------------------------------------------------

#[test]
fn set_values_change_the_images_and_the_logs() {
    let docs = template(&[
        "--set",
        "image.tag=x",
        "--set",
        "nodeImage.tag=y",
        "--set",
        "logLevel=debug",
        "--set",
        "logFormat=text",
    ]);
    let container = container(&only(&docs, "Deployment"));
    assert_eq!(container.image.as_deref(), Some("raftnet/operator:x"));
    assert_eq!(
        env(&container, "RAFTNET_NODE_IMAGE").as_deref(),
        Some("raftnet/node:y")
    );
    assert_eq!(env(&container, "RUST_LOG").as_deref(), Some("debug"));
    assert_eq!(container.args.as_deref().unwrap(), ["--log-format", "text"]);
}

#[test]
fn a_values_file_is_read_and_set_wins_over_it() {
    let file =
        std::env::temp_dir().join(format!("raftnet-chart-values-{}.yaml", std::process::id()));
    std::fs::write(
        &file,
        "image:\n  repository: registry.example/raftnet/operator\n  tag: \"1.0\"\n\
         nodeSelector:\n  kubernetes.io/os: linux\n",
    )
    .unwrap();
    let docs = template(&["-f", file.to_str().unwrap(), "--set", "image.tag=2.0"]);
    std::fs::remove_file(&file).ok();
    let deployment: Deployment = only(&docs, "Deployment");
    assert_eq!(
        container(&deployment).image.as_deref(),
        Some("registry.example/raftnet/operator:2.0")
    );
    let pod = pod_spec(&deployment);
    assert_eq!(
        pod.node_selector
            .unwrap()
            .get("kubernetes.io/os")
            .map(String::as_str),
        Some("linux")
    );
}

#[test]
fn watch_namespace_grants_a_role_in_that_namespace_and_nothing_cluster_wide() {
    let docs = template(&["--set", "watchNamespace=ledger"]);
    assert_eq!(
        kinds(&docs),
        [
            "Deployment",
            "Role",
            "RoleBinding",
            "Service",
            "ServiceAccount"
        ]
    );
    let role: Role = only(&docs, "Role");
    assert_eq!(role.metadata.namespace.as_deref(), Some("ledger"));
    assert_eq!(role.rules.unwrap(), deploy_cluster_role_rules());
    let binding: RoleBinding = only(&docs, "RoleBinding");
    assert_eq!(binding.metadata.namespace.as_deref(), Some("ledger"));
    assert_eq!(binding.role_ref.kind, "Role");
    let subject = &binding.subjects.unwrap()[0];
    assert_eq!(
        (subject.name.as_str(), subject.namespace.as_deref()),
        (RELEASE, Some(NAMESPACE))
    );
    let container = container(&only(&docs, "Deployment"));
    assert_eq!(
        env(&container, "WATCH_NAMESPACE").as_deref(),
        Some("ledger")
    );
}

#[test]
fn an_existing_service_account_without_rbac() {
    let docs = template(&[
        "--set",
        "serviceAccount.create=false,serviceAccount.name=ops-account,rbac.create=false",
    ]);
    assert_eq!(kinds(&docs), ["Deployment", "Service"]);
    let deployment: Deployment = only(&docs, "Deployment");
    let pod = pod_spec(&deployment);
    assert_eq!(pod.service_account_name.as_deref(), Some("ops-account"));
}

#[test]
fn service_monitor_only_where_the_prometheus_operator_api_exists() {
    let enabled = ["--set", "metrics.serviceMonitor.enabled=true"];
    assert!(!kinds(&template(&enabled)).contains(&"ServiceMonitor".to_owned()));

    let mut with_api = enabled.to_vec();
    with_api.extend(["--api-versions", "monitoring.coreos.com/v1"]);
    let docs = template(&with_api);
    let monitor = docs.iter().find(|doc| doc["kind"] == "ServiceMonitor");
    let monitor = monitor.expect("a ServiceMonitor where monitoring.coreos.com/v1 exists");
    let service = docs.iter().find(|doc| doc["kind"] == "Service").unwrap();
    assert_eq!(
        monitor["spec"]["selector"]["matchLabels"],
        service["spec"]["selector"]
    );
    assert_eq!(monitor["spec"]["endpoints"][0]["port"], "metrics");
    assert_eq!(monitor["spec"]["endpoints"][0]["path"], "/metrics");

    let default_api = template(&["--api-versions", "monitoring.coreos.com/v1"]);
    assert!(
        !kinds(&default_api).contains(&"ServiceMonitor".to_owned()),
        "disabled by default"
    );
}

#[test]
fn a_service_monitor_without_its_service_is_refused_with_a_reason() {
    let (ok, _, stderr) = helm_py(&[
        "template",
        RELEASE,
        CHART,
        "--set",
        "metrics.serviceMonitor.enabled=true,metrics.service.enabled=false",
    ]);
    assert!(!ok);
    assert!(
        stderr.contains("metrics.serviceMonitor.enabled needs metrics.service.enabled"),
        "{stderr}"
    );
}

#[test]
fn kubernetes_before_1_20_is_refused() {
    let (ok, _, stderr) = helm_py(&["template", RELEASE, CHART, "--kube-version", "1.19.16"]);
    assert!(!ok);
    assert!(stderr.contains("kubeVersion: >=1.20.0-0"), "{stderr}");
    template(&["--kube-version", "1.20.0"]);
}

// --- NOTES.txt -----------------------------------------------------------------------------

#[test]
fn notes_tell_how_to_run_the_first_network_and_watch_its_orderers() {
    let notes = helm_ok(&["notes", RELEASE, CHART, "--namespace", NAMESPACE]);
    assert!(
        notes.contains("kubectl apply -n lab -f deploy/first-network.yaml"),
        "{notes}"
    );
    assert!(notes.contains("kubectl get -n lab orderers -w"), "{notes}");

    let scoped = helm_ok(&["notes", RELEASE, CHART, "--set", "watchNamespace=ledger"]);
    assert!(
        scoped.contains("kubectl apply -n ledger -f deploy/first-network.yaml"),
        "{scoped}"
    );
    assert!(
        scoped.contains("kubectl get -n ledger orderers -w"),
        "{scoped}"
    );
}
