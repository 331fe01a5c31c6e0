//! `raftnet lab`: the seed lab, played on a fresh network (see `crate::local::lab`).

use std::path::PathBuf;

use clap::Args;

#[derive(Args)]
pub struct LabArgs {
    /// Leave the network running at the end (then `raftnet get orderers`, `raftnet down`).
    #[arg(long)]
    pub keep: bool,
    /// Where the lab's network lives (default: a new temporary directory).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

pub async fn run(a: LabArgs) -> anyhow::Result<()> {
    let passed = crate::local::lab::run(a.data_dir, a.keep, &mut std::io::stdout()).await?;
    if !passed {
        anyhow::bail!("the lab failed: see the FAIL lines above");
    }
    Ok(())
}
