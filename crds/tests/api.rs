//! raftnet's API as its users meet it: the checked-in CRDs and what `kubectl` will show of them,
//! the CEL rules as an API server evaluates them, the example manifests in `deploy/`, and the
//! messages a bad manifest gets.

use std::path::PathBuf;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;
use raftnet_crds::{
    crd, load_manifests, BatchSpec, BuiltinContract, Channel, Manifests, Network, Orderer, Peer,
    RaftSpec,
};
use serde_json::{json, Value};

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn deploy_dir() -> PathBuf {
    crate_dir().join("../deploy")
}

fn read(path: PathBuf) -> String {
    std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

fn first_network() -> String {
    read(deploy_dir().join("first-network.yaml"))
}

/// The first network manifest with `from` replaced by `to` (which must be there exactly once).
fn first_network_with(from: &str, to: &str) -> String {
    let text = first_network();
    assert_eq!(
        text.matches(from).count(),
        1,
        "{from:?} in first-network.yaml"
    );
    text.replace(from, to)
}

/// The problems `Manifests::validate` finds in a manifest that loads.
fn problems(text: &str) -> Vec<String> {
    let manifests = load_manifests(text).unwrap_or_else(|err| panic!("does not load: {err}"));
    manifests.validate().expect_err("validates, but should not")
}

/// Asserts that one of the problems is exactly `expected`.
fn assert_problem(text: &str, expected: &str) {
    let problems = problems(text);
    assert!(
        problems.iter().any(|problem| problem == expected),
        "expected {expected:?} among {problems:#?}"
    );
}

/// The error of a manifest that does not load.
fn load_error(text: &str) -> String {
    load_manifests(text)
        .expect_err("loads, but should not")
        .to_string()
}

fn schema_of(crd: &CustomResourceDefinition) -> Value {
    let schema = crd.spec.versions[0]
        .schema
        .as_ref()
        .and_then(|s| s.open_api_v3_schema.as_ref());
    serde_json::to_value(schema.expect("the CRD has a schema")).unwrap()
}

// --- The checked-in CRDs -------------------------------------------------------------------

/// Both checked-in copies of the CRDs: the crate's own, and the Helm chart's `crds/` (Helm
/// installs the files of that folder; its packages do not keep symlinks, so it holds copies).
fn checked_in_crd_dirs() -> [(&'static str, PathBuf); 2] {
    [
        ("crds", crate_dir()),
        (
            "charts/raftnet-operator/crds",
            crate_dir().join("../charts/raftnet-operator/crds"),
        ),
    ]
}

#[test]
fn checked_in_crds_are_what_the_types_generate() {
    for (dir_name, dir) in checked_in_crd_dirs() {
        for (file, crd) in crd::all() {
            let generated = crd::to_yaml(&crd).unwrap();
            let checked_in = std::fs::read_to_string(dir.join(file)).unwrap_or_default();
            if checked_in != generated {
                let line = checked_in
                    .lines()
                    .zip(generated.lines())
                    .position(|(old, new)| old != new)
                    .unwrap_or_else(|| checked_in.lines().count().min(generated.lines().count()));
                panic!(
                    "{dir_name}/{file} is stale or missing (first difference at line {}): \
                     run `cargo run -p raftnet-crds --bin crdgen`",
                    line + 1
                );
            }
            let parsed: CustomResourceDefinition = serde_norway::from_str(&checked_in).unwrap();
            assert_eq!(
                parsed, crd,
                "{dir_name}/{file} reads back as the CRD it was written from"
            );
        }
    }
}

#[test]
fn the_chart_holds_exactly_the_generated_crds() {
    let dir = &checked_in_crd_dirs()[1].1;
    let mut found: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|err| panic!("{}: {err}", dir.display()))
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    found.sort();
    let mut expected: Vec<String> = crd::all().iter().map(|(f, _)| f.to_string()).collect();
    expected.sort();
    assert_eq!(
        found, expected,
        "charts/raftnet-operator/crds holds a file crdgen does not write (Helm would install it)"
    );
}

#[test]
fn crds_have_group_version_scope_and_short_names() {
    let expected = [
        ("networks.raftnet.dev", "Network", "rnet"),
        ("channels.raftnet.dev", "Channel", "chan"),
        ("orderers.raftnet.dev", "Orderer", "ord"),
        ("peers.raftnet.dev", "Peer", "peer"),
    ];
    for ((_, crd), (name, kind, short)) in crd::all().iter().zip(expected) {
        assert_eq!(crd.metadata.name.as_deref(), Some(name));
        assert_eq!(crd.spec.group, "raftnet.dev");
        assert_eq!(crd.spec.names.kind, kind);
        assert_eq!(crd.spec.names.short_names, Some(vec![short.to_owned()]));
        assert_eq!(crd.spec.names.categories, Some(vec!["raftnet".to_owned()]));
        assert_eq!(crd.spec.scope, "Namespaced");
        assert_eq!(crd.spec.versions.len(), 1);
        let version = &crd.spec.versions[0];
        assert_eq!(version.name, "v1alpha1");
        assert!(version.served && version.storage);
        let status = version
            .subresources
            .as_ref()
            .and_then(|s| s.status.as_ref());
        assert!(status.is_some(), "{name} has a status subresource");
    }
}

#[test]
fn printer_columns_are_what_kubectl_get_shows_in_the_design() {
    const READY: &str = r#".status.conditions[?(@.type=="Ready")].status"#;
    const AGE: &str = ".metadata.creationTimestamp";
    let columns = |crd: CustomResourceDefinition| -> Vec<(String, String, String)> {
        let columns = crd.spec.versions[0]
            .additional_printer_columns
            .clone()
            .unwrap_or_default();
        columns
            .into_iter()
            .map(|c| (c.name, c.type_, c.json_path))
            .collect()
    };
    let expect = |columns: &[(&str, &str, &str)]| -> Vec<(String, String, String)> {
        let owned = |(n, t, p): &(&str, &str, &str)| (n.to_string(), t.to_string(), p.to_string());
        columns.iter().map(owned).collect()
    };
    // NAME is always the first column; kubectl adds it.
    assert_eq!(
        columns(Orderer::crd()),
        expect(&[
            ("NETWORK", "string", ".spec.network"),
            ("ROLE", "string", ".status.role"),
            ("LEADER", "string", ".status.leader"),
            ("TERM", "integer", ".status.term"),
            ("HEIGHT", "integer", ".status.height"),
            ("READY", "string", READY),
            ("AGE", "date", AGE),
        ])
    );
    assert_eq!(
        columns(Network::crd()),
        expect(&[
            ("ORDERERS", "string", ".status.orderers"),
            ("PEERS", "string", ".status.peers"),
            ("LEADER", "string", ".status.leader"),
            ("QUORUM", "string", ".status.quorum"),
            ("AGE", "date", AGE),
        ])
    );
    assert_eq!(
        columns(Channel::crd()),
        expect(&[
            ("NETWORK", "string", ".spec.network"),
            ("LEADER", "string", ".status.leader"),
            ("TERM", "integer", ".status.term"),
            ("HEIGHT", "integer", ".status.height"),
            ("QUORUM", "string", ".status.quorum"),
            ("AGE", "date", AGE),
        ])
    );
    assert_eq!(
        columns(Peer::crd()),
        expect(&[
            ("ORG", "string", ".spec.organization"),
            ("CHANNELS", "integer", ".status.channels"),
            ("HEIGHT", "integer", ".status.height"),
            ("READY", "string", READY),
            ("AGE", "date", AGE),
        ])
    );
}

#[test]
fn schema_bounds_the_orderer_count_and_requires_it_odd() {
    let schema = schema_of(&Network::crd());
    let organization = &schema["properties"]["spec"]["properties"]["ordererOrganization"];
    let orderers = &organization["properties"]["orderers"];
    assert_eq!(orderers["minimum"].as_f64(), Some(1.0));
    assert_eq!(orderers["maximum"].as_f64(), Some(9.0));
    assert!(orderers["description"].as_str().unwrap().contains("odd"));
    assert_eq!(
        organization["x-kubernetes-validations"],
        json!([{
            "rule": "self.orderers % 2 == 1",
            "message": "orderers must be odd: a Raft group of N tolerates (N-1)/2 failures; \
                        use 1, 3, 5, 7 or 9"
        }])
    );
    assert_eq!(organization["properties"]["mspId"]["default"], "OrdererMSP");
}

#[test]
fn schema_has_patterns_defaults_and_unique_lists() {
    let network = schema_of(&Network::crd());
    let spec = &network["properties"]["spec"]["properties"];
    assert_eq!(
        spec["raft"]["properties"]["tickInterval"]["pattern"],
        "^[0-9]+(ms|s|m|h)$"
    );
    assert_eq!(
        spec["raft"]["properties"]["tickInterval"]["default"],
        "100ms"
    );
    assert_eq!(
        spec["raft"]["properties"]["snapshotIntervalSize"]["pattern"],
        "^[0-9]+(Ki|Mi|Gi)?$"
    );
    assert_eq!(
        spec["batch"]["properties"]["maxMessageCount"]["default"],
        500
    );
    assert_eq!(spec["organizations"]["minItems"], 1);
    assert_eq!(spec["organizations"]["x-kubernetes-list-type"], "map");
    assert_eq!(
        spec["organizations"]["x-kubernetes-list-map-keys"],
        json!(["mspId"])
    );
    let org = &spec["organizations"]["items"]["properties"];
    assert_eq!(org["mspId"]["pattern"], "^[A-Za-z][A-Za-z0-9.-]{0,62}$");
    assert_eq!(org["peers"]["default"], 2);
    assert_eq!(org["peers"]["maximum"].as_f64(), Some(8.0));

    let channel = schema_of(&Channel::crd());
    let spec = &channel["properties"]["spec"]["properties"];
    assert_eq!(
        spec["network"]["pattern"],
        "^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
    );
    assert_eq!(spec["organizations"]["x-kubernetes-list-type"], "set");
    assert_eq!(
        spec["contracts"]["x-kubernetes-list-map-keys"],
        json!(["name"])
    );
    let contract = &spec["contracts"]["items"]["properties"];
    assert_eq!(contract["contract"]["enum"], json!(["example02", "asset"]));
    assert_eq!(contract["endorsementPolicy"]["minLength"], 1);
    assert_eq!(contract["version"]["default"], "1.0");

    for (_, crd) in crd::all() {
        let schema = schema_of(&crd);
        let conditions = &schema["properties"]["status"]["properties"]["conditions"];
        assert_eq!(
            conditions["x-kubernetes-list-map-keys"],
            json!(["type"]),
            "{:?}",
            crd.metadata.name
        );
    }
}

// --- CEL rules, as an API server evaluates them ----------------------------------------------

/// Every `x-kubernetes-validations` rule in a schema, with the path of its node.
fn cel_rules(schema: &Value, path: &str, out: &mut Vec<(String, String)>) {
    if let Some(rules) = schema["x-kubernetes-validations"].as_array() {
        for rule in rules {
            out.push((path.to_owned(), rule["rule"].as_str().unwrap().to_owned()));
        }
    }
    if let Some(properties) = schema["properties"].as_object() {
        for (name, property) in properties {
            cel_rules(property, &format!("{path}.{name}"), out);
        }
    }
    if schema["items"].is_object() {
        cel_rules(&schema["items"], &format!("{path}[]"), out);
    }
}

#[test]
fn cel_rules_compile_and_fit_the_cost_budget() {
    let mut count = 0;
    for (file, crd) in crd::all() {
        let schema = schema_of(&crd);
        let compiled = kube_cel::compile_schema(&schema);
        let mut rules = Vec::new();
        cel_rules(&schema, "", &mut rules);
        for (path, rule) in rules {
            count += 1;
            let node = path
                .split('.')
                .skip(1)
                .fold(&compiled, |node, name| &node.properties[name]);
            assert!(
                !node.has_errors(),
                "{file} {path}: {rule}: {:?}",
                node.compilation_errors()
            );
            let warnings =
                kube_cel::analyze_rule(&rule, node, kube_cel::ScopeContext::CrdValidation);
            assert!(warnings.is_empty(), "{file} {path}: {rule}: {warnings:?}");
        }
    }
    assert_eq!(count, 2, "the odd-orderers and electionTick rules");
}

/// What the API server's CEL rules say of a network manifest (after defaulting).
fn cel_verdict(network: &Network) -> Result<(), String> {
    let schema = schema_of(&Network::crd());
    let object = serde_json::to_value(network).unwrap();
    kube_cel::Validator::new()
        .validate(&schema, &object, None)
        .map_err(|errors| {
            errors
                .iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("; ")
        })
}

#[test]
fn cel_rules_agree_with_validate() {
    let manifests = load_manifests(&first_network()).unwrap();
    let good = manifests.networks[0].clone();
    assert_eq!(cel_verdict(&good), Ok(()));
    assert_eq!(good.spec.validate(), Ok(()));

    for orderers in 1..=9 {
        let mut network = good.clone();
        network.spec.orderer_organization.orderers = orderers;
        let odd = orderers % 2 == 1;
        assert_eq!(
            cel_verdict(&network).is_ok(),
            odd,
            "{orderers} orderers, CEL"
        );
        assert_eq!(
            network.spec.validate().is_ok(),
            odd,
            "{orderers} orderers, validate"
        );
    }
    let mut even = good.clone();
    even.spec.orderer_organization.orderers = 4;
    let cel = cel_verdict(&even).unwrap_err();
    assert!(cel.contains("orderers must be odd"), "{cel}");

    for (election, heartbeat) in [(10, 1), (2, 1), (1, 1), (3, 5)] {
        let mut network = good.clone();
        network.spec.raft.election_tick = election;
        network.spec.raft.heartbeat_tick = heartbeat;
        let ok = election > heartbeat;
        assert_eq!(
            cel_verdict(&network).is_ok(),
            ok,
            "{election}/{heartbeat}, CEL"
        );
        assert_eq!(
            network.spec.validate().is_ok(),
            ok,
            "{election}/{heartbeat}, validate"
        );
    }
}

// --- The example manifests -----------------------------------------------------------------

#[test]
fn every_deploy_manifest_loads_and_validates() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(deploy_dir())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        // The operator's own deployment, not a network (tested by the operator's crate).
        .filter(|path| !path.ends_with("operator.yaml"))
        .collect();
    files.sort();
    let names: Vec<_> = files
        .iter()
        .map(|f| f.file_name().unwrap().to_owned())
        .collect();
    assert!(names.contains(&"first-network.yaml".into()), "{names:?}");
    assert!(names.contains(&"minimal.yaml".into()), "{names:?}");
    for file in files {
        let manifests = load_manifests(&read(file.clone()))
            .unwrap_or_else(|err| panic!("{}: {err}", file.display()));
        assert!(!manifests.is_empty(), "{}", file.display());
        if let Err(problems) = manifests.validate() {
            panic!("{}: {problems:#?}", file.display());
        }
    }
}

