//! Pulls missing blocks from other orderers with Deliver (Fabric's block puller), checking
//! each block against the hash chain before it is written.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use prost::Message;
use redb::Durability;

use super::transport::Transport;
use crate::ledger::{tx_ids, BlockStore};
use crate::proto::orderer::{
    atomic_broadcast_client::AtomicBroadcastClient, deliver_response, DeliverRequest, SeekBehavior,
};

/// Fills the ledger up to `target` (exclusive) from `sources`, trying each in turn, for as
/// long as it takes (the chain cannot go on without these blocks) or until `stopping`.
pub fn pull(
    runtime: &tokio::runtime::Handle,
    transport: &Transport,
    channel: &str,
    sources: &[String],
    store: &Arc<BlockStore>,
    target: u64,
    stopping: &AtomicBool,
) -> anyhow::Result<()> {
    let mut round = 0u32;
    while store.height() < target {
        if stopping.load(Ordering::Relaxed) {
            bail!(
                "stopped while pulling blocks {}..{target} of {channel}",
                store.height()
            );
        }
        for addr in sources {
            if store.height() >= target || stopping.load(Ordering::Relaxed) {
                break;
            }
            let res = runtime.block_on(pull_from(transport, addr, channel, store, target));
            if let Err(e) = res {
                tracing::warn!(channel, source = %addr, error = format!("{e:#}"), "block pull failed; trying another orderer");
            }
        }
        round += 1;
        std::thread::sleep(Duration::from_millis(100 * u64::from(round.min(10))));
    }
    Ok(())
}

async fn pull_from(
    transport: &Transport,
    addr: &str,
    channel: &str,
    store: &BlockStore,
    target: u64,
) -> anyhow::Result<()> {
    let mut client =
        AtomicBroadcastClient::new(transport.channel(addr)?).max_decoding_message_size(256 << 20);
    let req = DeliverRequest {
        channel_id: channel.to_string(),
        start: store.height(),
        stop: Some(target - 1),
        behavior: SeekBehavior::FailIfNotReady as i32,
    };
    let mut stream = tokio::time::timeout(Duration::from_secs(5), client.deliver(req))
        .await
        .context("deliver timed out")??
        .into_inner();
    while let Some(resp) = tokio::time::timeout(Duration::from_secs(10), stream.message())
        .await
        .context("deliver stalled")??
    {
        match resp.r#type {
            Some(deliver_response::Type::Block(block)) => {
                let bytes = block.encode_to_vec();
                let mut txn = store.db().begin_write()?;
                txn.set_durability(Durability::None);
                let tip = store.append(&txn, &block, &bytes, &tx_ids(&block), &store.tip())?;
                txn.commit()?;
                store.committed(tip);
            }
            Some(deliver_response::Type::Status(s)) => {
                if store.height() < target {
                    bail!("{addr} ended delivery early ({s}): {}", resp.info);
                }
                return Ok(());
            }
            None => bail!("empty deliver response"),
        }
    }
    Ok(())
}
