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
    use raftnet_crds::status::role;
    match Role::try_from(s.role).unwrap_or(Role::Unspecified) {
        Role::Leader => role::LEADER,
        Role::Follower => role::FOLLOWER,
        Role::Candidate | Role::PreCandidate => role::CANDIDATE,
        Role::Halted => role::HALTED,
        Role::Unspecified => role::UNAVAILABLE,
    }
}

/// One node's view of a channel; `None` when it did not answer.
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

pub const PEER_STATUS_HEADER: [&str; 4] = ["NAME", "HEIGHT", "COMMIT HASH", "ORDERER"];

/// Enough of a commit hash to tell peers apart at a glance: its first 8 bytes.
fn short_hash(h: &[u8]) -> String {
    if h.is_empty() {
        "-".into()
    } else {
        hex::encode(&h[..h.len().min(8)])
    }
}

/// A peer's row: peers have no Raft role, so their status is the ledger they committed and
/// the orderer they pull blocks from.
pub fn peer_status_cells(r: &StatusRow) -> Vec<String> {
    match &r.status {
        Some(s) => vec![
            s.node_name.clone(),
            s.height.to_string(),
            short_hash(&s.commit_hash),
            if s.orderer_endpoint.is_empty() {
                "<none>".into()
            } else {
                s.orderer_endpoint.clone()
            },
        ],
        None => vec![
            r.address.clone(),
            "-".into(),
            "-".into(),
            "Unavailable".into(),
        ],
    }
}

pub fn peer_status_json(r: &StatusRow) -> serde_json::Value {
    match &r.status {
        Some(s) => json!({
            "address": r.address,
            "name": s.node_name,
            "channel": s.channel_id,
            "height": s.height,
            "commitHash": hex::encode(&s.commit_hash),
            "orderer": s.orderer_endpoint,
            "commitError": s.commit_error,
        }),
        None => json!({"address": r.address, "error": r.error}),
    }
}

/// Cells padded to fixed widths for output that grows line by line (`--watch`), where a
/// table cannot be laid out in advance; a cell wider than its column still gets a space.
pub fn fixed_width_line(cells: &[impl AsRef<str>], widths: &[usize]) -> String {
    cells
        .iter()
        .zip(widths.iter().chain(std::iter::repeat(&12)))
        .map(|(c, w)| format!("{:<width$} ", c.as_ref(), width = w.saturating_sub(1)))
        .collect::<String>()
        .trim_end()
        .to_string()
}