#[test]
fn first_network_is_the_seed_lab() {
    let manifests = load_manifests(&first_network()).unwrap();
    assert_eq!((manifests.networks.len(), manifests.channels.len()), (1, 1));
    let network = &manifests.networks[0];
    assert_eq!(network.metadata.name.as_deref(), Some("first-network"));
    let spec = &network.spec;
    assert_eq!(spec.orderer_organization.msp_id, "OrdererMSP");
    assert_eq!(spec.orderer_organization.orderers, 5);
    let orgs: Vec<_> = spec
        .organizations
        .iter()
        .map(|o| (o.msp_id.as_str(), o.peers))
        .collect();
    assert_eq!(orgs, [("Org1MSP", 2), ("Org2MSP", 2)]);
    assert_eq!(
        spec.raft,
        RaftSpec {
            tick_interval: "500ms".into(),
            election_tick: 10,
            heartbeat_tick: 1,
            max_inflight_blocks: 5,
            snapshot_interval_size: "20Mi".into(),
        }
    );
    assert_eq!(
        spec.batch,
        BatchSpec {
            batch_timeout: "2s".into(),
            max_message_count: 10,
            preferred_max_bytes: "512Ki".into(),
            absolute_max_bytes: "10Mi".into(),
        }
    );

    let channel = &manifests.channels[0];
    assert_eq!(channel.metadata.name.as_deref(), Some("mychannel"));
    assert_eq!(channel.spec.network, "first-network");
    assert_eq!(channel.spec.organizations, ["Org1MSP", "Org2MSP"]);
    assert_eq!(channel.spec.orderers, None);
    let contract = &channel.spec.contracts[0];
    assert_eq!(contract.name, "mycc");
    assert_eq!(contract.contract, BuiltinContract::Example02);
    assert_eq!(contract.version, "1.0");
    assert_eq!(
        contract.endorsement_policy,
        "AND('Org1MSP.peer','Org2MSP.peer')"
    );
    assert_eq!(contract.init, ["a", "100", "b", "200"]);
}

