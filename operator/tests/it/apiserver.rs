//! A real Kubernetes API server for the tests: Debian's etcd and a kube-apiserver built from
//! Debian's kubernetes source package (`e2e/cluster/kube-binaries.sh` builds and caches it),
//! on 127.0.0.1 ports of their own, in a temporary directory. No kubelet: the tests start the
//! nodes themselves. Both processes die with the test process (PR_SET_PDEATHSIG) and are
//! killed by PID when the harness is dropped.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

const KUBE_VERSION: &str = "v1.20.2";

/// Where `kube-binaries.sh` caches the Kubernetes binaries.
fn kube_bin_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("RAFTNET_KUBE_BIN") {
        return PathBuf::from(dir);
    }
    let cache = std::env::var("RAFTNET_CACHE").unwrap_or_else(|_| "/var/cache/raftnet".into());
    Path::new(&cache)
        .join("kubernetes")
        .join(KUBE_VERSION)
        .join("bin")
}

fn free_port() -> u16 {
    raftnet_node::network::ports::free_ports(1).expect("a free port")[0]
}

/// Starts `program` so that it dies with the test process, logging to `log`.
fn spawn(program: &Path, args: &[String], log: &Path) -> Child {
    let out = std::fs::File::create(log).expect("log file");
    let err = out.try_clone().expect("log file");
    let mut command = Command::new(program);
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
    // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        command.pre_exec(|| {
            libc_prctl_pdeathsig();
            Ok(())
        });
    }
    command
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()))
}

fn libc_prctl_pdeathsig() {
    // PR_SET_PDEATHSIG = 1, SIGKILL = 9: the child dies when the test process does.
    extern "C" {
        fn prctl(option: i32, arg2: u64, arg3: u64, arg4: u64, arg5: u64) -> i32;
    }
    // SAFETY: a plain syscall wrapper with integer arguments.
    unsafe {
        prctl(1, 9, 0, 0, 0);
    }
}

/// Stops a child by its PID: SIGKILL and reap.
pub fn stop(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

pub struct ApiServer {
    pub dir: tempfile::TempDir,
    etcd: Child,
    apiserver: Child,
    pub kubeconfig: PathBuf,
}

impl ApiServer {
    /// Starts etcd and kube-apiserver and waits until the API answers (at most 60 s).
    pub async fn start() -> (Self, Client) {
        let bin = kube_bin_dir();
        let apiserver_bin = bin.join("kube-apiserver");
        assert!(
            apiserver_bin.is_file(),
            "{} is missing: run e2e/cluster/kube-binaries.sh once (it builds Kubernetes {KUBE_VERSION} from Debian's source package), or set RAFTNET_KUBE_BIN",
            apiserver_bin.display()
        );
        let etcd_bin = PathBuf::from("/usr/bin/etcd");
        assert!(
            etcd_bin.is_file(),
            "/usr/bin/etcd is missing: apt-get install etcd-server"
        );
        let dir = tempfile::tempdir().expect("temp dir");
        let d = dir.path();
        let (client_port, peer_port, api_port) = (free_port(), free_port(), free_port());

        let etcd = spawn(
            &etcd_bin,
            &[
                "--name=test".into(),
                format!("--data-dir={}", d.join("etcd").display()),
                format!("--listen-client-urls=http://127.0.0.1:{client_port}"),
                format!("--advertise-client-urls=http://127.0.0.1:{client_port}"),
                format!("--listen-peer-urls=http://127.0.0.1:{peer_port}"),
                format!("--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}"),
                format!("--initial-cluster=test=http://127.0.0.1:{peer_port}"),
            ],
            &d.join("etcd.log"),
        );

        let key = rcgen::KeyPair::generate().expect("service account key");
        std::fs::write(d.join("sa-key.pem"), key.serialize_pem()).expect("sa key");
        std::fs::write(d.join("sa.pem"), key.public_key_pem()).expect("sa public key");
        let token = "raftnet-test-token";
        std::fs::write(
            d.join("tokens.csv"),
            format!("{token},admin,admin-uid,\"system:masters\"\n"),
        )
        .expect("tokens");
        let apiserver = spawn(
            &apiserver_bin,
            &[
                format!("--etcd-servers=http://127.0.0.1:{client_port}"),
                "--bind-address=127.0.0.1".into(),
                "--advertise-address=127.0.0.1".into(),
                format!("--secure-port={api_port}"),
                format!("--cert-dir={}", d.join("certs").display()),
                format!("--token-auth-file={}", d.join("tokens.csv").display()),
                "--authorization-mode=RBAC".into(),
                format!("--service-account-key-file={}", d.join("sa.pem").display()),
                format!(
                    "--service-account-signing-key-file={}",
                    d.join("sa-key.pem").display()
                ),
                "--service-account-issuer=https://kubernetes.default.svc".into(),
                "--service-cluster-ip-range=10.96.0.0/16".into(),
                "--disable-admission-plugins=ServiceAccount".into(),
                "--logtostderr=true".into(),
                "--v=0".into(),
            ],
            &d.join("kube-apiserver.log"),
        );
        let kubeconfig = d.join("kubeconfig");
        std::fs::write(
            &kubeconfig,
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: https://127.0.0.1:{api_port}\n    insecure-skip-tls-verify: true\nusers:\n- name: admin\n  user:\n    token: {token}\ncontexts:\n- name: test\n  context:\n    cluster: test\n    user: admin\n    namespace: default\ncurrent-context: test\n"
            ),
        )
        .expect("kubeconfig");
        let mut server = Self {
            dir,
            etcd,
            apiserver,
            kubeconfig,
        };
        let client = server.client().await;
        let started = Instant::now();
        loop {
            if client.apiserver_version().await.is_ok() {
                // The default namespace and RBAC roles are made by the server's own start-up
                // hooks; wait for the namespace, which the tests use.
                let namespaces: kube::Api<k8s_openapi::api::core::v1::Namespace> =
                    kube::Api::all(client.clone());
                if namespaces.get_opt("default").await.ok().flatten().is_some() {
                    break;
                }
            }
            if let Ok(Some(status)) = server.apiserver.try_wait() {
                panic!("kube-apiserver exited ({status}):\n{}", server.logs());
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "kube-apiserver did not answer within 60 s:\n{}",
                server.logs()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        (server, client)
    }

    /// A new client of the server.
    pub async fn client(&self) -> Client {
        let kubeconfig = Kubeconfig::read_from(&self.kubeconfig).expect("kubeconfig");
        let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .expect("client config");
        Client::try_from(config).expect("client")
    }

    /// The last lines of etcd's and kube-apiserver's logs.
    pub fn logs(&self) -> String {
        let tail = |name: &str| {
            let text = std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(30)..].join("\n")
        };
        format!(
            "--- kube-apiserver ---\n{}\n--- etcd ---\n{}",
            tail("kube-apiserver.log"),
            tail("etcd.log")
        )
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        // The API server before its storage.
        stop(&mut self.apiserver);
        stop(&mut self.etcd);
    }
}
