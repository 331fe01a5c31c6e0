//! Reading manifests without an API server: multi-document YAML (`---`) into typed resources,
//! and the checks the API server and the operator would make.
//!
//! Loading refuses what the API server would refuse on decoding: unknown `apiVersion`s and kinds,
//! unknown fields, wrong types. [`Manifests::validate`] then checks the values and the references
//! between resources.

use std::collections::HashMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_norway::Value;
use serde_path_to_error::Segment;

use crate::names::check_dns_label;
use crate::{Channel, Network, Orderer, Peer, API_VERSION};

/// The top-level fields of a resource.
const TOP_LEVEL_FIELDS: [&str; 5] = ["apiVersion", "kind", "metadata", "spec", "status"];

/// The resources of one or more manifests, by kind, in the order they were written.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Manifests {
    /// `kind: Network` documents.
    pub networks: Vec<Network>,
    /// `kind: Channel` documents.
    pub channels: Vec<Channel>,
    /// `kind: Orderer` documents.
    pub orderers: Vec<Orderer>,
    /// `kind: Peer` documents.
    pub peers: Vec<Peer>,
}

/// A document that is not a raftnet resource, or not a well-formed one.
///
/// Displays as `document 2 (Channel mychannel): spec.contracts[0]: unknown field ...`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("document {document}{}: {message}", in_parentheses(resource))]
pub struct ManifestError {
    /// Position of the document in the text, from 1.
    pub document: usize,
    /// `Kind name` of the resource, as far as the document says.
    pub resource: Option<String>,
    /// What is wrong, starting with the path of the field when there is one.
    pub message: String,
}

fn in_parentheses(resource: &Option<String>) -> String {
    resource
        .as_ref()
        .map(|r| format!(" ({r})"))
        .unwrap_or_default()
}

/// Parses multi-document YAML into resources. Empty documents are skipped; the first bad
/// document ends the parse with an error that names it.
pub fn load_manifests(text: &str) -> Result<Manifests, ManifestError> {
    let mut manifests = Manifests::default();
    for (index, document) in serde_norway::Deserializer::from_str(text).enumerate() {
        let number = index + 1;
        let value = Value::deserialize(document).map_err(|err| ManifestError {
            document: number,
            resource: None,
            message: format!("not valid YAML: {err}"),
        })?;
        if !value.is_null() {
            manifests.add(number, value)?;
        }
    }
    Ok(manifests)
}

impl Manifests {
    /// Whether there is no resource at all.
    pub fn is_empty(&self) -> bool {
        self.networks.is_empty()
            && self.channels.is_empty()
            && self.orderers.is_empty()
            && self.peers.is_empty()
    }

    /// The network of this name in this namespace.
    pub fn network(&self, name: &str, namespace: Option<&str>) -> Option<&Network> {
        self.networks.iter().find(|network| {
            network.metadata.name.as_deref() == Some(name)
                && network.metadata.namespace.as_deref() == namespace
        })
    }

