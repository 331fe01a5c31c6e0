//! The hub: the latest view of every node, and the tasks that keep it fresh.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use kube::runtime::reflector::ObjectRef;
use raftnet_crds::{Channel, Network, Orderer, Peer};
use raftnet_node::proto::admin::{ChannelStatus, NodeInfoResponse};
use raftnet_node::report::NodeReport;
use raftnet_node::tls::TlsMaterial;
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::AbortHandle;

use crate::objects::NodeKind;

/// A node by namespace and resource name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeKey {
    pub namespace: String,
    pub name: String,
}

impl NodeKey {
    pub fn new(namespace: &str, name: &str) -> Self {
        Self {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        }
    }
}

/// How to reach a node and what it belongs to.
#[derive(Clone)]
pub struct NodeTarget {
    pub key: NodeKey,
    pub kind: NodeKind,
    pub network: String,
    /// `host:port` of its gRPC services.
    pub endpoint: String,
    /// An admin of its organisation.
    pub tls: TlsMaterial,
}

impl NodeTarget {
    fn same_connection(&self, other: &NodeTarget) -> bool {
        self.endpoint == other.endpoint
            && self.tls.cert_pem == other.tls.cert_pem
            && self.tls.roots_pem == other.tls.roots_pem
    }
}

/// What a node last said, and whether the hub has heard a first answer to every question.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NodeView {
    /// Its latest `NodeInfo` and channel statuses.
    pub report: NodeReport,
    /// When it last answered anything.
    pub last_seen: Option<SystemTime>,
    /// Whether `NodeInfo` has been tried at least once.
    pub info_checked: bool,
    /// Channels whose stream has neither answered nor failed yet.
    pub pending: BTreeSet<String>,
}

impl NodeView {
    /// Whether every question to the node has had a first answer (or failed): until then
    /// status is not written, so that a restarted operator does not show nodes down for the
    /// moment before it has asked them.
    pub fn settled(&self) -> bool {
        self.info_checked && self.pending.is_empty()
    }
}

/// Where changes are announced: the reconcilers of each kind listen (`reconcile_on`).
#[derive(Clone)]
pub struct Triggers {
    pub orderers: UnboundedSender<ObjectRef<Orderer>>,
    pub peers: UnboundedSender<ObjectRef<Peer>>,
    pub channels: UnboundedSender<ObjectRef<Channel>>,
    pub networks: UnboundedSender<ObjectRef<Network>>,
    /// Channel reconciles (joins, deploys), as opposed to status refreshes.
    pub channel_reconciles: UnboundedSender<ObjectRef<Channel>>,
}

struct Entry {
    target: NodeTarget,
    view: NodeView,
    info_task: Option<AbortHandle>,
    streams: HashMap<String, AbortHandle>,
}

impl Drop for Entry {
    fn drop(&mut self) {
        if let Some(task) = &self.info_task {
            task.abort();
        }
        for task in self.streams.values() {
            task.abort();
        }
    }
}

/// The latest view of every node, shared by the reconcilers and the watch tasks.
pub struct Hub {
    entries: Mutex<HashMap<NodeKey, Entry>>,
    triggers: Triggers,
    started: std::time::Instant,
}

/// How long after the operator starts a node it does not follow yet may hold back the status
/// of its channel and network (its own reconcile starts following it within this time).
const START_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

