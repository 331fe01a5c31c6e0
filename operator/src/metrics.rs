//! The operator's Prometheus metrics: reconciles by controller, errors by reason, reconcile
//! durations, and what it sees of each channel (leader changes, quorum).

use prometheus::{
    HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder,
};

pub struct Metrics {
    pub registry: Registry,
    pub reconciles: IntCounterVec,
    pub failures: IntCounterVec,
    pub duration: HistogramVec,
    pub leader_changes: IntCounterVec,
    pub quorum: IntGaugeVec,
}

impl Default for Metrics {
    fn default() -> Self {
        let registry = Registry::new();
        let reconciles = IntCounterVec::new(
            Opts::new(
                "raftnet_operator_reconciles_total",
                "Reconciles by controller",
            ),
            &["controller"],
        )
        .expect("metric");
        let failures = IntCounterVec::new(
            Opts::new(
                "raftnet_operator_reconcile_errors_total",
                "Failed reconciles by controller and reason",
            ),
            &["controller", "reason"],
        )
        .expect("metric");
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "raftnet_operator_reconcile_duration_seconds",
                "How long a reconcile took",
            )
            .buckets(vec![
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ]),
            &["controller"],
        )
        .expect("metric");
        let leader_changes = IntCounterVec::new(
            Opts::new(
                "raftnet_channel_leader_changes_total",
                "Raft leader changes the operator saw, by network and channel",
            ),
            &["namespace", "network", "channel"],
        )
        .expect("metric");
        let quorum = IntGaugeVec::new(
            Opts::new(
                "raftnet_channel_quorum",
                "A channel's quorum: 2 Healthy, 1 Degraded, 0 Lost",
            ),
            &["namespace", "network", "channel"],
        )
        .expect("metric");
        for collector in [
            Box::new(reconciles.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(failures.clone()),
            Box::new(duration.clone()),
            Box::new(leader_changes.clone()),
            Box::new(quorum.clone()),
        ] {
            registry.register(collector).expect("unique metric names");
        }
        Self {
            registry,
            reconciles,
            failures,
            duration,
            leader_changes,
            quorum,
        }
    }
}

impl Metrics {
    /// The metrics in Prometheus' text format.
    pub fn render(&self) -> String {
        TextEncoder::new()
            .encode_to_string(&self.registry.gather())
            .unwrap_or_default()
    }

    /// Counts a reconcile and times it until the guard drops.
    pub fn reconcile(&self, controller: &str) -> prometheus::HistogramTimer {
        self.reconciles.with_label_values(&[controller]).inc();
        self.duration.with_label_values(&[controller]).start_timer()
    }
}
