//! Generates a network in a directory: an orderer organisation with N orderers, application
//! organisations with their peers, admins and clients, node configs (on free 127.0.0.1 ports,
//! or on Kubernetes DNS names: see [`Addressing`]), and a channel's genesis block.
//!
//! ```text
//! DIR/orgs/OrdererMSP/...          CAs, users/admin/profile.yaml
//! DIR/orgs/Org1MSP/...             CAs, users/{admin,client}/profile.yaml
//! DIR/orderers/orderer1/config.yaml, tls-cert.pem, tls-key.pem, data/
//! DIR/peers/peer0.org1/config.yaml, tls-cert.pem, tls-key.pem, sign-cert.pem, sign-key.pem,
//!                                  data/
//! DIR/channels/CHANNEL.block       the genesis block
//! ```

use std::path::{Path, PathBuf};

use anyhow::Context;
use prost::Message;

use serde::{Deserialize, Serialize};

use super::addressing::{Addressing, NodeAddress, NodeKind};
use super::channel::{channel_config, OrgCas};
use super::crypto::{write_file, OrgMaterial};
use super::plan::{ChannelPlan, ContractPlan, NetworkPlan, OrgPlan};
use crate::config::{NodeConfig, SigningFiles, TlsFiles};
use crate::identity::{KeyAlgorithm, Role};
use crate::ledger::genesis_block;
use crate::proto::common::{BatchOptions, Consenter, RaftOptions};

pub const ORDERER_MSP: &str = "OrdererMSP";

#[derive(Clone, Debug)]
pub struct OrderingSpec {
    pub channel: String,
    pub orderers: usize,
    /// Application organisations whose members may write and whose admins administer the
    /// channel.
    pub orgs: Vec<String>,
    /// Peers of every application organisation: `peer0.org1`, `peer1.org1`, ...
    pub peers_per_org: usize,
    pub raft: RaftOptions,
    pub batch: BatchOptions,
    /// Of every organisation's signing identities.
    pub key_algorithm: KeyAlgorithm,
}

/// raftnet's Raft defaults (`raftnet_crds::network::defaults`): 100ms ticks, election 10,
/// heartbeat 1, 5 blocks in flight, 16 MiB snapshots.
pub fn default_raft() -> RaftOptions {
    super::manifest::raft_options(&raftnet_crds::RaftSpec::default()).expect("the defaults parse")
}

/// raftnet's block-cutting defaults: cut after 100ms, at 500 transactions or near 2 MiB; no
/// block above 10 MiB.
pub fn default_batch() -> BatchOptions {
    super::manifest::batch_options(&raftnet_crds::BatchSpec::default()).expect("the defaults parse")
}

