//! Building and hashing blocks. Each header holds the previous header's hash and the hash of
//! the block's transactions, so that altering any block breaks every later one.

use prost::Message;
use ring::digest::{Context, SHA256};

use crate::proto::common::{
    Block, BlockData, BlockHeader, BlockMetadata, ChannelConfig, ChannelHeader, Envelope,
    HeaderType, Payload,
};

/// SHA-256 of a header: number, previous hash and data hash, each length-framed so that no two
/// different headers hash alike.
pub fn header_hash(h: &BlockHeader) -> Vec<u8> {
    let mut ctx = Context::new(&SHA256);
    ctx.update(&h.number.to_be_bytes());
    for part in [&h.previous_hash, &h.data_hash] {
        ctx.update(&(part.len() as u64).to_be_bytes());
        ctx.update(part);
    }
    ctx.finish().as_ref().to_vec()
}

/// SHA-256 over the block's transactions, each length-framed.
pub fn data_hash(txs: &[Vec<u8>]) -> Vec<u8> {
    let mut ctx = Context::new(&SHA256);
    for tx in txs {
        ctx.update(&(tx.len() as u64).to_be_bytes());
        ctx.update(tx);
    }
    ctx.finish().as_ref().to_vec()
}

pub fn new_block(number: u64, previous_hash: Vec<u8>, transactions: Vec<Vec<u8>>) -> Block {
    let header = BlockHeader {
        number,
        previous_hash,
        data_hash: data_hash(&transactions),
    };
    Block {
        header: Some(header),
        data: Some(BlockData { transactions }),
        metadata: Some(BlockMetadata::default()),
    }
}

/// Block 0 of a channel: one CONFIG envelope carrying the channel's configuration.
pub fn genesis_block(config: &ChannelConfig) -> Block {
    let payload = Payload {
        header: Some(ChannelHeader {
            r#type: HeaderType::Config as i32,
            channel_id: config.channel_id.clone(),
            tx_id: format!("genesis-{}", config.channel_id),
            ..Default::default()
        }),
        data: config.encode_to_vec(),
    };
    let env = Envelope {
        payload: payload.encode_to_vec(),
        signature: Vec::new(),
    };
    new_block(0, Vec::new(), vec![env.encode_to_vec()])
}

/// The channel configuration held by a genesis block, after checking the block's own hashes.
pub fn channel_config(block: &Block) -> Result<ChannelConfig, String> {
    let header = block.header.as_ref().ok_or("block has no header")?;
    if header.number != 0 {
        return Err(format!(
            "block {} is not a genesis block (number 0)",
            header.number
        ));
    }
    let txs = block
        .data
        .as_ref()
        .map(|d| &d.transactions[..])
        .unwrap_or(&[]);
    if header.data_hash != data_hash(txs) {
        return Err("genesis block data hash does not match its contents".into());
    }
    let [tx] = txs else {
        return Err(format!(
            "genesis block must hold exactly one transaction, has {}",
            txs.len()
        ));
    };
    let env = Envelope::decode(&tx[..]).map_err(|e| format!("genesis envelope: {e}"))?;
    let payload = Payload::decode(&env.payload[..]).map_err(|e| format!("genesis payload: {e}"))?;
    let ch = payload.header.ok_or("genesis payload has no header")?;
    if ch.r#type != HeaderType::Config as i32 {
        return Err("genesis transaction is not of type CONFIG".into());
    }
    let cfg =
        ChannelConfig::decode(&payload.data[..]).map_err(|e| format!("channel config: {e}"))?;
    if cfg.channel_id != ch.channel_id {
        return Err("genesis header and config name different channels".into());
    }
    Ok(cfg)
}

/// The transaction ids of a block's envelopes (undecodable ones are skipped: the orderer
/// validated them before ordering).
pub fn tx_ids(block: &Block) -> Vec<String> {
    let txs = block
        .data
        .as_ref()
        .map(|d| &d.transactions[..])
        .unwrap_or(&[]);
    txs.iter()
        .filter_map(|tx| {
            let env = Envelope::decode(&tx[..]).ok()?;
            let payload = Payload::decode(&env.payload[..]).ok()?;
            Some(payload.header?.tx_id)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changing_a_transaction_changes_the_chain() {
        let b0 = new_block(0, vec![], vec![b"a".to_vec()]);
        let h0 = header_hash(b0.header.as_ref().unwrap());
        let b1 = new_block(1, h0.clone(), vec![b"b".to_vec()]);
        let tampered = new_block(0, vec![], vec![b"A".to_vec()]);
        assert_ne!(h0, header_hash(tampered.header.as_ref().unwrap()));
        assert_eq!(b1.header.unwrap().previous_hash, h0);
        // Framing: ["ab"] and ["a","b"] must not collide.
        assert_ne!(
            data_hash(&[b"ab".to_vec()]),
            data_hash(&[b"a".to_vec(), b"b".to_vec()])
        );
    }

    #[test]
    fn genesis_round_trip() {
        let cfg = ChannelConfig {
            channel_id: "mychannel".into(),
            ..Default::default()
        };
        let block = genesis_block(&cfg);
        assert_eq!(channel_config(&block).unwrap().channel_id, "mychannel");
        let not_genesis = new_block(3, vec![], vec![]);
        assert!(channel_config(&not_genesis)
            .unwrap_err()
            .contains("not a genesis"));
    }
}
