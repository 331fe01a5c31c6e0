//! Real `raftnet-node` processes started from what the operator wrote: the node's ConfigMap
//! and Secret laid out as the pod would mount them, its data directory beside them. Stopped
//! by PID (SIGKILL, as a crash) and started again on the same data.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Child;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::{Api, Client};

use crate::apiserver::stop;

/// The `raftnet-node` binary of this build (`cargo nextest run --workspace` builds it).
fn node_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    // target/debug/deps/it-HASH → target/debug/raftnet-node
    let path = exe
        .parent()
        .and_then(Path::parent)
        .expect("target directory")
        .join("raftnet-node");
    assert!(
        path.is_file(),
        "{} is missing: build it first (cargo build -p raftnet-node), or run the workspace's tests",
        path.display()
    );
    path
}

pub struct Node {
    pub name: String,
    kind: &'static str,
    dir: PathBuf,
    child: Option<Child>,
}

impl Node {
    /// Lays out the node's files from its ConfigMap and Secret under `root/NAME`.
    pub async fn prepare(
        client: &Client,
        ns: &str,
        name: &str,
        kind: &'static str,
        root: &Path,
    ) -> Self {
        let dir = root.join(name);
        let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
        let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
        let config = config_maps
            .get(&format!("{name}-config"))
            .await
            .expect("the node's ConfigMap");
        let secret = secrets
            .get(&format!("{name}-crypto"))
            .await
            .expect("the node's Secret");
        write_all(&dir.join("config"), config.data.unwrap_or_default());
        let crypto: BTreeMap<String, String> = secret
            .data
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, String::from_utf8(v.0).expect("PEM")))
            .collect();
        write_all(&dir.join("crypto"), crypto);
        std::fs::create_dir_all(dir.join("data")).expect("data dir");
        Self {
            name: name.to_owned(),
            kind,
            dir,
            child: None,
        }
    }

    pub fn start(&mut self) {
        assert!(self.child.is_none(), "{} is already running", self.name);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("node.log"))
            .expect("log");
        let err = log.try_clone().expect("log");
        let mut command = std::process::Command::new(node_binary());
        command
            .arg(self.kind)
            .arg("--config")
            .arg(self.dir.join("config").join("node.yaml"))
            .stdout(log)
            .stderr(err);
        // SAFETY: prctl is async-signal-safe.
        unsafe {
            use std::os::unix::process::CommandExt;
            command.pre_exec(|| {
                extern "C" {
                    fn prctl(option: i32, arg2: u64, arg3: u64, arg4: u64, arg5: u64) -> i32;
                }
                prctl(1, 9, 0, 0, 0);
                Ok(())
            });
        }
        self.child = Some(command.spawn().expect("raftnet-node starts"));
    }

    /// SIGKILL, as a crash or `docker stop -t 0`.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            stop(&mut child);
        }
    }

    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.dir.join("node.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

fn write_all(dir: &Path, files: BTreeMap<String, String>) {
    std::fs::create_dir_all(dir).expect("dir");
    for (name, text) in files {
        let path = dir.join(&name);
        std::fs::write(&path, text).expect("file");
        if name.ends_with("-key.pem") {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        }
    }
}
