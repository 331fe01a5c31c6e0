//! The forms of names in manifests: MSP ids, DNS labels (resource names and references to them)
//! and contract names.
//!
//! Each pattern is written once, here, and used both in the CRD schema (`#[schemars(pattern(..))]`)
//! and by the checks that run without an API server.

use std::sync::LazyLock;

use regex::Regex;

/// An MSP id, as Fabric names organisations: `Org1MSP`, `OrdererMSP`.
pub const MSP_ID_PATTERN: &str = "^[A-Za-z][A-Za-z0-9.-]{0,62}$";

/// A DNS label (RFC 1123), the form of resource names: `first-network`, `orderer0`.
pub const DNS_LABEL_PATTERN: &str = "^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$";

/// A contract name on a channel: `mycc`, `asset_v2`.
pub const CONTRACT_NAME_PATTERN: &str = "^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$";

static MSP_ID: LazyLock<Regex> = LazyLock::new(|| compile(MSP_ID_PATTERN));
static DNS_LABEL: LazyLock<Regex> = LazyLock::new(|| compile(DNS_LABEL_PATTERN));
static CONTRACT_NAME: LazyLock<Regex> = LazyLock::new(|| compile(CONTRACT_NAME_PATTERN));

fn compile(pattern: &str) -> Regex {
    Regex::new(pattern).unwrap_or_else(|err| panic!("{pattern} is not a valid regex: {err}"))
}

/// Checks an MSP id; the error names the value and the expected form.
pub fn check_msp_id(value: &str) -> Result<(), String> {
    check(
        &MSP_ID,
        value,
        "is not an MSP id: expected a letter, then up to 62 letters, digits, '.' or '-' \
         (e.g. Org1MSP)",
    )
}

/// Checks a DNS label; the error names the value and the expected form.
pub fn check_dns_label(value: &str) -> Result<(), String> {
    check(
        &DNS_LABEL,
        value,
        "is not a DNS label: expected at most 63 lower-case letters, digits or '-', \
         starting and ending with a letter or digit (e.g. first-network)",
    )
}

/// Checks a contract name; the error names the value and the expected form.
pub fn check_contract_name(value: &str) -> Result<(), String> {
    check(
        &CONTRACT_NAME,
        value,
        "is not a contract name: expected a letter or digit, then up to 63 letters, digits, \
         '_', '.' or '-' (e.g. mycc)",
    )
}

/// The name of the `k`-th orderer of a network (from 1), as `raftnet up` names it: `orderer3`.
pub fn orderer_node(k: impl std::fmt::Display) -> String {
    format!("orderer{k}")
}

/// The name of the `i`-th peer of an organisation (from 0), as `raftnet up` names it:
/// `peer0.org1` for `Org1MSP`.
pub fn peer_node(i: impl std::fmt::Display, msp_id: &str) -> String {
    format!("peer{i}.{}", org_short_name(msp_id))
}

/// An organisation's short name: its MSP id in lower case without a trailing `msp`
/// (`Org1MSP` → `org1`).
pub fn org_short_name(msp_id: &str) -> String {
    let lower = msp_id.to_lowercase();
    match lower.strip_suffix("msp") {
        Some(short) if !short.is_empty() => short.to_owned(),
        _ => lower,
    }
}

/// A node's name as Kubernetes objects carry it (resource, StatefulSet, Service, Secret):
/// DNS labels allow no dots (`peer0.org1` → `peer0-org1`).
pub fn kube_name(node: &str) -> String {
    node.replace('.', "-")
}

fn check(regex: &Regex, value: &str, problem: &str) -> Result<(), String> {
    if regex.is_match(value) {
        Ok(())
    } else {
        Err(format!("{value:?} {problem}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn msp_ids() {
        for good in ["Org1MSP", "OrdererMSP", "a", "org-1.example"] {
            assert_eq!(check_msp_id(good), Ok(()), "{good}");
        }
        let too_long = format!("A{}", "b".repeat(63));
        for bad in ["", "1Org", "Org 1", "Org_1", "-Org", too_long.as_str()] {
            assert!(
                check_msp_id(bad).unwrap_err().contains("is not an MSP id"),
                "{bad}"
            );
        }
    }

    #[test]
    fn dns_labels() {
        for good in ["first-network", "a", "orderer0", "0"] {
            assert_eq!(check_dns_label(good), Ok(()), "{good}");
        }
        let too_long = "a".repeat(64);
        for bad in [
            "",
            "First",
            "net-",
            "-net",
            "my_net",
            "my.net",
            too_long.as_str(),
        ] {
            assert!(
                check_dns_label(bad)
                    .unwrap_err()
                    .contains("is not a DNS label"),
                "{bad}"
            );
        }
    }

    #[test]
    fn node_names() {
        assert_eq!(orderer_node(3), "orderer3");
        assert_eq!(peer_node(0, "Org1MSP"), "peer0.org1");
        assert_eq!(org_short_name("Acme"), "acme");
        assert_eq!(org_short_name("MSP"), "msp");
        assert_eq!(kube_name("peer0.org1"), "peer0-org1");
    }

    #[test]
    fn contract_names() {
        for good in ["mycc", "kv", "asset_v2", "My.Contract-1"] {
            assert_eq!(check_contract_name(good), Ok(()), "{good}");
        }
        for bad in ["", "_cc", "my cc", "cc/1"] {
            assert!(check_contract_name(bad).is_err(), "{bad}");
        }
    }
}
