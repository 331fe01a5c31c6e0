//! The raftnet node daemon.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use raftnet_node::config::NodeConfig;

#[derive(Parser)]
#[command(
    name = "raftnet-node",
    version,
    about = "A raftnet node: an orderer or a peer"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run an orderer.
    Orderer {
        /// The node's YAML configuration.
        #[arg(long, short = 'c')]
        config: PathBuf,
    },
    /// Run a peer.
    Peer {
        /// The node's YAML configuration (with `identity` for its signing certificate).
        #[arg(long, short = 'c')]
        config: PathBuf,
    },
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_ansi(false)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Orderer { config } => run_node(config, Kind::Orderer),
        Command::Peer { config } => run_node(config, Kind::Peer),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("raftnet-node: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

enum Kind {
    Orderer,
    Peer,
}

fn run_node(config: PathBuf, kind: Kind) -> anyhow::Result<()> {
    let cfg = NodeConfig::load(&config)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = runtime.block_on(async {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let shutdown = async move {
            tokio::select! {
                _ = int.recv() => {},
                _ = term.recv() => {},
            }
            tracing::info!("shutting down");
        };
        match kind {
            Kind::Orderer => raftnet_node::orderer::run(cfg, shutdown).await,
            Kind::Peer => raftnet_node::peer::run(cfg, shutdown).await,
        }
    });
    // Tasks still blocked on dead connections must not keep the process alive.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    result
}
