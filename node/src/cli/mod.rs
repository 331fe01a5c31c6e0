//! The `raftnet` command line: drive and observe an ordering service and its peers, deploy
//! and call contracts, and benchmark. Flags follow Fabric's `peer` and `osnadmin` CLIs where
//! they have an equivalent.

pub mod bench;
pub mod chaincode;
pub mod commands;
pub mod get;
pub mod lab;
pub mod local;
pub mod output;

use std::path::PathBuf;

use anyhow::bail;
use clap::{Args, Parser, Subcommand, ValueEnum};
use raftnet_crds::network::defaults;

use crate::client::Client;
use crate::network::ClientProfile;

#[derive(Parser)]
#[command(
    name = "raftnet",
    version,
    about = "Raft-ordered ledger networks: client and tools"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Clone, Copy, Debug, Default, ValueEnum)]
pub enum Format {
    #[default]
    Table,
    Json,
}

/// Who is asking: a profile file, or (the Fabric way) a user directory holding one.
#[derive(Args, Clone)]
pub struct IdentityArg {
    /// Identity profile (YAML: mspId, cert, key, tlsCert, tlsKey, tlsRootCAs).
    #[arg(long, env = "RAFTNET_IDENTITY", value_name = "FILE")]
    pub identity: Option<PathBuf>,
    /// User directory with a profile.yaml, e.g. orgs/Org1MSP/users/admin (instead of --identity).
    #[arg(long, env = "CORE_PEER_MSPCONFIGPATH", value_name = "DIR")]
    pub msp_dir: Option<PathBuf>,
}

pub const NO_IDENTITY: &str = "no identity: pass --identity FILE (or RAFTNET_IDENTITY), or --msp-dir DIR (or CORE_PEER_MSPCONFIGPATH) with a profile.yaml";

impl IdentityArg {
    /// The profile to sign and connect with. Exactly one source is accepted: with both, the
    /// user could not tell which identity a command ran as.
    pub fn profile(&self) -> anyhow::Result<ClientProfile> {
        match (&self.identity, &self.msp_dir) {
            (Some(file), None) => ClientProfile::load(file),
            (None, Some(dir)) => ClientProfile::from_user_dir(dir),
            (None, None) => bail!(NO_IDENTITY),
            (Some(_), Some(_)) => bail!(
                "two identities: --identity (or RAFTNET_IDENTITY) and --msp-dir (or CORE_PEER_MSPCONFIGPATH) are both set; pass only one (unset the variable you do not mean)"
            ),
        }
    }

    pub fn client(&self) -> anyhow::Result<Client> {
        Client::from_profile(&self.profile()?)
    }
}

/// Whether a channel command talks to orderers (as `osnadmin channel`) or peers (as `peer
/// channel`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeKind {
    Orderer,
    Peer,
}

/// Fabric's environment variable for the peer a `peer` command talks to.
pub const PEER_ADDRESS_ENV: &str = "CORE_PEER_ADDRESS";

/// One orderer or one peer. Not a clap `env` default: the variable would count as given and
/// conflict with an explicit `--orderer`, so it is read only when neither flag is given.
#[derive(Args, Clone)]
#[group(id = "node", multiple = false)]
pub struct NodeArg {
    /// Orderer admin address.
    #[arg(long, value_name = "ADDR")]
    pub orderer: Option<String>,
    /// Peer address [default: $CORE_PEER_ADDRESS when --orderer is not given].
    #[arg(long, value_name = "ADDR")]
    pub peer: Option<String>,
}

impl NodeArg {
    pub fn resolve(&self) -> anyhow::Result<(NodeKind, String)> {
        let (kind, mut addrs) = resolve_nodes(
            self.orderer.iter().cloned().collect(),
            self.peer.iter().cloned().collect(),
        )?;
        Ok((kind, addrs.remove(0)))
    }
}

/// Orderers or peers, several of one kind.
#[derive(Args, Clone)]
#[group(id = "nodes", multiple = false)]
pub struct NodesArg {
    /// Orderer addresses (repeat, or comma-separated).
    #[arg(long, value_name = "ADDR", value_delimiter = ',')]
    pub orderer: Vec<String>,
    /// Peer addresses (repeat, or comma-separated) [default: $CORE_PEER_ADDRESS when --orderer is not given].
    #[arg(long, value_name = "ADDR", value_delimiter = ',')]
    pub peer: Vec<String>,
}

impl NodesArg {
    pub fn resolve(&self) -> anyhow::Result<(NodeKind, Vec<String>)> {
        resolve_nodes(self.orderer.clone(), self.peer.clone())
    }
}

