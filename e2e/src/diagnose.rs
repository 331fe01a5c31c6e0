//! What a failed run prints: the operator's and every node's logs, the raftnet resources as
//! YAML, pods and events. Only kubectl, so it works on any cluster.

use crate::install::OPERATOR_NAMESPACE;
use crate::kubectl::Kubectl;

/// Lines of each log to print.
const TAIL: &str = "--tail=80";

/// Everything worth reading after a failure in `namespace`, as one text.
pub async fn report(namespace: &str) -> String {
    let ns = Kubectl::new(namespace);
    let system = Kubectl::new(OPERATOR_NAMESPACE);
    let mut out = String::new();
    let mut section = |title: String, body: anyhow::Result<String>| {
        out.push_str(&format!("===== {title}\n"));
        match body {
            Ok(text) => out.push_str(&text),
            Err(e) => out.push_str(&format!("({e:#})\n")),
        }
    };
    section(
        "operator log".into(),
        system
            .run(&[
                "logs",
                "deployment/raftnet-operator",
                TAIL,
                "--all-containers",
            ])
            .await,
    );
    section(
        format!("pods in {namespace} and {OPERATOR_NAMESPACE}"),
        async {
            let a = ns.run(&["get", "pods", "-o", "wide"]).await?;
            let b = system.run(&["get", "pods", "-o", "wide"]).await?;
            Ok(format!("{a}{b}"))
        }
        .await,
    );
    section(
        "networks, channels, orderers, peers".into(),
        ns.run(&["get", "networks,channels,orderers,peers", "-o", "yaml"])
            .await,
    );
    let pods = ns
        .run(&["get", "pods", "-o", "jsonpath={.items[*].metadata.name}"])
        .await
        .unwrap_or_default();
    for pod in pods.split_whitespace() {
        section(format!("log of {pod}"), ns.run(&["logs", pod, TAIL]).await);
    }
    section(
        "events".into(),
        ns.run(&["get", "events", "--sort-by=.lastTimestamp"]).await,
    );
    out
}
