//! Pulls missing blocks from other orderers with Deliver (Fabric's block puller), checking
//! each block's signatures and its place in the hash chain before it is written.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use prost::Message;
use redb::Durability;

use super::transport::Transport;
use crate::identity::SigningIdentity;
use crate::ledger::{tx_ids, BlockStore, BlockVerifier};
use crate::proto::orderer::{
    atomic_broadcast_client::AtomicBroadcastClient, deliver_response, DeliverRequest, SeekBehavior,
};

/// Where a chain pulls the blocks it lacks from, and what it checks them against.
pub struct Puller<'a> {
    pub runtime: &'a tokio::runtime::Handle,
    pub transport: &'a Transport,
    pub channel: &'a str,
    pub store: &'a Arc<BlockStore>,
    pub verifier: &'a BlockVerifier,
    /// Signs the Deliver requests (the orderer's own identity).
    pub signer: &'a SigningIdentity,
    /// Set when the chain stops: the pull gives up.
    pub stopping: &'a AtomicBool,
}

impl Puller<'_> {
    /// Fills the ledger up to `target` (exclusive) from `sources`, trying each in turn, for
    /// as long as it takes (the chain cannot go on without these blocks) or until stopped.
    pub fn pull(&self, sources: &[String], target: u64) -> anyhow::Result<()> {
        let (channel, store) = (self.channel, self.store);
        let mut round = 0u32;
        while store.height() < target {
            if self.stopping.load(Ordering::Relaxed) {
                bail!(
                    "stopped while pulling blocks {}..{target} of {channel}",
                    store.height()
                );
            }
            for addr in sources {
                if store.height() >= target || self.stopping.load(Ordering::Relaxed) {
                    break;
                }
                let res = self.runtime.block_on(pull_from(
                    self.transport,
                    addr,
                    channel,
                    store,
                    target,
                    self.verifier,
                    self.signer,
                ));
                if let Err(e) = res {
                    tracing::warn!(channel, source = %addr, error = format!("{e:#}"), "block pull failed; trying another orderer");
                }
            }
            round += 1;
            std::thread::sleep(Duration::from_millis(100 * u64::from(round.min(10))));
        }
        Ok(())
    }
}

async fn pull_from(
    transport: &Transport,
    addr: &str,
    channel: &str,
    store: &BlockStore,
    target: u64,
    verifier: &BlockVerifier,
    signer: &SigningIdentity,
) -> anyhow::Result<()> {
    let mut client =
        AtomicBroadcastClient::new(transport.channel(addr)?).max_decoding_message_size(256 << 20);
    let req = DeliverRequest {
        channel_id: channel.to_string(),
        start: store.height(),
        stop: Some(target - 1),
        behavior: SeekBehavior::FailIfNotReady as i32,
        signature: None,
    };
    let req = crate::signed_request::sign(req, signer, transport.tls_cert_pem())?;
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
                // An orderer may be an impostor: its blocks must be the channel's own.
                verifier
                    .verify(&block)
                    .map_err(|e| anyhow::anyhow!("{addr} sent a block refused: {e}"))?;
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
