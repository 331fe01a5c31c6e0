//! The raftnet node daemon.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use raftnet_node::config::NodeConfig;

#[derive(Parser)]
#[command(name = "raftnet-node", version, about = "A raftnet ordering node")]
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
        Command::Orderer { config } => run_orderer(config),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("raftnet-node: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run_orderer(config: PathBuf) -> anyhow::Result<()> {
    let cfg = NodeConfig::load(&config)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(raftnet_node::orderer::run(cfg, async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {},
            _ = term.recv() => {},
        }
        tracing::info!("shutting down");
    }))
}