#[test]
fn minimal_takes_raftnets_defaults() {
    let manifests = load_manifests(&read(deploy_dir().join("minimal.yaml"))).unwrap();
    let spec = &manifests.networks[0].spec;
    assert_eq!(spec.orderer_organization.msp_id, "OrdererMSP");
    assert_eq!(spec.orderer_organization.orderers, 3);
    assert_eq!(spec.raft, RaftSpec::default());
    assert_eq!(spec.batch, BatchSpec::default());
    assert_eq!(
        raftnet_crds::parse_duration(&spec.raft.tick_interval)
            .unwrap()
            .as_millis(),
        100
    );
    assert_eq!(
        raftnet_crds::parse_size(&spec.raft.snapshot_interval_size),
        Ok(16 << 20)
    );
    let contract = &manifests.channels[0].spec.contracts[0];
    assert_eq!(
        (contract.name.as_str(), contract.contract),
        ("kv", BuiltinContract::Asset)
    );
    assert_eq!(contract.version, "1.0");
    assert!(contract.init.is_empty());
}

#[test]
fn resources_written_by_rust_read_back_the_same() {
    let manifests = load_manifests(&first_network()).unwrap();
    let mut network = manifests.networks[0].clone();
    network.status = Some(raftnet_crds::NetworkStatus {
        observed_generation: Some(3),
        orderers: Some("4/5".into()),
        peers: Some("4/4".into()),
        leader: Some("orderer3".into()),
        quorum: Some(raftnet_crds::status::quorum::DEGRADED.into()),
        conditions: vec![],
    });
    let channel = manifests.channels[0].clone();
    let text = format!(
        "{}---\n{}",
        serde_norway::to_string(&network).unwrap(),
        serde_norway::to_string(&channel).unwrap()
    );
    let again = load_manifests(&text).unwrap();
    assert_eq!(
        again,
        Manifests {
            networks: vec![network],
            channels: vec![channel],
            ..Manifests::default()
        }
    );
}

