//! Writes the CRD YAML of raftnet's resources: `network.yaml`, `channel.yaml`, `orderer.yaml` and
//! `peer.yaml`. Without an argument, into the `crds/` crate itself and the Helm chart's
//! `charts/raftnet-operator/crds/`, where both copies are checked in (a test keeps them equal);
//! with one, into that directory only.
//!
//! `cargo run -p raftnet-crds --bin crdgen [DIR]`

use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Where the CRDs are checked in: this crate, and the Helm chart's `crds/`.
fn checked_in() -> Vec<PathBuf> {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let repo = crate_dir.parent().expect("the crate is in the repository");
    vec![
        crate_dir.to_owned(),
        repo.join("charts/raftnet-operator/crds"),
    ]
}

fn main() -> ExitCode {
    let dirs: Vec<PathBuf> = match std::env::args_os().nth(1) {
        Some(dir) => vec![PathBuf::from(dir)],
        None => checked_in(),
    };
    for dir in dirs {
        for (file, crd) in raftnet_crds::crd::all() {
            let path = dir.join(file);
            let written = raftnet_crds::crd::to_yaml(&crd)
                .map_err(|err| err.to_string())
                .and_then(|yaml| std::fs::write(&path, yaml).map_err(|err| err.to_string()));
            if let Err(err) = written {
                eprintln!("crdgen: cannot write {}: {err}", path.display());
                return ExitCode::FAILURE;
            }
            println!("{}", path.display());
        }
    }
    ExitCode::SUCCESS
}