/// Explicit flags first (clap's group already refused both), then `CORE_PEER_ADDRESS`.
fn resolve_nodes(
    orderers: Vec<String>,
    peers: Vec<String>,
) -> anyhow::Result<(NodeKind, Vec<String>)> {
    let orderers = non_empty(orderers);
    let peers = non_empty(peers);
    if !orderers.is_empty() {
        return Ok((NodeKind::Orderer, orderers));
    }
    if !peers.is_empty() {
        return Ok((NodeKind::Peer, peers));
    }
    let from_env = std::env::var(PEER_ADDRESS_ENV).map(|v| non_empty(vec![v]));
    match from_env {
        Ok(env) if !env.is_empty() => Ok((NodeKind::Peer, env)),
        _ => bail!(
            "no node: pass --orderer ADDR or --peer ADDR (or set {PEER_ADDRESS_ENV} for a peer)"
        ),
    }
}

/// Drops empty entries ("a,,b" or a trailing comma) and splits on commas left in values.
pub fn non_empty(addrs: Vec<String>) -> Vec<String> {
    addrs
        .iter()
        .flat_map(|a| a.split(','))
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(String::from)
        .collect()
}

#[derive(Subcommand)]
pub enum Command {
    /// Generate an ordering service: CAs, certificates, orderer configs and a genesis block.
    Bootstrap(BootstrapArgs),
    /// Channel participation and status.
    #[command(subcommand)]
    Channel(ChannelCommand),
    /// Deploy contracts and call them through peers.
    #[command(subcommand)]
    Chaincode(chaincode::ChaincodeCommand),
    /// Sign and broadcast transactions; waits until each is ordered.
    Submit(SubmitArgs),
    /// Fetch blocks from an orderer.
    Blocks(BlocksArgs),
    /// Benchmarks on local orderer processes.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// Run a network from manifests as local processes, and return when it is ready.
    Up(local::UpArgs),
    /// Stop the local network (SIGTERM); --purge also deletes its files.
    Down(local::DownArgs),
    /// Kill one node of the local network (SIGKILL, like a crashed container).
    Stop(local::NodeArgs),
    /// Start one node of the local network again, with its data.
    Start(local::NodeArgs),
    /// Print a node's log.
    Logs(local::LogsArgs),
    /// Show networks, orderers, peers or channels of the local network, read live from the
    /// nodes (the columns of `kubectl get`).
    Get(get::GetArgs),
    /// Play the seed lab on a fresh network: elections, loss of quorum and recovery.
    Lab(lab::LabArgs),
}

#[derive(Args)]
pub struct BootstrapArgs {
    /// Directory to write into (must not exist or be empty).
    #[arg(long)]
    pub dir: PathBuf,
    /// Number of orderers (Raft consenters).
    #[arg(long, default_value_t = 3)]
    pub orderers: usize,
    /// Name of the channel in the genesis block.
    #[arg(long, default_value = "mychannel")]
    pub channel: String,
    /// Application organisations (repeat for more).
    #[arg(long = "org", default_values_t = vec!["Org1MSP".to_string()])]
    pub orgs: Vec<String>,
    /// Peers of each application organisation (run with `raftnet-node peer --config`).
    #[arg(long, default_value_t = 0)]
    pub peers_per_org: usize,
    /// Key algorithm of every organisation's signing identities: ECDSA-P256 or Ed25519.
    #[arg(long, default_value = "ECDSA-P256")]
    pub key_algorithm: crate::identity::KeyAlgorithm,
    #[command(flatten)]
    pub options: ChannelOptions,
}

/// Raft and batch options, named as Fabric names them; raftnet's defaults are those of the
/// `Network` resource (`raftnet_crds::network::defaults`).
#[derive(Args, Clone)]
pub struct ChannelOptions {
    /// Raft tick (e.g. 100ms).
    #[arg(long, default_value = defaults::TICK_INTERVAL)]
    pub tick_interval: String,
    /// Ticks without a leader before a follower campaigns.
    #[arg(long, default_value_t = defaults::ELECTION_TICK)]
    pub election_tick: u32,
    /// Ticks between the leader's heartbeats.
    #[arg(long, default_value_t = defaults::HEARTBEAT_TICK)]
    pub heartbeat_tick: u32,
    /// Blocks the leader sends a follower before it acknowledges them.
    #[arg(long, default_value_t = defaults::MAX_INFLIGHT_BLOCKS)]
    pub max_inflight_blocks: u32,
    /// Bytes of blocks between snapshots (16Mi, 512Ki, or bytes).
    #[arg(long, default_value = defaults::SNAPSHOT_INTERVAL_SIZE)]
    pub snapshot_interval_size: String,
    /// Time after the first pending transaction at which a block is cut.
    #[arg(long, default_value = defaults::BATCH_TIMEOUT)]
    pub batch_timeout: String,
    /// Most transactions in a block.
    #[arg(long, default_value_t = defaults::MAX_MESSAGE_COUNT)]
    pub max_message_count: u32,
    /// Block size at which a block is cut (2Mi, or bytes).
    #[arg(long, default_value = defaults::PREFERRED_MAX_BYTES)]
    pub preferred_max_bytes: String,
    /// Largest block (10Mi, or bytes); a bigger transaction is refused.
    #[arg(long, default_value = defaults::ABSOLUTE_MAX_BYTES)]
    pub absolute_max_bytes: String,
}

