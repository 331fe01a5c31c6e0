//! Generates an ordering service in a directory: an orderer organisation with N orderers, a
//! client organisation, node configs on free 127.0.0.1 ports, and a channel's genesis block.
//!
//! ```text
//! DIR/orgs/OrdererMSP/...          CAs, users/admin/profile.yaml
//! DIR/orgs/Org1MSP/...             CAs, users/client/profile.yaml
//! DIR/orderers/orderer1/config.yaml, tls-cert.pem, tls-key.pem, data/
//! DIR/channels/CHANNEL.block       the genesis block
//! ```

use std::path::{Path, PathBuf};

use anyhow::Context;
use prost::Message;

use super::crypto::{write_file, OrgMaterial};
use crate::config::{NodeConfig, TlsFiles};
use crate::identity::Role;
use crate::ledger::genesis_block;
use crate::proto::common::{
    BatchOptions, ChannelConfig, Consenter, Organization, Policies, RaftOptions,
};

pub const ORDERER_MSP: &str = "OrdererMSP";

#[derive(Clone, Debug)]
pub struct OrderingSpec {
    pub channel: String,
    pub orderers: usize,
    /// Application organisations whose members may write.
    pub orgs: Vec<String>,
    pub raft: RaftOptions,
    pub batch: BatchOptions,
}

/// raftnet's defaults: 100ms ticks, election 10, heartbeat 1, 5 blocks in flight, 16 MiB
/// snapshots; blocks of up to 500 transactions or 2 MiB, cut after 100ms.
pub fn default_raft() -> RaftOptions {
    RaftOptions {
        tick_interval_ms: 100,
        election_tick: 10,
        heartbeat_tick: 1,
        max_inflight_blocks: 5,
        snapshot_interval_size: 16 << 20,
    }
}

pub fn default_batch() -> BatchOptions {
    BatchOptions {
        batch_timeout_ms: 100,
        max_message_count: 500,
        preferred_max_bytes: 2 << 20,
        absolute_max_bytes: 10 << 20,
    }
}

