//! Tables and JSON for what the client prints.

use comfy_table::{presets::NOTHING, Table};
use serde_json::json;

use crate::proto::admin::{ChannelStatus, Role};

pub fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(NOTHING).set_header(header.to_vec());
    t
}

pub fn role_name(s: &ChannelStatus) -> &'static str {
    match Role::try_from(s.role).unwrap_or(Role::Unspecified) {
        Role::Leader => "Leader",
        Role::Follower => "Follower",
        Role::Candidate | Role::PreCandidate => "Candidate",
        Role::Unspecified => "Unavailable",
    }
}

/// One orderer's view of a channel; `None` when it did not answer.
pub struct StatusRow {
    pub address: String,
    pub status: Option<ChannelStatus>,
    pub error: Option<String>,
}

pub const STATUS_HEADER: [&str; 9] = [
    "NAME", "CHANNEL", "ROLE", "LEADER", "TERM", "HEIGHT", "COMMIT", "ACTIVE", "QUORUM",
];

pub fn status_cells(r: &StatusRow) -> Vec<String> {
    match &r.status {
        Some(s) => vec![
            s.node_name.clone(),
            s.channel_id.clone(),
            role_name(s).to_string(),
            if s.leader_id == 0 {
                "<none>".into()
            } else {
                s.leader_name.clone()
            },
            s.term.to_string(),
            s.height.to_string(),
            s.commit_index.to_string(),
            format!(
                "{}/{}",
                s.consenters.iter().filter(|c| c.active).count(),
                s.consenters.len()
            ),
            if s.quorum { "Yes".into() } else { "No".into() },
        ],
        None => vec![
            r.address.clone(),
            "-".into(),
            "Unavailable".into(),
            "-".into(),
            "-".into(),
            "-".into(),
            "-".into(),
            "-".into(),
            "-".into(),
        ],
    }
}

pub fn status_json(r: &StatusRow) -> serde_json::Value {
    match &r.status {
        Some(s) => json!({
            "address": r.address,
            "name": s.node_name,
            "id": s.node_id,
            "channel": s.channel_id,
            "role": role_name(s),
            "leaderId": s.leader_id,
            "leader": s.leader_name,
            "term": s.term,
            "height": s.height,
            "commitIndex": s.commit_index,
            "appliedIndex": s.applied_index,
            "lastBlockHash": hex::encode(&s.last_block_hash),
            "quorum": s.quorum,
            "consenters": s.consenters.iter().map(|c| json!({
                "id": c.id, "name": c.name, "endpoint": c.endpoint,
                "active": c.active, "lastContactMs": c.last_contact_ms,
            })).collect::<Vec<_>>(),
        }),
        None => json!({"address": r.address, "role": "Unavailable", "error": r.error}),
    }
}
