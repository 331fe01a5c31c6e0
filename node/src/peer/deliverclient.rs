//! Pulls a channel's blocks from its orderers with Deliver, from the peer's own height on.
//! When the orderer it pulls from fails or its stream breaks, it moves to the next one.
//! Every block must carry the channel's orderers' signatures and extend the chain it
//! already has before it is queued for commit.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use super::channel::PeerChannel;
use crate::identity::SigningIdentity;
use crate::ledger::{data_hash, header_hash};
use crate::proto::common::{Block, Status};
use crate::proto::orderer::{
    atomic_broadcast_client::AtomicBroadcastClient, deliver_response, DeliverRequest, SeekBehavior,
};
use crate::tls::TlsMaterial;

const MAX_MESSAGE: usize = 256 << 20;
/// Pause after every orderer failed in turn, so that a peer cut off from all of them does
/// not spin.
const ROUND_PAUSE: Duration = Duration::from_millis(500);
/// A stream quiet for this long is checked against the other orderers: an orderer cut off
/// from the Raft majority keeps its stream open but sends nothing (Fabric's censorship check).
const QUIET: Duration = Duration::from_secs(10);

/// Where the next block must attach.
struct Cursor {
    next: u64,
    last_hash: Vec<u8>,
}

pub async fn run(
    ch: Arc<PeerChannel>,
    tls: TlsMaterial,
    signer: Arc<SigningIdentity>,
    commit: mpsc::Sender<Block>,
    mut stop: watch::Receiver<bool>,
) {
    let endpoints: Vec<String> = ch
        .config
        .consenters
        .iter()
        .map(|c| format!("{}:{}", c.host, c.port))
        .collect();
    let tip = ch.store.tip();
    let mut cursor = Cursor {
        next: tip.height,
        last_hash: tip.last_hash,
    };
    // Peers spread over the orderers instead of all starting with the first one.
    let mut turn =
        (ch.store.height() as usize + std::process::id() as usize) % endpoints.len().max(1);
    loop {
        for _ in 0..endpoints.len() {
            let endpoint = &endpoints[turn % endpoints.len()];
            turn += 1;
            let result = tokio::select! {
                r = pull(&ch, &tls, &signer, endpoint, &endpoints, &mut cursor, &commit) => r,
                _ = stop.wait_for(|s| *s) => return,
            };
            match result {
                Ok(()) => return, // The commit thread has gone: the channel stopped.
                Err(e) => {
                    tracing::warn!(channel = %ch.channel_id(), orderer = %endpoint,
                        "deliver: {e:#}; trying the next orderer");
                    ch.set_orderer("");
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(ROUND_PAUSE) => {},
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

/// Follows one orderer until its stream fails (Err) or the commit queue closes (Ok).
async fn pull(
    ch: &PeerChannel,
    tls: &TlsMaterial,
    signer: &SigningIdentity,
    endpoint: &str,
    all: &[String],
    cursor: &mut Cursor,
    commit: &mpsc::Sender<Block>,
) -> anyhow::Result<()> {
    let mut client =
        AtomicBroadcastClient::new(tls.channel(endpoint)?).max_decoding_message_size(MAX_MESSAGE);
    let mut stream = client
        .deliver(crate::signed_request::sign(
            DeliverRequest {
                channel_id: ch.channel_id().to_string(),
                start: cursor.next,
                stop: None,
                behavior: SeekBehavior::BlockUntilReady as i32,
                signature: None,
            },
            signer,
            &tls.cert_pem,
        )?)
        .await?
        .into_inner();
    ch.set_orderer(endpoint);
    tracing::info!(channel = %ch.channel_id(), orderer = %endpoint, from = cursor.next, "pulling blocks");
    loop {
        let msg = match tokio::time::timeout(QUIET, stream.message()).await {
            Ok(m) => m?,
            Err(_) => {
                let others = all.iter().filter(|e| *e != endpoint);
                for other in others {
                    if has_block(ch, tls, signer, other, cursor.next).await {
                        anyhow::bail!(
                            "sent nothing for {QUIET:?} while {other} has block {}",
                            cursor.next
                        );
                    }
                }
                continue;
            }
        };
        let Some(msg) = msg else {
            anyhow::bail!("stream closed");
        };
        match msg.r#type {
            Some(deliver_response::Type::Block(block)) => {
                // Signed by the channel's orderers, or not taken at all: an orderer whose
                // blocks fail is left for another.
                ch.blocks
                    .verify_signatures(&block)
                    .map_err(|e| anyhow::anyhow!("refused a block: {e}"))?;
                check_extends(&block, cursor)?;
                if commit.send(block).await.is_err() {
                    return Ok(());
                }
            }
            Some(deliver_response::Type::Status(s)) => {
                let s = Status::try_from(s).unwrap_or(Status::Unspecified);
                anyhow::bail!("ended with {}: {}", s.as_str_name(), msg.info);
            }
            None => anyhow::bail!("empty deliver response"),
        }
    }
}

/// Whether orderer `endpoint` has block `number` already.
async fn has_block(
    ch: &PeerChannel,
    tls: &TlsMaterial,
    signer: &SigningIdentity,
    endpoint: &str,
    number: u64,
) -> bool {
    let probe = async {
        let mut client = AtomicBroadcastClient::new(tls.channel(endpoint)?)
            .max_decoding_message_size(MAX_MESSAGE);
        let mut stream = client
            .deliver(crate::signed_request::sign(
                DeliverRequest {
                    channel_id: ch.channel_id().to_string(),
                    start: number,
                    stop: Some(number),
                    behavior: SeekBehavior::FailIfNotReady as i32,
                    signature: None,
                },
                signer,
                &tls.cert_pem,
            )?)
            .await?
            .into_inner();
        let first = stream.message().await?;
        anyhow::Ok(matches!(
            first.and_then(|m| m.r#type),
            Some(deliver_response::Type::Block(_))
        ))
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(2), probe).await,
        Ok(Ok(true))
    )
}

/// The block is the next one and chains to the last one; advances the cursor.
fn check_extends(block: &Block, cursor: &mut Cursor) -> anyhow::Result<()> {
    let header = block
        .header
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("block without header"))?;
    anyhow::ensure!(
        header.number == cursor.next,
        "sent block {} where {} was expected",
        header.number,
        cursor.next
    );
    anyhow::ensure!(
        header.previous_hash == cursor.last_hash,
        "block {} does not chain to block {}",
        header.number,
        cursor.next.wrapping_sub(1)
    );
    let txs = block
        .data
        .as_ref()
        .map(|d| &d.transactions[..])
        .unwrap_or(&[]);
    anyhow::ensure!(
        header.data_hash == data_hash(txs),
        "block {}: data hash does not match its transactions",
        header.number
    );
    cursor.next += 1;
    cursor.last_hash = header_hash(header);
    Ok(())
}
