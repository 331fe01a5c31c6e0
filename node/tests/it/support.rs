//! A generated ordering service started as local processes.

use std::path::Path;
use std::time::{Duration, Instant};

use raftnet_node::client::Client;
use raftnet_node::identity::{CertUsage, CertificateAuthority, Role, SigningIdentity};
use raftnet_node::local::LocalCluster;
use raftnet_node::network::ordering::{generate_network, OrderingSpec};
use raftnet_node::network::plan::NetworkPlan;
use raftnet_node::proto::common::{Block, Status};

pub const TIMEOUT: Duration = Duration::from_secs(20);

pub struct Net {
    pub cluster: LocalCluster,
    pub admin: Client,
    pub client: Client,
    pub _dir: tempfile::TempDir,
}

pub async fn start(spec: OrderingSpec) -> Net {
    start_plan(spec.plan()).await
}

/// Generates the network of `plan` (its first channel is the one the helpers use), starts
/// its orderers and joins them.
pub async fn start_plan(plan: NetworkPlan) -> Net {
    let dir = tempfile::tempdir().unwrap();
    let layout = generate_network(dir.path(), &plan).unwrap();
    let admin = Client::load(&layout.admin).unwrap();
    let client = Client::load(&layout.client).unwrap();
    let mut cluster = LocalCluster::new(layout, Path::new(env!("CARGO_BIN_EXE_raftnet-node")));
    if let Err(e) = cluster.bootstrap(&admin, TIMEOUT).await {
        dump_logs(&cluster);
        panic!("bootstrap failed: {e:#}");
    }
    Net {
        cluster,
        admin,
        client,
        _dir: dir,
    }
}

pub fn dump_logs(cluster: &LocalCluster) {
    for n in &cluster.nodes {
        let log = std::fs::read_to_string(&n.log).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(40).collect();
        eprintln!(
            "--- {} ---\n{}",
            n.name,
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
}

impl Drop for Net {
    /// A failing test shows what the orderers logged.
    fn drop(&mut self) {
        if std::thread::panicking() {
            dump_logs(&self.cluster);
        }
    }
}

impl Net {
    pub fn channel(&self) -> String {
        self.cluster.layout.channel.clone()
    }

    /// The index (in `cluster.nodes`) of the orderer all running orderers agree leads.
    pub async fn leader(&self) -> usize {
        let id = self
            .cluster
            .wait_leader(&self.admin, &[], TIMEOUT)
            .await
            .unwrap();
        self.cluster.index_of(id)
    }

    pub fn addr(&self, i: usize) -> String {
        self.cluster.nodes[i].address.clone()
    }

    /// Submits `n` transactions through orderer `i`, retrying those answered UNAVAILABLE for
    /// up to `TIMEOUT`; returns the acknowledged tx ids.
    pub async fn submit(&self, i: usize, n: usize, size: usize) -> Vec<String> {
        let started = Instant::now();
        let mut acked = Vec::new();
        let mut todo: Vec<_> = (0..n)
            .map(|_| {
                self.client
                    .envelope(&self.channel(), vec![7u8; size])
                    .unwrap()
            })
            .collect();
        while !todo.is_empty() {
            assert!(
                started.elapsed() < TIMEOUT,
                "transactions not ordered within {TIMEOUT:?}"
            );
            let envs = todo.iter().map(|(e, _)| e.clone()).collect();
            let resps = match self.client.broadcast(&self.addr(i), envs).await {
                Ok(r) => r,
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let mut retry = Vec::new();
            for ((env, id), r) in todo.into_iter().zip(resps) {
                if r.status == Status::Success as i32 {
                    assert_eq!(r.tx_id, id);
                    acked.push(id);
                } else {
                    assert_eq!(
                        r.status,
                        Status::ServiceUnavailable as i32,
                        "unexpected answer: {}",
                        r.info
                    );
                    retry.push((env, id));
                }
            }
            todo = retry;
            if !todo.is_empty() {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        acked
    }

    pub async fn blocks(&self, i: usize) -> Vec<Block> {
        self.client
            .deliver(&self.addr(i), &self.channel(), 0, None, true)
            .await
            .unwrap()
    }

    /// Waits until orderer `i` has at least `height` blocks.
    pub async fn wait_height(&self, i: usize, height: u64) {
        let started = Instant::now();
        loop {
            let h = self
                .admin
                .status(&self.addr(i), &self.channel())
                .await
                .map(|s| s.height)
                .unwrap_or(0);
            if h >= height {
                return;
            }
            if started.elapsed() > TIMEOUT {
                panic!("orderer {i} stuck at height {h}, wanted {height}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The tx ids in a list of blocks (after the genesis block), in ledger order.
pub fn tx_ids(blocks: &[Block]) -> Vec<String> {
    blocks
        .iter()
        .skip(1)
        .flat_map(raftnet_node::ledger::tx_ids)
        .collect()
}

/// GET `path` from a node's operations endpoint: the status code and the body.
pub fn http_get(addr: &str, path: &str) -> (u16, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(5)))
        .build()
        .into();
    let mut resp = agent
        .get(&format!("http://{addr}{path}"))
        .call()
        .unwrap_or_else(|e| panic!("GET {path} from {addr}: {e}"));
    let code = resp.status().as_u16();
    (code, resp.body_mut().read_to_string().unwrap())
}

/// Sets a failpoint (the `fail` crate's action text) on a node, through its operations
/// endpoint.
pub fn set_failpoint(addr: &str, name: &str, actions: &str) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(5)))
        .build()
        .into();
    agent
        .put(&format!("http://{addr}/failpoints/{name}"))
        .send(actions)
        .unwrap_or_else(|e| panic!("setting failpoint {name} on {addr}: {e}"));
}

/// A node's metrics, parsed as Prometheus parses them.
pub fn scrape(addr: &str) -> prometheus_parse::Scrape {
    let (code, body) = http_get(addr, "/metrics");
    assert_eq!(code, 200, "{body}");
    prometheus_parse::Scrape::parse(body.lines().map(|l| Ok(l.to_string())))
        .expect("metrics in Prometheus text format")
}

/// The value of `name` with label channel=`channel` (gauges and counters).
pub fn metric(scrape: &prometheus_parse::Scrape, name: &str, channel: &str) -> Option<f64> {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name && s.labels.get("channel") == Some(channel))
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => f64::NAN,
        })
        .reduce(|a, b| a + b)
}

/// A signing identity claiming `msp_id` whose certificate comes from a CA of its own, not the
/// organisation's: a foreign CA or a swapped key.
pub fn foreign_identity(msp_id: &str, name: &str, role: Role) -> SigningIdentity {
    let ca = CertificateAuthority::generate(msp_id, &format!("ca.foreign.{name}")).unwrap();
    let c = ca.issue(name, role, CertUsage::Signing, &[]).unwrap();
    SigningIdentity::from_pem(msp_id, c.cert_pem.as_bytes(), c.key_pem.as_bytes()).unwrap()
}