    /// Checks every resource as the API server and the operator would: names are DNS labels and
    /// unique per kind, each spec passes its `validate`, every `spec.network` names a network of
    /// these manifests (same namespace) and consenter ids are unique in a network.
    ///
    /// Messages read `Channel mychannel: spec.organizations[1]: Org3MSP is not an organisation
    /// of network first-network (it has Org1MSP, Org2MSP)`.
    pub fn validate(&self) -> Result<(), Vec<String>> {
        let mut problems = Vec::new();
        check_names(
            "Network",
            self.networks.iter().map(|r| &r.metadata),
            &mut problems,
        );
        check_names(
            "Channel",
            self.channels.iter().map(|r| &r.metadata),
            &mut problems,
        );
        check_names(
            "Orderer",
            self.orderers.iter().map(|r| &r.metadata),
            &mut problems,
        );
        check_names(
            "Peer",
            self.peers.iter().map(|r| &r.metadata),
            &mut problems,
        );

        for network in &self.networks {
            report(
                "Network",
                &network.metadata,
                network.spec.validate(),
                &mut problems,
            );
        }
        for channel in &self.channels {
            let result = self
                .referenced_network(&channel.metadata, &channel.spec.network)
                .and_then(|network| channel.spec.validate(&network.spec));
            report("Channel", &channel.metadata, result, &mut problems);
        }
        let mut consenters: HashMap<(Option<&str>, &str, u32), &str> = HashMap::new();
        for orderer in &self.orderers {
            let result = self
                .referenced_network(&orderer.metadata, &orderer.spec.network)
                .and_then(|network| orderer.spec.validate(&network.spec));
            report("Orderer", &orderer.metadata, result, &mut problems);
            let key = (
                orderer.metadata.namespace.as_deref(),
                orderer.spec.network.as_str(),
                orderer.spec.consenter_id,
            );
            let name = display_name(&orderer.metadata);
            if let Some(first) = consenters.insert(key, name) {
                problems.push(format!(
                    "Orderer {name}: spec.consenterId: {} is already the consenter id of \
                     orderer {first} in network {}",
                    orderer.spec.consenter_id, orderer.spec.network
                ));
            }
        }
        for peer in &self.peers {
            let result = self
                .referenced_network(&peer.metadata, &peer.spec.network)
                .and_then(|network| peer.spec.validate(&network.spec));
            report("Peer", &peer.metadata, result, &mut problems);
        }

        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }

    /// The network a resource's `spec.network` names, or the problem with the reference.
    fn referenced_network(&self, meta: &ObjectMeta, name: &str) -> Result<&Network, Vec<String>> {
        self.network(name, meta.namespace.as_deref())
            .ok_or_else(|| {
                let defined: Vec<&str> = self
                    .networks
                    .iter()
                    .filter(|network| network.metadata.namespace == meta.namespace)
                    .filter_map(|network| network.metadata.name.as_deref())
                    .collect();
                let defined = if defined.is_empty() {
                    "none".to_owned()
                } else {
                    defined.join(", ")
                };
                vec![format!(
                    "spec.network: network {name} is not defined in these manifests \
                 (networks defined: {defined})"
                )]
            })
    }

    fn add(&mut self, document: usize, value: Value) -> Result<(), ManifestError> {
        let kind = value.get("kind").and_then(Value::as_str).map(str::to_owned);
        let name = value
            .get("metadata")
            .and_then(|meta| meta.get("name"))
            .and_then(Value::as_str);
        let resource = match (&kind, name) {
            (Some(kind), Some(name)) => Some(format!("{kind} {name}")),
            (Some(kind), None) => Some(kind.clone()),
            (None, _) => None,
        };
        let fail = |message: String| ManifestError {
            document,
            resource: resource.clone(),
            message,
        };

        let Value::Mapping(fields) = &value else {
            return Err(fail(
                "expected a resource: a mapping with apiVersion, kind, metadata and spec".into(),
            ));
        };
        for key in fields.keys() {
            let key = key
                .as_str()
                .map_or_else(|| format!("{key:?}"), str::to_owned);
            if !TOP_LEVEL_FIELDS.contains(&key.as_str()) {
                return Err(fail(format!(
                    "unknown field `{key}`, expected one of `apiVersion`, `kind`, `metadata`, \
                     `spec`, `status`"
                )));
            }
        }
        match value.get("apiVersion").and_then(Value::as_str) {
            Some(API_VERSION) => {}
            Some(other) => {
                return Err(fail(format!(
                    "apiVersion: {other} is not a raftnet API version (expected {API_VERSION})"
                )))
            }
            None => return Err(fail(format!("apiVersion: required ({API_VERSION})"))),
        }
        match kind.as_deref() {
            Some("Network") => self.networks.push(parse(value).map_err(fail)?),
            Some("Channel") => self.channels.push(parse(value).map_err(fail)?),
            Some("Orderer") => self.orderers.push(parse(value).map_err(fail)?),
            Some("Peer") => self.peers.push(parse(value).map_err(fail)?),
            Some(other) => {
                return Err(fail(format!(
                "kind: {other} is not a raftnet kind (expected Network, Channel, Orderer or Peer)"
            )))
            }
            None => {
                return Err(fail(
                    "kind: required (Network, Channel, Orderer or Peer)".into(),
                ))
            }
        }
        Ok(())
    }
}

