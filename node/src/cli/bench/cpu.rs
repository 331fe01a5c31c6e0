//! CPU time of the benchmark's processes (user + system, from `/proc/PID/stat`), to report
//! CPU milliseconds per transaction by process kind: on a shared, noisy machine it moves far
//! less than throughput does.

use std::time::Duration;

use serde_json::json;

use crate::local::process::NodeKind;
use crate::local::LocalCluster;

/// CPU time used so far by process `pid` ("self" for this one); None where /proc lacks it.
fn cpu_time(pid: &str) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; the fields after its ')' are fixed:
    // state is field 3, utime 14 and stime 15.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    // SAFETY: sysconf(3) reads a constant of the system; no memory is passed.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Some(Duration::from_millis((utime + stime) * 1000 / ticks))
}

/// CPU time of the orderers, the peers and this process (the client), at one moment.
#[derive(Clone, Copy, Debug, Default)]
pub struct CpuSample {
    orderers: Duration,
    peers: Duration,
    client: Duration,
}

impl CpuSample {
    pub fn take(cluster: &LocalCluster) -> Self {
        let mut s = CpuSample {
            client: cpu_time("self").unwrap_or_default(),
            ..Default::default()
        };
        for n in &cluster.nodes {
            let used = n
                .pid()
                .and_then(|p| cpu_time(&p.to_string()))
                .unwrap_or_default();
            match n.kind {
                NodeKind::Orderer => s.orderers += used,
                NodeKind::Peer => s.peers += used,
            }
        }
        s
    }

    /// CPU milliseconds per transaction between `start` and this sample, by process kind.
    pub fn per_transaction(&self, start: &CpuSample, transactions: u64) -> serde_json::Value {
        let per = |now: Duration, then: Duration| {
            now.saturating_sub(then).as_secs_f64() * 1000.0 / transactions.max(1) as f64
        };
        let (o, p, c) = (
            per(self.orderers, start.orderers),
            per(self.peers, start.peers),
            per(self.client, start.client),
        );
        json!({"orderers": o, "peers": p, "client": c, "total": o + p + c})
    }
}