// --- Bad manifests -------------------------------------------------------------------------

#[test]
fn even_orderer_count_is_refused() {
    assert_problem(
        &first_network_with("orderers: 5", "orderers: 4"),
        "Network first-network: spec.ordererOrganization.orderers: orderers must be odd: a Raft \
         group of N tolerates (N-1)/2 failures; use 1, 3, 5, 7 or 9 (got 4)",
    );
}

#[test]
fn zero_or_too_many_orderers_are_refused() {
    assert_problem(
        &first_network_with("orderers: 5", "orderers: 0"),
        "Network first-network: spec.ordererOrganization.orderers: must be between 1 and 9 (got 0)",
    );
    assert_problem(
        &first_network_with("orderers: 5", "orderers: 11"),
        "Network first-network: spec.ordererOrganization.orderers: must be between 1 and 9 (got 11)",
    );
}

#[test]
fn channel_with_an_organisation_the_network_lacks_is_refused() {
    assert_problem(
        &first_network_with(
            "    - Org1MSP\n    - Org2MSP\n",
            "    - Org1MSP\n    - Org3MSP\n",
        ),
        "Channel mychannel: spec.organizations[1]: Org3MSP is not an organisation of network \
         first-network (it has Org1MSP, Org2MSP)",
    );
}

#[test]
fn unknown_field_is_refused_with_document_and_path() {
    let err = load_error(&first_network_with("endorsementPolicy:", "polcy:"));
    assert!(
        err.starts_with(
            "document 2 (Channel mychannel): spec.contracts[0]: unknown field `polcy`, expected one of"
        ),
        "{err}"
    );
    let err = load_error(&first_network_with(
        "    heartbeatTick: 1",
        "    heartbeatTicks: 1",
    ));
    assert!(
        err.starts_with(
            "document 1 (Network first-network): spec.raft: unknown field `heartbeatTicks`"
        ),
        "{err}"
    );
    let err = load_error(&first_network_with(
        "spec:\n  network:",
        "specs:\n  network:",
    ));
    assert!(
        err.starts_with("document 2 (Channel mychannel): unknown field `specs`"),
        "{err}"
    );
}

