//! Writes the CRD YAML of raftnet's resources: `network.yaml`, `channel.yaml`, `orderer.yaml` and
//! `peer.yaml`, into the directory given as first argument (default: the `crds/` crate itself,
//! where they are checked in).
//!
//! `cargo run -p raftnet-crds --bin crdgen [DIR]`

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let dir = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
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
    ExitCode::SUCCESS
}
