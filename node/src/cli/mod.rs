//! The `raftnet` command line: drive and observe an ordering service, and benchmark it.

pub mod bench;
pub mod commands;
pub mod output;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

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

#[derive(Args, Clone)]
pub struct IdentityArg {
    /// Identity profile (YAML: mspId, cert, key, tlsCert, tlsKey, tlsRootCAs).
    #[arg(long, env = "RAFTNET_IDENTITY")]
    pub identity: PathBuf,
}

#[derive(Subcommand)]
pub enum Command {
    /// Generate an ordering service: CAs, certificates, orderer configs and a genesis block.
    Bootstrap(BootstrapArgs),
    /// Channel participation and status.
    #[command(subcommand)]
    Channel(ChannelCommand),
    /// Sign and broadcast transactions; waits until each is ordered.
    Submit(SubmitArgs),
    /// Fetch blocks from an orderer.
    Blocks(BlocksArgs),
    /// Benchmarks on local orderer processes.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
}

#[derive(Args)]
pub struct BootstrapArgs {
    /// Directory to write into (must not exist or be empty).
    #[arg(long)]
    pub dir: PathBuf,
    #[arg(long, default_value_t = 3)]
    pub orderers: usize,
    #[arg(long, default_value = "mychannel")]
    pub channel: String,
    /// Application organisations (repeat for more).
    #[arg(long = "org", default_values_t = vec!["Org1MSP".to_string()])]
    pub orgs: Vec<String>,
    /// Peers of each application organisation (run with `raftnet-node peer --config`).
    #[arg(long, default_value_t = 0)]
    pub peers_per_org: usize,
    #[command(flatten)]
    pub options: ChannelOptions,
}

/// Raft and batch options, named as Fabric names them.
#[derive(Args, Clone)]
pub struct ChannelOptions {
    #[arg(long, value_parser = humantime::parse_duration, default_value = "100ms")]
    pub tick_interval: Duration,
    #[arg(long, default_value_t = 10)]
    pub election_tick: u32,
    #[arg(long, default_value_t = 1)]
    pub heartbeat_tick: u32,
    #[arg(long, default_value_t = 5)]
    pub max_inflight_blocks: u32,
    /// Bytes of blocks between snapshots.
    #[arg(long, default_value_t = 16 << 20)]
    pub snapshot_interval_size: u64,
    #[arg(long, value_parser = humantime::parse_duration, default_value = "100ms")]
    pub batch_timeout: Duration,
    #[arg(long, default_value_t = 500)]
    pub max_message_count: u32,
    #[arg(long, default_value_t = 2 << 20)]
    pub preferred_max_bytes: u32,
    #[arg(long, default_value_t = 10 << 20)]
    pub absolute_max_bytes: u32,
}

#[derive(Subcommand)]
pub enum ChannelCommand {
    /// Join an orderer to the channel of a genesis block.
    Join {
        #[arg(long)]
        orderer: String,
        #[arg(long)]
        genesis: PathBuf,
        #[command(flatten)]
        identity: IdentityArg,
    },
    /// Channels an orderer has joined.
    List {
        #[arg(long)]
        orderer: String,
        #[command(flatten)]
        identity: IdentityArg,
        #[arg(short = 'o', long, value_enum, default_value_t)]
        output: Format,
    },
    /// Role, leader, term and height of a channel on each orderer.
    Status {
        /// Orderer addresses (repeat, or comma-separated).
        #[arg(long, required = true, value_delimiter = ',')]
        orderer: Vec<String>,
        #[arg(long)]
        channel: String,
        #[command(flatten)]
        identity: IdentityArg,
        #[arg(short = 'o', long, value_enum, default_value_t)]
        output: Format,
        /// Keep watching and print a row on every change.
        #[arg(short = 'w', long)]
        watch: bool,
    },
}

/// One orderer, one channel, and who is asking.
#[derive(Args)]
pub struct Target {
    #[arg(long)]
    pub orderer: String,
    #[arg(long)]
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
    #[arg(long, default_value_t = 1)]
    pub count: usize,
    #[arg(long, default_value_t = 256)]
    pub size: usize,
    #[arg(short = 'o', long, value_enum, default_value_t)]
    pub output: Format,
}

#[derive(Args)]
pub struct BlocksArgs {
    #[command(flatten)]
    pub target: Target,
    #[arg(long, default_value_t = 0)]
    pub start: u64,
    /// Last block (default: the current last block).
    #[arg(long)]
    pub stop: Option<u64>,
    #[arg(short = 'o', long, value_enum, default_value_t)]
    pub output: Format,
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Bootstrap(a) => commands::bootstrap(a),
        Command::Channel(c) => commands::channel(c).await,
        Command::Submit(a) => commands::submit(a).await,
        Command::Blocks(a) => commands::blocks(a).await,
        Command::Bench(b) => bench::run(b).await,
    }
}