#[test]
fn empty_endorsement_policy_is_refused() {
    assert_problem(
        &first_network_with(
            "endorsementPolicy: AND('Org1MSP.peer','Org2MSP.peer')",
            "endorsementPolicy: \"\"",
        ),
        "Channel mychannel: spec.contracts[0].endorsementPolicy: must not be empty",
    );
}

#[test]
fn bad_duration_is_refused() {
    let problems = problems(&first_network_with(
        "batchTimeout: 2s",
        "batchTimeout: 5 seconds",
    ));
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert!(
        problems[0].starts_with(
            "Network first-network: spec.batch.batchTimeout: \"5 seconds\" is not a duration: \
             expected a whole number followed by ms, s, m or h"
        ),
        "{problems:#?}"
    );
    assert_problem(
        &first_network_with("tickInterval: 500ms", "tickInterval: 0ms"),
        "Network first-network: spec.raft.tickInterval: must be greater than zero",
    );
    assert_problem(
        &first_network_with("  raft:\n", "  certificateValidity: 0h\n  raft:\n"),
        "Network first-network: spec.certificateValidity: must be greater than zero",
    );
}

#[test]
fn other_rules_of_the_network_are_enforced() {
    assert_problem(
        &first_network_with("    - mspId: Org2MSP", "    - mspId: Org1MSP"),
        "Network first-network: spec.organizations[1].mspId: duplicate MSP id Org1MSP \
         (already at spec.organizations[0].mspId)",
    );
    assert_problem(
        &first_network_with("    - mspId: Org2MSP", "    - mspId: OrdererMSP"),
        "Network first-network: spec.organizations[1].mspId: duplicate MSP id OrdererMSP \
         (already at spec.ordererOrganization.mspId)",
    );
    assert_problem(
        &first_network_with("electionTick: 10", "electionTick: 1"),
        "Network first-network: spec.raft.electionTick: must be greater than heartbeatTick \
         (got electionTick 1, heartbeatTick 1)",
    );
    assert_problem(
        &first_network_with("preferredMaxBytes: 512Ki", "preferredMaxBytes: 20Mi"),
        "Network first-network: spec.batch.preferredMaxBytes: must be at most absoluteMaxBytes \
         (20Mi > 10Mi)",
    );
    assert_problem(
        &first_network_with("absoluteMaxBytes: 10Mi", "absoluteMaxBytes: 10MB"),
        "Network first-network: spec.batch.absoluteMaxBytes: \"10MB\" is not a size: expected a \
         whole number of bytes, optionally followed by Ki, Mi or Gi (e.g. 4096, 512Ki, 2Mi, 1Gi)",
    );
    assert_problem(
        &first_network_with(
            "      peers: 2\n    - mspId: Org2MSP",
            "      peers: 9\n    - mspId: Org2MSP",
        ),
        "Network first-network: spec.organizations[0].peers: must be between 0 and 8 (got 9)",
    );
    assert_problem(
        &first_network_with("    - mspId: Org2MSP", "    - mspId: Org 2"),
        "Network first-network: spec.organizations[1].mspId: \"Org 2\" is not an MSP id: \
         expected a letter, then up to 62 letters, digits, '.' or '-' (e.g. Org1MSP)",
    );
    let organizations = "  organizations:\n    - mspId: Org1MSP\n      peers: 2\n    \
                         - mspId: Org2MSP\n      peers: 2\n";
    assert_problem(
        &first_network_with(organizations, "  organizations: []\n"),
        "Network first-network: spec.organizations: must list at least one organisation",
    );
}