/// Deserializes a resource; the error starts with the path of the offending field, or for an
/// unknown field with the path of the object that has it (`spec.contracts[0]: unknown field ..`).
fn parse<T: DeserializeOwned>(value: Value) -> Result<T, String> {
    serde_path_to_error::deserialize(value).map_err(|err| {
        let mut segments: Vec<&Segment> = err.path().iter().collect();
        let message = err.inner().to_string();
        if message.starts_with("unknown field") {
            segments.pop();
        }
        let mut path = String::new();
        for segment in segments {
            if !path.is_empty() && !matches!(segment, Segment::Seq { .. }) {
                path.push('.');
            }
            path.push_str(&segment.to_string());
        }
        if path.is_empty() {
            message
        } else {
            format!("{path}: {message}")
        }
    })
}

/// Checks that names are there, DNS labels, and unique per kind and namespace.
fn check_names<'a>(
    kind: &str,
    metas: impl Iterator<Item = &'a ObjectMeta>,
    problems: &mut Vec<String>,
) {
    let mut seen = HashMap::new();
    for meta in metas {
        let Some(name) = meta.name.as_deref() else {
            problems.push(format!("{kind} without a name: metadata.name: required"));
            continue;
        };
        if let Err(message) = check_dns_label(name) {
            problems.push(format!("{kind} {name}: metadata.name: {message}"));
        }
        if seen.insert((meta.namespace.as_deref(), name), ()).is_some() {
            problems.push(format!(
                "{kind} {name}: metadata.name: defined more than once"
            ));
        }
    }
}

/// Adds the problems of one resource, each prefixed with `Kind name: `.
fn report(kind: &str, meta: &ObjectMeta, result: Result<(), Vec<String>>, out: &mut Vec<String>) {
    if let Err(problems) = result {
        let name = display_name(meta);
        out.extend(
            problems
                .into_iter()
                .map(|problem| format!("{kind} {name}: {problem}")),
        );
    }
}

fn display_name(meta: &ObjectMeta) -> &str {
    meta.name.as_deref().unwrap_or("<unnamed>")
}

#[cfg(test)]
mod tests {
    use super::*;

    const NETWORK: &str = "apiVersion: raftnet.dev/v1alpha1\nkind: Network\nmetadata:\n  name: n\n\
                           spec:\n  ordererOrganization: {orderers: 1}\n  \
                           organizations: [{mspId: Org1MSP}]\n";

    #[test]
    fn empty_documents_are_skipped_but_counted() {
        assert!(load_manifests("").unwrap().is_empty());
        assert!(load_manifests("# only a comment\n").unwrap().is_empty());
        let text = format!("# preamble\n---\n{NETWORK}---\n---\nkind: Peer\n");
        let err = load_manifests(&text).unwrap_err();
        assert_eq!((err.document, err.resource.as_deref()), (3, Some("Peer")));
        assert_eq!(err.message, "apiVersion: required (raftnet.dev/v1alpha1)");
    }

    #[test]
    fn defaults_are_applied_on_load() {
        let manifests = load_manifests(NETWORK).unwrap();
        let spec = &manifests.networks[0].spec;
        assert_eq!(spec.orderer_organization.msp_id, "OrdererMSP");
        assert_eq!(spec.organizations[0].peers, 2);
        assert_eq!(spec.raft, crate::RaftSpec::default());
        assert_eq!(manifests.validate(), Ok(()));
    }

    #[test]
    fn references_resolve_within_a_namespace() {
        let peer = "apiVersion: raftnet.dev/v1alpha1\nkind: Peer\nmetadata:\n  name: p\n  \
                    namespace: other\nspec:\n  network: n\n  organization: Org1MSP\n";
        let manifests = load_manifests(&format!("{NETWORK}---\n{peer}")).unwrap();
        assert!(manifests.network("n", None).is_some());
        assert!(manifests.network("n", Some("other")).is_none());
        assert_eq!(
            manifests.validate(),
            Err(vec![
                "Peer p: spec.network: network n is not defined in these manifests \
                 (networks defined: none)"
                    .to_owned()
            ])
        );
    }
}
