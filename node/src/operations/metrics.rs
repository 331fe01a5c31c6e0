//! The node's Prometheus metrics, named and labelled as Fabric names them where Fabric has
//! one (`consensus_etcdraft_*`, `broadcast_*`, `deliver_*`, `ledger_*`, `endorser_*`), each
//! with a `channel` label. One registry per process: a process is one node.

use std::sync::LazyLock;

use prometheus::{
    exponential_buckets, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

/// Seconds, from 0.5 ms to about 16 s.
fn duration_buckets() -> Vec<f64> {
    exponential_buckets(0.0005, 2.0, 16).expect("valid buckets")
}

pub struct Metrics {
    registry: Registry,
    pub cluster_size: IntGaugeVec,
    pub is_leader: IntGaugeVec,
    pub active_nodes: IntGaugeVec,
    pub committed_block_number: IntGaugeVec,
    pub snapshot_block_number: IntGaugeVec,
    pub leader_changes: IntCounterVec,
    pub proposal_failures: IntCounterVec,
    pub data_persist_duration: HistogramVec,
    pub chain_halted: IntGaugeVec,
    pub cluster_refused_messages: IntCounterVec,
    pub cluster_dropped_messages: IntCounterVec,
    pub broadcast_processed_count: IntCounterVec,
    pub broadcast_validate_duration: HistogramVec,
    pub deliver_blocks_sent: IntCounterVec,
    pub ledger_blockchain_height: IntGaugeVec,
    pub ledger_block_processing_time: HistogramVec,
    pub ledger_transaction_count: IntCounterVec,
    pub endorser_proposals_received: IntCounterVec,
    pub endorser_successful_proposals: IntCounterVec,
    pub endorser_proposal_duration: HistogramVec,
}

fn gauge(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let g = IntGaugeVec::new(Opts::new(name, help), labels).expect("valid gauge");
    r.register(Box::new(g.clone())).expect("unique metric");
    g
}

fn counter(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid counter");
    r.register(Box::new(c.clone())).expect("unique metric");
    c
}

fn histogram(r: &Registry, name: &str, help: &str, labels: &[&str]) -> HistogramVec {
    let opts = HistogramOpts::new(name, help).buckets(duration_buckets());
    let h = HistogramVec::new(opts, labels).expect("valid histogram");
    r.register(Box::new(h.clone())).expect("unique metric");
    h
}

impl Metrics {
    fn new() -> Self {
        let r = Registry::new();
        let ch = &["channel"];
        Self {
            cluster_size: gauge(
                &r,
                "consensus_etcdraft_cluster_size",
                "Number of consenters of the channel's Raft group.",
                ch,
            ),
            is_leader: gauge(
                &r,
                "consensus_etcdraft_is_leader",
                "1 while this orderer leads the channel, else 0.",
                ch,
            ),
            active_nodes: gauge(
                &r,
                "consensus_etcdraft_active_nodes",
                "Consenters heard from within an election timeout, this one included.",
                ch,
            ),
            committed_block_number: gauge(
                &r,
                "consensus_etcdraft_committed_block_number",
                "Number of the last block written to the ledger.",
                ch,
            ),
            snapshot_block_number: gauge(
                &r,
                "consensus_etcdraft_snapshot_block_number",
                "Ledger height covered by the last snapshot.",
                ch,
            ),
            leader_changes: counter(
                &r,
                "consensus_etcdraft_leader_changes",
                "Leader changes seen by this orderer.",
                ch,
            ),
            proposal_failures: counter(
                &r,
                "consensus_etcdraft_proposal_failures",
                "Blocks whose Raft proposal was dropped.",
                ch,
            ),
            data_persist_duration: histogram(
                &r,
                "consensus_etcdraft_data_persist_duration",
                "Seconds to persist Raft entries and hard state (fsync included).",
                ch,
            ),
            chain_halted: gauge(
                &r,
                "raftnet_chain_halted",
                "1 when the channel's chain has halted (see the admin API's halt_error), else 0.",
                ch,
            ),
            cluster_refused_messages: counter(
                &r,
                "raftnet_cluster_refused_messages_total",
                "Raft messages from consenters refused (a type they do not send, another node's, a TimeoutNow not from the leader, a commit beyond the log), by type.",
                &["channel", "type"],
            ),
            cluster_dropped_messages: counter(
                &r,
                "raftnet_cluster_dropped_messages_total",
                "Raft messages from consenters dropped because the chain's inbox was full (more than 256 MiB queued).",
                &["channel"],
            ),
            broadcast_processed_count: counter(
                &r,
                "broadcast_processed_count",
                "Envelopes processed by Broadcast, by outcome.",
                &["channel", "type", "status"],
            ),
            broadcast_validate_duration: histogram(
                &r,
                "broadcast_validate_duration",
                "Seconds to validate a broadcast envelope.",
                &["channel", "type", "status"],
            ),
            deliver_blocks_sent: counter(
                &r,
                "deliver_blocks_sent",
                "Blocks sent by Deliver and commit-event streams.",
                &["channel", "filtered", "data_type"],
            ),
            ledger_blockchain_height: gauge(
                &r,
                "ledger_blockchain_height",
                "Number of blocks in the channel's ledger.",
                ch,
            ),
            ledger_block_processing_time: histogram(
                &r,
                "ledger_block_processing_time",
                "Seconds to validate and commit a block.",
                ch,
            ),
            ledger_transaction_count: counter(
                &r,
                "ledger_transaction_count",
                "Committed transactions by validation code.",
                &["channel", "validation_code"],
            ),
            endorser_proposals_received: counter(
                &r,
                "endorser_proposals_received",
                "Proposals received by the endorser.",
                ch,
            ),
            endorser_successful_proposals: counter(
                &r,
                "endorser_successful_proposals",
                "Proposals endorsed successfully.",
                ch,
            ),
            endorser_proposal_duration: histogram(
                &r,
                "endorser_proposal_duration",
                "Seconds to answer a proposal.",
                &["channel", "chaincode", "success"],
            ),
            registry: r,
        }
    }

    /// Everything registered, in Prometheus' text exposition format.
    pub fn render(&self) -> String {
        TextEncoder::new()
            .encode_to_string(&self.registry.gather())
            .unwrap_or_else(|e| format!("# encoding failed: {e}\n"))
    }
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

pub fn metrics() -> &'static Metrics {
    &METRICS
}

/// One chain's gauges, resolved once: a chain updates them on every loop turn.
pub struct ChainGauges {
    pub cluster_size: IntGauge,
    pub is_leader: IntGauge,
    pub active_nodes: IntGauge,
    pub committed_block_number: IntGauge,
    pub snapshot_block_number: IntGauge,
    pub halted: IntGauge,
    pub height: IntGauge,
    pub leader_changes: prometheus::IntCounter,
    pub proposal_failures: prometheus::IntCounter,
    pub persist: prometheus::Histogram,
}

impl ChainGauges {
    pub fn new(channel: &str) -> Self {
        let m = metrics();
        let l = &[channel];
        Self {
            cluster_size: m.cluster_size.with_label_values(l),
            is_leader: m.is_leader.with_label_values(l),
            active_nodes: m.active_nodes.with_label_values(l),
            committed_block_number: m.committed_block_number.with_label_values(l),
            snapshot_block_number: m.snapshot_block_number.with_label_values(l),
            halted: m.chain_halted.with_label_values(l),
            height: m.ledger_blockchain_height.with_label_values(l),
            leader_changes: m.leader_changes.with_label_values(l),
            proposal_failures: m.proposal_failures.with_label_values(l),
            persist: m.data_persist_duration.with_label_values(l),
        }
    }
}