#[test]
fn other_rules_of_the_channel_are_enforced() {
    assert_problem(
        &first_network_with("  network: first-network", "  network: second-network"),
        "Channel mychannel: spec.network: network second-network is not defined in these \
         manifests (networks defined: first-network)",
    );
    assert_problem(
        &first_network_with("  network: first-network", "  network: First_Network"),
        "Channel mychannel: spec.network: network First_Network is not defined in these \
         manifests (networks defined: first-network)",
    );
    assert_problem(
        &first_network_with(
            "    - Org1MSP\n    - Org2MSP\n",
            "    - Org1MSP\n    - Org1MSP\n",
        ),
        "Channel mychannel: spec.organizations[1]: duplicate organisation Org1MSP \
         (already at spec.organizations[0])",
    );
    let with_two = first_network_with(
        "      init: [\"a\", \"100\", \"b\", \"200\"]\n",
        "      init: [\"a\", \"100\", \"b\", \"200\"]\n    - name: mycc\n      contract: asset\n      \
         endorsementPolicy: OR('Org1MSP.peer')\n",
    );
    assert_problem(
        &with_two,
        "Channel mychannel: spec.contracts[1].name: duplicate contract mycc \
         (already at spec.contracts[0].name)",
    );
    assert_problem(
        &first_network_with(
            "  organizations:\n    - Org1MSP\n    - Org2MSP\n",
            "  organizations: []\n  orderers: [Orderer1]\n",
        ),
        "Channel mychannel: spec.organizations: must list at least one organisation",
    );
    assert_problem(
        &first_network_with(
            "  organizations:\n    - Org1MSP\n    - Org2MSP\n",
            "  organizations: [Org1MSP]\n  orderers: [Orderer1]\n",
        ),
        "Channel mychannel: spec.orderers[0]: \"Orderer1\" is not a DNS label: expected at most \
         63 lower-case letters, digits or '-', starting and ending with a letter or digit \
         (e.g. first-network)",
    );
}