#[derive(Subcommand)]
pub enum ChannelCommand {
    /// Join an orderer or a peer to the channel of a genesis block (needs its org's admin).
    Join {
        #[command(flatten)]
        node: NodeArg,
        /// The channel's genesis block (written by `raftnet bootstrap` to channels/).
        #[arg(long, short = 'b', visible_alias = "blockpath", value_name = "FILE")]
        genesis: PathBuf,
        #[command(flatten)]
        identity: IdentityArg,
    },
    /// Channels an orderer or a peer has joined.
    List {
        #[command(flatten)]
        node: NodeArg,
        #[command(flatten)]
        identity: IdentityArg,
        /// Output format.
        #[arg(short = 'o', long, value_enum, default_value_t)]
        output: Format,
    },
    /// A channel on each orderer (role, leader, term, height) or peer (height, commit hash,
    /// the orderer it pulls from).
    Status {
        #[command(flatten)]
        nodes: NodesArg,
        /// Channel name.
        #[arg(long, short = 'c', visible_alias = "channelID")]
        channel: String,
        #[command(flatten)]
        identity: IdentityArg,
        /// Output format.
        #[arg(short = 'o', long, value_enum, default_value_t)]
        output: Format,
        /// Keep watching and print a row on every change.
        #[arg(short = 'w', long)]
        watch: bool,
    },
    /// Hand the channel's Raft leadership to another orderer (a planned handoff, e.g. before
    /// a restart); returns once the new leader leads.
    TransferLeader {
        /// Any orderer of the channel: the leader is found through it.
        #[arg(long, env = "ORDERER_ADDRESS", value_name = "ADDR")]
        orderer: String,
        /// Channel name.
        #[arg(long, short = 'c', short_alias = 'C', visible_alias = "channelID")]
        channel: String,
        /// The orderer to hand over to (e.g. orderer3) [default: the most caught-up active one].
        #[arg(long, value_name = "ORDERER")]
        to: Option<String>,
        #[command(flatten)]
        identity: IdentityArg,
    },
}

/// One orderer, one channel, and who is asking.
#[derive(Args)]
pub struct Target {
    /// Orderer address.
    #[arg(long, env = "ORDERER_ADDRESS", value_name = "ADDR")]
    pub orderer: String,
    /// Channel name.
    #[arg(long, short = 'c', visible_alias = "channelID")]
    pub channel: String,
    #[command(flatten)]
    pub identity: IdentityArg,
}

#[derive(Args)]
pub struct SubmitArgs {
    #[command(flatten)]
    pub target: Target,
    /// Transaction data (default: `size` random-looking bytes).
    #[arg(long)]
    pub data: Option<String>,
    /// Number of transactions.
    #[arg(long, default_value_t = 1)]
    pub count: usize,
    /// Bytes of each generated transaction (without --data).
    #[arg(long, default_value_t = 256)]
    pub size: usize,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t)]
    pub output: Format,
}

#[derive(Args)]
pub struct BlocksArgs {
    #[command(flatten)]
    pub target: Target,
    /// First block.
    #[arg(long, default_value_t = 0)]
    pub start: u64,
    /// Last block (default: the current last block).
    #[arg(long)]
    pub stop: Option<u64>,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t)]
    pub output: Format,
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Bootstrap(a) => commands::bootstrap(a),
        Command::Channel(c) => commands::channel(c).await,
        Command::Chaincode(c) => chaincode::run(c).await,
        Command::Submit(a) => commands::submit(a).await,
        Command::Blocks(a) => commands::blocks(a).await,
        Command::Bench(b) => bench::run(b).await,
        Command::Up(a) => local::up(a).await,
        Command::Down(a) => local::down(a),
        Command::Stop(a) => local::stop(a),
        Command::Start(a) => local::start(a),
        Command::Logs(a) => local::logs(a).await,
        Command::Get(a) => get::run(a).await,
        Command::Lab(a) => lab::run(a).await,
    }
}