impl Hub {
    pub fn new(triggers: Triggers) -> Arc<Self> {
        Arc::new(Self {
            entries: Mutex::new(HashMap::new()),
            triggers,
            started: std::time::Instant::now(),
        })
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<NodeKey, Entry>> {
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Starts following a node (its `NodeInfo`), or follows it at a new address.
    pub fn watch_node(self: &Arc<Self>, target: NodeTarget) {
        let mut entries = self.entries();
        let key = target.key.clone();
        if let Some(entry) = entries.get(&key) {
            if entry.target.same_connection(&target) {
                return;
            }
        }
        let channels: Vec<String> = entries
            .remove(&key)
            .map(|e| e.streams.keys().cloned().collect())
            .unwrap_or_default();
        let info_task = Some(super::tasks::spawn_info(
            Arc::downgrade(self),
            target.clone(),
        ));
        let mut entry = Entry {
            target,
            view: NodeView::default(),
            info_task,
            streams: HashMap::new(),
        };
        for channel in channels {
            Self::start_stream(self, &mut entry, &channel);
        }
        entries.insert(key, entry);
    }

    /// Starts the `WatchStatus` stream of `channel` on a followed node, once.
    pub fn watch_channel(self: &Arc<Self>, key: &NodeKey, channel: &str) {
        let mut entries = self.entries();
        let Some(entry) = entries.get_mut(key) else {
            return;
        };
        if entry.streams.contains_key(channel) {
            return;
        }
        Self::start_stream(self, entry, channel);
    }

    fn start_stream(self: &Arc<Self>, entry: &mut Entry, channel: &str) {
        let task = super::tasks::spawn_stream(
            Arc::downgrade(self),
            entry.target.clone(),
            channel.to_owned(),
        );
        entry.streams.insert(channel.to_owned(), task);
        entry
            .view
            .report
            .channels
            .entry(channel.to_owned())
            .or_insert(None);
        entry.view.pending.insert(channel.to_owned());
    }

    /// Stops following the nodes of `network` in `namespace` that are not in `nodes` (their
    /// resources were deleted; no finalizer is needed for state that lives only here).
    pub fn retain(&self, namespace: &str, network: &str, nodes: &[String]) {
        self.entries().retain(|key, entry| {
            key.namespace != namespace
                || entry.target.network != network
                || nodes.contains(&key.name)
        });
    }

    /// Whether the hub follows the node (its reconcile made its objects).
    pub fn follows(&self, key: &NodeKey) -> bool {
        self.entries().contains_key(key)
    }

    /// Whether what the hub knows of a node can be shown: it has had a first answer (or
    /// failure) to every question; a node not followed yet counts once the operator has run
    /// for a few seconds (it is then shown as unavailable).
    pub fn settled(&self, key: &NodeKey) -> bool {
        match self.entries().get(key) {
            Some(entry) => entry.view.settled(),
            None => self.started.elapsed() > START_GRACE,
        }
    }

    /// The latest view of a node (empty when it is not followed).
    pub fn view(&self, key: &NodeKey) -> NodeView {
        self.entries()
            .get(key)
            .map(|e| e.view.clone())
            .unwrap_or_default()
    }

    /// Records a node's `NodeInfo` answer (None: it did not answer); wakes its reconcilers when
    /// that changes what status shows.
    pub(super) fn record_info(self: &Arc<Self>, key: &NodeKey, info: Option<NodeInfoResponse>) {
        let target = {
            let mut entries = self.entries();
            let Some(entry) = entries.get_mut(key) else {
                return;
            };
            if let Some(info) = &info {
                entry.view.last_seen = Some(SystemTime::now());
                // Every channel the node serves is followed, whoever joined it.
                for channel in &info.channels {
                    if !entry.streams.contains_key(channel) {
                        Self::start_stream(self, entry, channel);
                    }
                }
            }
            let first = !entry.view.info_checked;
            entry.view.info_checked = true;
            if entry.view.report.info == info && !first {
                return;
            }
            entry.view.report.info = info;
            entry.target.clone()
        };
        self.wake(&target, None);
    }

    /// Records a channel status from a node's stream (None: the stream is down).
    pub(super) fn record_status(
        &self,
        key: &NodeKey,
        channel: &str,
        status: Option<ChannelStatus>,
    ) {
        let target = {
            let mut entries = self.entries();
            let Some(entry) = entries.get_mut(key) else {
                return;
            };
            if status.is_some() {
                entry.view.last_seen = Some(SystemTime::now());
            }
            let first = entry.view.pending.remove(channel);
            let slot = entry
                .view
                .report
                .channels
                .entry(channel.to_owned())
                .or_insert(None);
            if *slot == status && !first {
                return;
            }
            *slot = status;
            entry.target.clone()
        };
        self.wake(&target, Some(channel));
    }

    /// Wakes a channel's reconcile (a background task of its finished).
    pub fn wake_channel(&self, namespace: &str, channel: &str) {
        let _ = self
            .triggers
            .channel_reconciles
            .send(ObjectRef::new(channel).within(namespace));
    }

    fn wake(&self, target: &NodeTarget, channel: Option<&str>) {
        let ns = target.key.namespace.as_str();
        let name = target.key.name.as_str();
        // A closed trigger means the operator is stopping: nothing to wake.
        match target.kind {
            NodeKind::Orderer => {
                let _ = self.triggers.orderers.send(ObjectRef::new(name).within(ns));
            }
            NodeKind::Peer => {
                let _ = self.triggers.peers.send(ObjectRef::new(name).within(ns));
            }
        }
        let _ = self
            .triggers
            .networks
            .send(ObjectRef::new(&target.network).within(ns));
        if let Some(channel) = channel {
            let _ = self
                .triggers
                .channels
                .send(ObjectRef::new(channel).within(ns));
        }
    }
}