#[test]
fn wrong_types_kinds_and_versions_are_refused() {
    let err = load_error(&first_network_with("orderers: 5", "orderers: five"));
    assert_eq!(
        err,
        "document 1 (Network first-network): spec.ordererOrganization.orderers: invalid type: \
         string \"five\", expected u32"
    );
    let err = load_error(&first_network_with(
        "contract: example02",
        "contract: example03",
    ));
    assert!(
        err.starts_with(
            "document 2 (Channel mychannel): spec.contracts[0].contract: unknown variant `example03`, \
             expected `example02` or `asset`"
        ),
        "{err}"
    );
    let err = load_error(&first_network_with("kind: Channel", "kind: Chanel"));
    assert_eq!(
        err,
        "document 2 (Chanel mychannel): kind: Chanel is not a raftnet kind (expected Network, \
         Channel, Orderer or Peer)"
    );
    let text = first_network().replacen("raftnet.dev/v1alpha1", "raftnet.dev/v1", 1);
    assert_eq!(
        load_error(&text),
        "document 1 (Network first-network): apiVersion: raftnet.dev/v1 is not a raftnet API \
         version (expected raftnet.dev/v1alpha1)"
    );
    let err = load_error(
        "apiVersion: raftnet.dev/v1alpha1\nkind: Network\nmetadata: {name: x}\nspec: [\n",
    );
    assert!(err.starts_with("document 1: not valid YAML: "), "{err}");
    let err = load_error("---\n- a\n- b\n");
    assert_eq!(
        err,
        "document 1: expected a resource: a mapping with apiVersion, kind, metadata and spec"
    );
}

#[test]
fn names_and_references_between_resources_are_checked() {
    let extra = "\n---\napiVersion: raftnet.dev/v1alpha1\nkind: Orderer\nmetadata:\n  name: orderer1\n\
                 spec:\n  network: first-network\n  consenterId: 1\n\
                 ---\napiVersion: raftnet.dev/v1alpha1\nkind: Orderer\nmetadata:\n  name: orderer2\n\
                 spec:\n  network: first-network\n  consenterId: 1\n  mspId: Org1MSP\n\
                 ---\napiVersion: raftnet.dev/v1alpha1\nkind: Peer\nmetadata:\n  name: Peer0\n\
                 spec:\n  network: first-network\n  organization: Org3MSP\n";
    let text = format!("{}{extra}", first_network());
    let problems = problems(&text);
    assert_eq!(
        problems,
        [
            "Peer Peer0: metadata.name: \"Peer0\" is not a DNS label: expected at most 63 \
             lower-case letters, digits or '-', starting and ending with a letter or digit \
             (e.g. first-network)",
            "Orderer orderer2: spec.mspId: Org1MSP is not the orderer organisation of network \
             first-network (it is OrdererMSP)",
            "Orderer orderer2: spec.consenterId: 1 is already the consenter id of orderer \
             orderer1 in network first-network",
            "Peer Peer0: spec.organization: Org3MSP is not an organisation of network \
             first-network (it has Org1MSP, Org2MSP)",
        ]
    );
}
