//! Transaction ids: what a client must use and every orderer and peer checks.

use ring::digest::{Context, SHA256};

/// The transaction id a client must use: hex SHA-256 of nonce || creator certificate.
pub fn compute_tx_id(nonce: &[u8], creator_cert_pem: &[u8]) -> String {
    let mut ctx = Context::new(&SHA256);
    ctx.update(nonce);
    ctx.update(creator_cert_pem);
    hex::encode(ctx.finish())
}