impl Default for OrderingSpec {
    fn default() -> Self {
        Self {
            channel: "mychannel".into(),
            orderers: 3,
            orgs: vec!["Org1MSP".into()],
            peers_per_org: 0,
            raft: default_raft(),
            batch: default_batch(),
            key_algorithm: KeyAlgorithm::default(),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct OrdererEntry {
    pub name: String,
    pub address: String,
    pub config: PathBuf,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PeerEntry {
    pub name: String,
    pub msp_id: String,
    pub address: String,
    pub config: PathBuf,
}

/// A channel: its genesis block, members and the contracts to deploy on it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ChannelEntry {
    pub name: String,
    pub genesis: PathBuf,
    pub orgs: Vec<String>,
    /// Orderers (by name) that are its consenters.
    pub consenters: Vec<String>,
    pub contracts: Vec<ContractPlan>,
}

/// What was generated, with paths.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct OrderingLayout {
    /// The network's name.
    pub name: String,
    pub dir: PathBuf,
    /// The first channel (as `channels[0]`).
    pub channel: String,
    pub orderers: Vec<OrdererEntry>,
    /// Every application organisation's peers, organisation by organisation.
    pub peers: Vec<PeerEntry>,
    pub genesis: PathBuf,
    /// Admin of the orderer organisation (for JoinChannel and status on orderers).
    pub admin: PathBuf,
    /// A client of the first application organisation (the same as `org_clients[0]`).
    pub client: PathBuf,
    /// (MSP id, admin profile) of every application organisation, in `spec.orgs` order; a
    /// peer's admin API accepts only its own organisation's admin.
    pub org_admins: Vec<(String, PathBuf)>,
    /// (MSP id, client profile) of every application organisation, in `spec.orgs` order.
    pub org_clients: Vec<(String, PathBuf)>,
    pub channels: Vec<ChannelEntry>,
}

/// A network with generated names, as [`OrderingLayout`] is: the layout of a network.
pub type NetworkLayout = OrderingLayout;

impl OrderingSpec {
    /// The same network as a plan: one channel with every organisation.
    pub fn plan(&self) -> NetworkPlan {
        NetworkPlan {
            name: "raftnet".into(),
            orderer_msp: ORDERER_MSP.into(),
            orderers: self.orderers,
            orderer_key_algorithm: self.key_algorithm,
            orgs: self
                .orgs
                .iter()
                .map(|m| OrgPlan {
                    msp_id: m.clone(),
                    peers: self.peers_per_org,
                    key_algorithm: self.key_algorithm,
                })
                .collect(),
            raft: self.raft,
            batch: self.batch,
            certificate_validity: super::plan::default_certificate_validity(),
            channels: vec![ChannelPlan {
                name: self.channel.clone(),
                orgs: self.orgs.clone(),
                consenters: None,
                policies: None,
                contracts: Vec::new(),
            }],
        }
    }
}

/// Generates the network of `spec` (one channel) under `dir`.
pub fn generate(dir: &Path, spec: &OrderingSpec) -> anyhow::Result<OrderingLayout> {
    generate_network(dir, &spec.plan())
}

/// Generates a network under `dir` for this machine (127.0.0.1, free ports).
pub fn generate_network(dir: &Path, plan: &NetworkPlan) -> anyhow::Result<NetworkLayout> {
    generate_network_at(dir, plan, &Addressing::Local)
}

/// Generates a network under `dir`: every organisation's CAs and users, every node's
/// certificates and config (addressed as `addressing` says), and every channel's genesis
/// block.
pub fn generate_network_at(
    dir: &Path,
    plan: &NetworkPlan,
    addressing: &Addressing,
) -> anyhow::Result<NetworkLayout> {
    anyhow::ensure!(plan.orderers >= 1, "orderers: need at least one orderer");
    anyhow::ensure!(
        !plan.orgs.is_empty(),
        "orgs: need at least one application organisation"
    );
    anyhow::ensure!(
        !plan.channels.is_empty(),
        "channels: need at least one channel"
    );
    let dir = std::path::absolute(dir).with_context(|| format!("{}", dir.display()))?;
    let dir = dir.as_path();
    let orgs_dir = dir.join("orgs");
    let orderer_msp = plan.orderer_msp.as_str();
    let validity = plan.certificate_validity;
    let orderer_org = OrgMaterial::generate(
        orderer_msp,
        &orgs_dir.join(orderer_msp),
        validity,
        plan.orderer_key_algorithm,
    )?;
    let app_orgs: Vec<OrgMaterial> = plan
        .orgs
        .iter()
        .map(|o| {
            OrgMaterial::generate(
                &o.msp_id,
                &orgs_dir.join(&o.msp_id),
                validity,
                o.key_algorithm,
            )
        })
        .collect::<Result<_, _>>()?;
    let mut tls_roots = vec![orderer_org.tls_ca_path()];
    tls_roots.extend(app_orgs.iter().map(|o| o.tls_ca_path()));

    // (organisation, peer name) for every peer, organisation by organisation.
    let mut peer_names: Vec<(&OrgMaterial, String)> = Vec::new();
    for (org, p) in app_orgs.iter().zip(&plan.orgs) {
        for i in 0..p.peers {
            let name = raftnet_crds::names::peer_node(i, &org.msp_id);
            // Different MSP ids can shorten alike (Org1 and Org1MSP); their peers would share
            // a directory.
            anyhow::ensure!(
                peer_names.iter().all(|(_, n)| *n != name),
                "orgs: {} gives peer name {name}, which another organisation already uses",
                org.msp_id
            );
            peer_names.push((org, name));
        }
    }

    // Every node at once, so that no port is handed out twice.
    let mut nodes: Vec<(String, NodeKind)> = (1..=plan.orderers)
        .map(|k| (raftnet_crds::names::orderer_node(k), NodeKind::Orderer))
        .collect();
    nodes.extend(peer_names.iter().map(|(_, n)| (n.clone(), NodeKind::Peer)));
    let addresses = addressing.assign(&nodes)?;
    let (orderer_addrs, peer_addrs) = addresses.split_at(plan.orderers);

    let mut consenters = Vec::new();
    let mut orderers = Vec::new();
    for (i, addr) in orderer_addrs.iter().enumerate() {
        let name = raftnet_crds::names::orderer_node(i as u32 + 1);
        let node_dir = dir.join("orderers").join(&name);
        let (cert, _key) =
            orderer_org.node_tls(&name, Role::Orderer, &addr.tls_hosts, &node_dir)?;
        orderer_org.node_signing(&name, Role::Orderer, &node_dir)?;
        let mut cfg = node_config(&name, &orderer_org, addr, &tls_roots);
        cfg.identity = Some(signing_files());
        let config = write_node_config(&node_dir, &cfg)?;
        consenters.push(Consenter {
            id: i as u64 + 1,
            name: name.clone(),
            host: addr.host.clone(),
            port: u32::from(addr.port),
            msp_id: orderer_msp.into(),
            tls_cert_pem: std::fs::read(&cert)?,
        });
        orderers.push(OrdererEntry {
            name,
            address: addr.endpoint(),
            config,
        });
    }

    let mut peers = Vec::new();
    for ((org, name), addr) in peer_names.into_iter().zip(peer_addrs) {
        let node_dir = dir.join("peers").join(&name);
        org.node_tls(&name, Role::Peer, &addr.tls_hosts, &node_dir)?;
        org.node_signing(&name, Role::Peer, &node_dir)?;
        let address = addr.endpoint();
        let mut cfg = node_config(&name, org, addr, &tls_roots);
        cfg.identity = Some(signing_files());
        let config = write_node_config(&node_dir, &cfg)?;
        peers.push(PeerEntry {
            name,
            msp_id: org.msp_id.clone(),
            address,
            config,
        });
    }

    let mut cas = vec![org_cas(&orderer_org)];
    cas.extend(app_orgs.iter().map(org_cas));
    let mut channels = Vec::new();
    for ch in &plan.channels {
        let config = channel_config(plan, ch, &cas, &consenters)?;
        let chosen = config.consenters.clone();
        let genesis = dir.join("channels").join(format!("{}.block", ch.name));
        write_file(&genesis, &genesis_block(&config).encode_to_vec(), false)?;
        channels.push(ChannelEntry {
            name: ch.name.clone(),
            genesis,
            orgs: ch.orgs.clone(),
            consenters: chosen.into_iter().map(|c| c.name).collect(),
            contracts: ch.contracts.clone(),
        });
    }

    let admin = orderer_org.user("admin", Role::Admin, &tls_roots)?;
    let mut org_admins = Vec::new();
    let mut org_clients = Vec::new();
    for org in &app_orgs {
        let admin = org.user("admin", Role::Admin, &tls_roots)?;
        org_admins.push((org.msp_id.clone(), admin));
        let client = org.user("client", Role::Client, &tls_roots)?;
        org_clients.push((org.msp_id.clone(), client));
    }
    let client = org_clients[0].1.clone();
    Ok(OrderingLayout {
        name: plan.name.clone(),
        dir: dir.to_path_buf(),
        channel: channels[0].name.clone(),
        orderers,
        peers,
        genesis: channels[0].genesis.clone(),
        admin,
        client,
        org_admins,
        org_clients,
        channels,
    })
}

/// A node of `org` listening where `addr` says, with paths relative to its directory (as
/// `node_tls` and `node_signing` write them) so that the directory can be moved.
fn node_config(
    name: &str,
    org: &OrgMaterial,
    addr: &NodeAddress,
    tls_roots: &[PathBuf],
) -> NodeConfig {
    NodeConfig {
        name: name.to_string(),
        msp_id: org.msp_id.clone(),
        listen_address: addr.listen.clone(),
        operations_address: Some(addr.operations.clone()),
        data_dir: PathBuf::from("data"),
        tls: TlsFiles {
            cert: PathBuf::from("tls-cert.pem"),
            key: PathBuf::from("tls-key.pem"),
            root_cas: tls_roots.to_vec(),
            admin_root_ca: org.tls_ca_path(),
        },
        identity: None,
        limits: Default::default(),
    }
}

/// The signing certificate and key `node_signing` writes, relative to the node's directory.
fn signing_files() -> SigningFiles {
    SigningFiles {
        cert: PathBuf::from("sign-cert.pem"),
        key: PathBuf::from("sign-key.pem"),
    }
}

fn write_node_config(node_dir: &Path, cfg: &NodeConfig) -> anyhow::Result<PathBuf> {
    let config = node_dir.join("config.yaml");
    write_file(&config, serde_norway::to_string(cfg)?.as_bytes(), false)?;
    Ok(config)
}

fn org_cas(org: &OrgMaterial) -> OrgCas {
    OrgCas {
        msp_id: org.msp_id.clone(),
        ca_cert_pem: org.ca.cert_pem().as_bytes().to_vec(),
        tls_ca_cert_pem: org.tls_ca.cert_pem().as_bytes().to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::identity::{MspSet, Policy};
    use crate::ledger::channel_config;
    use crate::network::ClientProfile;
    use crate::proto::common::{Block, ChannelConfig, SerializedIdentity};

    #[test]
    fn keys_are_private_and_certificates_readable() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        two_orgs(dir.path());
        let mut keys = 0;
        let mut stack = vec![dir.path().to_path_buf()];
        while let Some(d) = stack.pop() {
            for entry in std::fs::read_dir(&d).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                    continue;
                }
                let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
                let name = path.file_name().unwrap().to_string_lossy().to_string();
                if name.ends_with("-key.pem") {
                    keys += 1;
                    assert_eq!(mode, 0o600, "{}", path.display());
                } else if name.ends_with("-cert.pem") {
                    assert_eq!(mode, 0o644, "{}", path.display());
                }
            }
        }
        assert!(keys > 20, "{keys} keys");
    }

