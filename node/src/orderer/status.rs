//! What a chain reports about itself: role, leader, term, progress and which consenters it
//! hears from. Published on every change for `WatchStatus`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::proto::admin::{ChannelStatus, ConsenterStatus, Role};
use crate::proto::common::ChannelConfig;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChainStatus {
    pub role: Role,
    /// 0 when there is no leader.
    pub leader_id: u64,
    pub term: u64,
    pub commit_index: u64,
    pub applied_index: u64,
    pub height: u64,
    pub last_hash: Vec<u8>,
    /// Consenters heard from within an election timeout (always including this node).
    pub active: Vec<u64>,
    pub quorum: bool,
    /// Why the chain halted; empty while it runs.
    pub halt_error: String,
}

/// When each consenter was last heard from; updated by the cluster service on every message.
#[derive(Clone, Default)]
pub struct Contacts(Arc<Mutex<HashMap<u64, Instant>>>);

impl Contacts {
    pub fn touch(&self, id: u64) {
        self.0.lock().expect("contacts").insert(id, Instant::now());
    }

    pub fn since(&self, id: u64) -> Option<Duration> {
        self.0
            .lock()
            .expect("contacts")
            .get(&id)
            .map(|t| t.elapsed())
    }
}

impl ChainStatus {
    /// The status of a chain that stopped: no role, no leader, no quorum, and why.
    pub fn halt(&mut self, reason: &str) {
        self.role = Role::Halted;
        self.leader_id = 0;
        self.quorum = false;
        self.active.clear();
        self.halt_error = reason.to_string();
    }

    pub fn is_halted(&self) -> bool {
        !self.halt_error.is_empty()
    }

    pub fn to_proto(
        &self,
        config: &ChannelConfig,
        node_id: u64,
        node_name: &str,
        contacts: &Contacts,
    ) -> ChannelStatus {
        let name_of = |id: u64| {
            config
                .consenters
                .iter()
                .find(|c| c.id == id)
                .map(|c| c.name.clone())
                .unwrap_or_default()
        };
        ChannelStatus {
            channel_id: config.channel_id.clone(),
            node_id,
            node_name: node_name.to_string(),
            role: self.role as i32,
            leader_id: self.leader_id,
            leader_name: if self.leader_id == 0 {
                String::new()
            } else {
                name_of(self.leader_id)
            },
            term: self.term,
            commit_index: self.commit_index,
            applied_index: self.applied_index,
            height: self.height,
            last_block_hash: self.last_hash.clone(),
            consenters: config
                .consenters
                .iter()
                .map(|c| ConsenterStatus {
                    id: c.id,
                    name: c.name.clone(),
                    endpoint: format!("{}:{}", c.host, c.port),
                    active: self.active.contains(&c.id),
                    last_contact_ms: if c.id == node_id {
                        0
                    } else {
                        contacts
                            .since(c.id)
                            .map(|d| d.as_millis() as i64)
                            .unwrap_or(-1)
                    },
                })
                .collect(),
            quorum: self.quorum,
            halt_error: self.halt_error.clone(),
            ..Default::default()
        }
    }
}
