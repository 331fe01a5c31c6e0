//! The leader's block numbering: each new block extends the last block it created, which may
//! still be in flight (proposed but not yet committed).

use std::sync::Arc;

use prost::Message;

use crate::identity::SigningIdentity;
use crate::ledger::store::Tip;
use crate::ledger::{header_hash, new_block, sign_block};
use crate::proto::common::Block;

pub struct BlockCreator {
    next_number: u64,
    previous_hash: Vec<u8>,
    signer: Arc<SigningIdentity>,
}

impl BlockCreator {
    /// Starts from the ledger's tip (after a new leader has applied its whole log); blocks
    /// are signed by `signer`, the orderer's signing identity.
    pub fn new(tip: &Tip, signer: Arc<SigningIdentity>) -> Self {
        Self {
            next_number: tip.height,
            previous_hash: tip.last_hash.clone(),
            signer,
        }
    }

    /// The next block holding `transactions`, signed and encoded.
    pub fn create(&mut self, transactions: Vec<Vec<u8>>) -> anyhow::Result<(Block, Vec<u8>)> {
        let mut block = new_block(self.next_number, self.previous_hash.clone(), transactions);
        sign_block(&mut block, &self.signer)?;
        let header = block.header.as_ref().expect("new_block sets a header");
        self.previous_hash = header_hash(header);
        self.next_number += 1;
        let bytes = block.encode_to_vec();
        Ok((block, bytes))
    }
}