    fn two_orgs(dir: &Path) -> OrderingLayout {
        generate(
            dir,
            &OrderingSpec {
                orderers: 3,
                orgs: vec!["Org1MSP".into(), "Org2MSP".into()],
                peers_per_org: 2,
                ..Default::default()
            },
        )
        .unwrap()
    }

    fn genesis_config(layout: &OrderingLayout) -> ChannelConfig {
        let block = Block::decode(&std::fs::read(&layout.genesis).unwrap()[..]).unwrap();
        channel_config(&block).unwrap()
    }

    #[test]
    fn peers_get_configs_and_distinct_ports() {
        let dir = tempfile::tempdir().unwrap();
        let layout = two_orgs(dir.path());
        let names: Vec<&str> = layout.peers.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            ["peer0.org1", "peer1.org1", "peer0.org2", "peer1.org2"]
        );

        let mut addresses = BTreeSet::new();
        for o in &layout.orderers {
            let cfg = NodeConfig::load(&o.config).unwrap();
            let id = cfg.identity.expect("an orderer signs its blocks");
            assert!(id.cert.is_file() && id.key.is_file(), "{id:?}");
            addresses.insert(cfg.listen_address);
        }
        for p in &layout.peers {
            let cfg = NodeConfig::load(&p.config).unwrap();
            assert_eq!(cfg.name, p.name);
            assert_eq!(cfg.msp_id, p.msp_id);
            assert_eq!(cfg.listen_address, p.address);
            assert_eq!(
                cfg.tls.root_cas.len(),
                3,
                "every org's TLS CA, OrdererMSP's too"
            );
            assert_eq!(
                cfg.tls.admin_root_ca,
                dir.path()
                    .join("orgs")
                    .join(&p.msp_id)
                    .join("tlsca-cert.pem")
            );
            let id = cfg.identity.expect("a peer has a signing identity");
            assert!(id.cert.is_file() && id.key.is_file(), "{id:?}");
            assert!(cfg.tls.cert.is_file() && cfg.tls.key.is_file());
            addresses.insert(cfg.listen_address);
        }
        assert_eq!(addresses.len(), 7, "a port is used twice: {addresses:?}");
    }

    #[test]
    fn peer_signing_cert_is_a_peer_of_its_org() {
        let dir = tempfile::tempdir().unwrap();
        let layout = two_orgs(dir.path());
        let config = genesis_config(&layout);
        let msps = MspSet::new(&config.organizations).unwrap();
        for p in &layout.peers {
            let cfg = NodeConfig::load(&p.config).unwrap();
            let cert_pem = std::fs::read(cfg.identity.unwrap().cert).unwrap();
            let id = msps
                .validate(&SerializedIdentity {
                    msp_id: p.msp_id.clone(),
                    cert_pem,
                })
                .unwrap();
            assert_eq!(id.role, Some(Role::Peer));
            assert_eq!(id.common_name, p.name);
        }
    }

    #[test]
    fn application_orgs_have_admins_and_clients_and_administer_the_channel() {
        let dir = tempfile::tempdir().unwrap();
        let layout = two_orgs(dir.path());
        let orgs = ["Org1MSP", "Org2MSP"];
        for (users, role) in [
            (&layout.org_admins, "admin"),
            (&layout.org_clients, "client"),
        ] {
            let msp_ids: Vec<&str> = users.iter().map(|(m, _)| m.as_str()).collect();
            assert_eq!(msp_ids, orgs);
            for (msp_id, path) in users {
                assert_eq!(&ClientProfile::load(path).unwrap().msp_id, msp_id);
                assert!(path.ends_with(format!("{msp_id}/users/{role}/profile.yaml")));
            }
        }
        assert_eq!(layout.client, layout.org_clients[0].1);
        assert_eq!(
            ClientProfile::load(&layout.admin).unwrap().msp_id,
            ORDERER_MSP
        );

        let admins: Policy = genesis_config(&layout)
            .policies
            .unwrap()
            .admins
            .parse()
            .unwrap();
        assert_eq!(
            admins.msp_ids(),
            orgs.iter().map(|m| m.to_string()).collect::<BTreeSet<_>>()
        );
    }

    /// The DNS names a certificate is valid for.
    fn san_dns_names(pem_path: &Path) -> Vec<String> {
        let pem = std::fs::read(pem_path).unwrap();
        let der = crate::tls::pem_to_der(&pem).unwrap();
        let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
        let san = cert.subject_alternative_name().unwrap().unwrap();
        san.value
            .general_names
            .iter()
            .filter_map(|n| match n {
                x509_parser::extensions::GeneralName::DNSName(d) => Some(d.to_string()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn cluster_dns_network_names_pods_in_endpoints_configs_and_certificates() {
        let dir = tempfile::tempdir().unwrap();
        let spec = OrderingSpec {
            orderers: 3,
            orgs: vec!["Org1MSP".into()],
            peers_per_org: 1,
            ..Default::default()
        };
        let layout =
            generate_network_at(dir.path(), &spec.plan(), &Addressing::cluster("ledger")).unwrap();
        let config = genesis_config(&layout);
        assert_eq!(config.consenters.len(), 3);
        for (c, o) in config.consenters.iter().zip(&layout.orderers) {
            let fqdn = format!("{0}-0.{0}.ledger.svc.cluster.local", o.name);
            assert_eq!((c.host.as_str(), c.port), (fqdn.as_str(), 7050));
            assert_eq!(o.address, format!("{fqdn}:7050"));
            let cfg = NodeConfig::load(&o.config).unwrap();
            assert_eq!(cfg.listen_address, "0.0.0.0:7050");
            assert_eq!(cfg.operations_address.as_deref(), Some("0.0.0.0:9443"));
            let sans = san_dns_names(&cfg.tls.cert);
            for name in [
                fqdn.clone(),
                format!("{0}-0.{0}", o.name),
                format!("{0}-0.{0}.ledger", o.name),
                format!("{}.ledger.svc", o.name),
                o.name.clone(),
            ] {
                assert!(sans.contains(&name), "{} lacks {name}: {sans:?}", o.name);
            }
            assert!(!sans.contains(&"localhost".to_string()), "{sans:?}");
            // The certificate in the genesis block is the one the orderer serves with.
            assert_eq!(c.tls_cert_pem, std::fs::read(&cfg.tls.cert).unwrap());
        }
        let peer = &layout.peers[0];
        assert_eq!(
            peer.address,
            "peer0-org1-0.peer0-org1.ledger.svc.cluster.local:7051"
        );
        let cfg = NodeConfig::load(&peer.config).unwrap();
        assert_eq!(cfg.listen_address, "0.0.0.0:7051");
        let sans = san_dns_names(&cfg.tls.cert);
        assert!(sans.contains(&"peer0-org1-0.peer0-org1.ledger.svc.cluster.local".to_string()));
        assert!(sans.contains(&"peer0.org1".to_string()), "{sans:?}");
    }

    #[test]
    fn local_network_listens_on_loopback_with_an_operations_port() {
        let dir = tempfile::tempdir().unwrap();
        let layout = two_orgs(dir.path());
        for o in &layout.orderers {
            let cfg = NodeConfig::load(&o.config).unwrap();
            assert!(cfg.listen_address.starts_with("127.0.0.1:"));
            let ops = cfg.operations_address.expect("an operations address");
            assert!(ops.starts_with("127.0.0.1:") && ops != cfg.listen_address);
            assert!(san_dns_names(&cfg.tls.cert).contains(&"localhost".to_string()));
        }
    }

    #[test]
    fn certificates_are_valid_as_long_as_the_plan_says() {
        let dir = tempfile::tempdir().unwrap();
        let mut plan = OrderingSpec::default().plan();
        assert_eq!(
            plan.certificate_validity.as_secs(),
            365 * 86_400,
            "one year by default"
        );
        plan.certificate_validity = std::time::Duration::from_secs(48 * 3600);
        let layout = generate_network(dir.path(), &plan).unwrap();
        let cfg = NodeConfig::load(&layout.orderers[0].config).unwrap();
        for cert in [cfg.tls.cert, cfg.identity.unwrap().cert] {
            let pem = std::fs::read(&cert).unwrap();
            let der = crate::tls::pem_to_der(&pem).unwrap();
            let (_, c) = x509_parser::parse_x509_certificate(&der).unwrap();
            let v = c.validity();
            let secs = v.not_after.timestamp() - v.not_before.timestamp();
            // 48 hours from a minute ago.
            assert_eq!(secs, 48 * 3600 + 60, "{}", cert.display());
        }
    }

    #[test]
    fn policies_that_would_stall_the_channel_are_refused_naming_the_field() {
        let with = |readers: &str, block_validation: &str| {
            let mut plan = OrderingSpec::default().plan();
            plan.channels[0].policies = Some(crate::proto::common::Policies {
                writers: "OR('Org1MSP.member')".into(),
                readers: readers.into(),
                admins: "OR('Org1MSP.admin')".into(),
                block_validation: block_validation.into(),
            });
            let dir = tempfile::tempdir().unwrap();
            generate_network(dir.path(), &plan).map(|_| ())
        };
        assert!(with("OR('Org1MSP.member','OrdererMSP.member')", "").is_ok());
        let err = format!("{:#}", with("OR('Org1MSP.member')", "").unwrap_err());
        assert!(
            err.contains("policies.readers") && err.contains("orderers of OrdererMSP"),
            "{err}"
        );
        let err = format!(
            "{:#}",
            with("OR('Org1MSP.admin','OrdererMSP.member')", "").unwrap_err()
        );
        assert!(err.contains("peers of Org1MSP"), "{err}");
        let two = "OutOf(2,'OrdererMSP.orderer','OrdererMSP.orderer')";
        let err = format!(
            "{:#}",
            with("OR('Org1MSP.member','OrdererMSP.member')", two).unwrap_err()
        );
        assert!(err.contains("policies.blockValidation"), "{err}");
    }
}