impl Default for OrderingSpec {
    fn default() -> Self {
        Self {
            channel: "mychannel".into(),
            orderers: 3,
            orgs: vec!["Org1MSP".into()],
            raft: default_raft(),
            batch: default_batch(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct OrdererEntry {
    pub name: String,
    pub address: String,
    pub config: PathBuf,
}

/// What was generated, with paths.
#[derive(Clone, Debug)]
pub struct OrderingLayout {
    pub dir: PathBuf,
    pub channel: String,
    pub orderers: Vec<OrdererEntry>,
    pub genesis: PathBuf,
    /// Admin of the orderer organisation (for JoinChannel and status).
    pub admin: PathBuf,
    /// A client of the first application organisation.
    pub client: PathBuf,
}

/// Free TCP ports on 127.0.0.1 for listeners that start later. They are drawn at random
/// below the kernel's ephemeral range: a port the kernel hands out can be taken by any
/// outgoing connection before the node binds it.
pub fn free_ports(n: usize) -> anyhow::Result<Vec<u16>> {
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    // Where the ephemeral range starts low, fall back to a fixed range (clashes stay possible).
    let (low, high) = if ephemeral_low >= 20_000 {
        (10_000u16, ephemeral_low)
    } else {
        (20_000, 30_000)
    };
    let rng = ring::rand::SystemRandom::new();
    let mut ports = Vec::with_capacity(n);
    let mut held = Vec::with_capacity(n);
    for _ in 0..n * 200 {
        if ports.len() == n {
            break;
        }
        let mut b = [0u8; 2];
        ring::rand::SecureRandom::fill(&rng, &mut b)
            .map_err(|_| anyhow::anyhow!("no randomness"))?;
        let port = low + u16::from_be_bytes(b) % (high - low);
        if ports.contains(&port) {
            continue;
        }
        // Held until all are chosen, so that the same port is not picked twice.
        if let Ok(l) = std::net::TcpListener::bind(("127.0.0.1", port)) {
            held.push(l);
            ports.push(port);
        }
    }
    anyhow::ensure!(
        ports.len() == n,
        "could not find {n} free ports on 127.0.0.1"
    );
    Ok(ports)
}

pub fn generate(dir: &Path, spec: &OrderingSpec) -> anyhow::Result<OrderingLayout> {
    anyhow::ensure!(spec.orderers >= 1, "orderers: need at least one orderer");
    anyhow::ensure!(
        !spec.orgs.is_empty(),
        "orgs: need at least one application organisation"
    );
    let orgs_dir = dir.join("orgs");
    let orderer_org = OrgMaterial::generate(ORDERER_MSP, &orgs_dir.join(ORDERER_MSP))?;
    let app_orgs: Vec<OrgMaterial> = spec
        .orgs
        .iter()
        .map(|m| OrgMaterial::generate(m, &orgs_dir.join(m)))
        .collect::<Result<_, _>>()?;
    let mut tls_roots = vec![orderer_org.tls_ca_path()];
    tls_roots.extend(app_orgs.iter().map(|o| o.tls_ca_path()));

    let ports = free_ports(spec.orderers)?;
    let mut consenters = Vec::new();
    let mut orderers = Vec::new();
    for (i, port) in ports.iter().enumerate() {
        let name = format!("orderer{}", i + 1);
        let node_dir = dir.join("orderers").join(&name);
        let hosts = vec![
            "localhost".to_string(),
            "127.0.0.1".to_string(),
            name.clone(),
        ];
        let (cert, key) = orderer_org.node_tls(&name, Role::Orderer, &hosts, &node_dir)?;
        let address = format!("127.0.0.1:{port}");
        let cfg = NodeConfig {
            name: name.clone(),
            msp_id: ORDERER_MSP.into(),
            listen_address: address.clone(),
            data_dir: PathBuf::from("data"),
            tls: TlsFiles {
                cert: PathBuf::from("tls-cert.pem"),
                key: PathBuf::from("tls-key.pem"),
                root_cas: tls_roots.clone(),
                admin_root_ca: orderer_org.tls_ca_path(),
            },
        };
        let config = node_dir.join("config.yaml");
        write_file(&config, serde_yaml::to_string(&cfg)?.as_bytes(), false)?;
        consenters.push(Consenter {
            id: i as u64 + 1,
            name: name.clone(),
            host: "127.0.0.1".into(),
            port: u32::from(*port),
            msp_id: ORDERER_MSP.into(),
            tls_cert_pem: std::fs::read(&cert)?,
        });
        let _ = key;
        orderers.push(OrdererEntry {
            name,
            address,
            config,
        });
    }

    let mut organizations = vec![org_proto(&orderer_org)?];
    organizations.extend(
        app_orgs
            .iter()
            .map(org_proto)
            .collect::<Result<Vec<_>, _>>()?,
    );
    let members = |role: &str| {
        let leaves: Vec<String> = spec.orgs.iter().map(|m| format!("'{m}.{role}'")).collect();
        format!("OR({})", leaves.join(","))
    };
    let readers = {
        let mut all: Vec<String> = spec.orgs.iter().map(|m| format!("'{m}.member'")).collect();
        all.push(format!("'{ORDERER_MSP}.member'"));
        format!("OR({})", all.join(","))
    };
    let config = ChannelConfig {
        channel_id: spec.channel.clone(),
        organizations,
        consenters,
        raft: Some(spec.raft),
        batch: Some(spec.batch),
        policies: Some(Policies {
            writers: members("member"),
            readers,
            admins: format!("OR('{ORDERER_MSP}.admin')"),
        }),
    };
    crate::orderer::registrar::check_config(&config)?;
    let genesis = dir.join("channels").join(format!("{}.block", spec.channel));
    write_file(&genesis, &genesis_block(&config).encode_to_vec(), false)?;

    let admin = orderer_org.user("admin", Role::Admin, &tls_roots)?;
    let client = app_orgs[0].user("client", Role::Client, &tls_roots)?;
    Ok(OrderingLayout {
        dir: dir.to_path_buf(),
        channel: spec.channel.clone(),
        orderers,
        genesis,
        admin,
        client,
    })
}

fn org_proto(org: &OrgMaterial) -> anyhow::Result<Organization> {
    Ok(Organization {
        msp_id: org.msp_id.clone(),
        root_cert_pem: std::fs::read(org.ca_path()).context("org CA")?,
        tls_root_cert_pem: std::fs::read(org.tls_ca_path()).context("org TLS CA")?,
    })
}
