//! Block signatures: the orderer that creates a block signs its header hash together with its
//! own identity and a nonce (as Fabric's block metadata `SIGNATURES` carry them). Peers, and
//! orderers pulling blocks to catch up, accept a block only when its signatures satisfy the
//! channel's BlockValidation policy. The genesis block is trusted as joined, and unsigned.

use ring::digest::{Context, SHA256};
use ring::rand::{SecureRandom, SystemRandom};

use super::block::header_hash;
use crate::identity::{MspSet, Policy, SigningIdentity, VerifiedIdentity};
use crate::proto::common::{Block, BlockHeader, BlockSignature, ChannelConfig, SerializedIdentity};

const NONCE: usize = 24;
/// Separates block signatures from every other signature made with the same key.
const DOMAIN: &[u8] = b"raftnet block signature v1";

/// What a block signature covers: the header's hash, the signer and the nonce.
pub fn signed_message(header: &BlockHeader, signer: &SerializedIdentity, nonce: &[u8]) -> Vec<u8> {
    let mut ctx = Context::new(&SHA256);
    ctx.update(DOMAIN);
    for part in [
        &header_hash(header)[..],
        signer.msp_id.as_bytes(),
        &signer.cert_pem,
        nonce,
    ] {
        ctx.update(&(part.len() as u64).to_be_bytes());
        ctx.update(part);
    }
    ctx.finish().as_ref().to_vec()
}

/// Adds `signer`'s signature to the block's metadata.
pub fn sign_block(block: &mut Block, signer: &SigningIdentity) -> anyhow::Result<()> {
    let header = block
        .header
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("block has no header"))?;
    let mut nonce = vec![0u8; NONCE];
    SystemRandom::new()
        .fill(&mut nonce)
        .map_err(|_| anyhow::anyhow!("system random source failed"))?;
    let identity = signer.serialize();
    let signature = signer.sign(&signed_message(header, &identity, &nonce))?;
    block
        .metadata
        .get_or_insert_with(Default::default)
        .signatures
        .push(BlockSignature {
            signer: Some(identity),
            nonce,
            signature,
        });
    Ok(())
}

/// The channel's BlockValidation policy: the configured one, or any orderer of the
/// consenters' organisations (channels created before the policy existed).
pub fn block_validation_policy(config: &ChannelConfig) -> anyhow::Result<Policy> {
    let configured = config
        .policies
        .as_ref()
        .map(|p| p.block_validation.trim())
        .unwrap_or_default();
    if !configured.is_empty() {
        return configured
            .parse()
            .map_err(|e| anyhow::anyhow!("policies.blockValidation: {e}"));
    }
    let mut orgs: Vec<&str> = config
        .consenters
        .iter()
        .map(|c| c.msp_id.as_str())
        .collect();
    orgs.sort_unstable();
    orgs.dedup();
    let leaves: Vec<String> = orgs.iter().map(|m| format!("'{m}.orderer'")).collect();
    format!("OR({})", leaves.join(","))
        .parse()
        .map_err(|e| anyhow::anyhow!("default BlockValidation policy: {e}"))
}

/// Checks that the block's signatures verify and satisfy `policy`; the error says why not.
pub fn verify_block(block: &Block, msps: &MspSet, policy: &Policy) -> Result<(), String> {
    let header = block.header.as_ref().ok_or("block has no header")?;
    let n = header.number;
    let signatures = block
        .metadata
        .as_ref()
        .map(|m| &m.signatures[..])
        .unwrap_or(&[]);
    if signatures.is_empty() {
        return Err(format!("block {n} is not signed"));
    }
    let mut signers: Vec<std::sync::Arc<VerifiedIdentity>> = Vec::new();
    for s in signatures {
        let signer = s
            .signer
            .as_ref()
            .ok_or_else(|| format!("block {n}: a signature names no signer"))?;
        let msg = signed_message(header, signer, &s.nonce);
        let id = msps.verify(signer, &msg, &s.signature).map_err(|e| {
            format!(
                "block {n}: the signature of {} does not verify: {e}",
                signer.msp_id
            )
        })?;
        signers.push(id);
    }
    let refs: Vec<&VerifiedIdentity> = signers.iter().map(|s| s.as_ref()).collect();
    if !policy.evaluate(&refs) {
        let who: Vec<String> = signers
            .iter()
            .map(|s| {
                let role = s.role.map(|r| r.as_str()).unwrap_or("no role");
                format!("{} of {} ({role})", s.common_name, s.msp_id)
            })
            .collect();
        return Err(format!(
            "block {n}: signed by {}, which does not satisfy the BlockValidation policy {policy}",
            who.join(", ")
        ));
    }
    Ok(())
}

/// What a channel's blocks are checked against before they are committed: their own data
/// hash and the BlockValidation policy over their signatures.
pub struct BlockVerifier {
    msps: MspSet,
    policy: Policy,
}

impl BlockVerifier {
    pub fn new(config: &ChannelConfig) -> anyhow::Result<Self> {
        Ok(Self {
            msps: MspSet::new(&config.organizations)?,
            policy: block_validation_policy(config)?,
        })
    }

    /// Ok for a block whose transactions match its header and whose signatures satisfy the
    /// policy (the genesis block, trusted as joined, needs none).
    pub fn verify(&self, block: &Block) -> Result<(), String> {
        let header = block.header.as_ref().ok_or("block has no header")?;
        let txs = block
            .data
            .as_ref()
            .map(|d| &d.transactions[..])
            .unwrap_or(&[]);
        if header.data_hash != super::block::data_hash(txs) {
            return Err(format!(
                "block {}: data hash does not match its transactions",
                header.number
            ));
        }
        self.verify_signatures(block)
    }

    /// The signature check alone, for callers that checked the data hash already.
    pub fn verify_signatures(&self, block: &Block) -> Result<(), String> {
        match block.header.as_ref() {
            Some(h) if h.number == 0 => Ok(()),
            _ => verify_block(block, &self.msps, &self.policy),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::{CertUsage, CertificateAuthority, Role};
    use crate::ledger::new_block;
    use crate::proto::common::{Consenter, Organization};

    struct Org {
        ca: CertificateAuthority,
        msp_id: String,
    }

    impl Org {
        fn new(msp_id: &str) -> Self {
            Self {
                ca: CertificateAuthority::generate(msp_id, &format!("ca.{msp_id}")).unwrap(),
                msp_id: msp_id.into(),
            }
        }

        fn signer(&self, name: &str, role: Role) -> SigningIdentity {
            let c = self.ca.issue(name, role, CertUsage::Signing, &[]).unwrap();
            SigningIdentity::from_pem(&self.msp_id, c.cert_pem.as_bytes(), c.key_pem.as_bytes())
                .unwrap()
        }

        fn proto(&self) -> Organization {
            Organization {
                msp_id: self.msp_id.clone(),
                root_cert_pem: self.ca.cert_pem().as_bytes().to_vec(),
                tls_root_cert_pem: self.ca.cert_pem().as_bytes().to_vec(),
            }
        }
    }

    fn setup() -> (Org, Org, MspSet, Policy) {
        let orderers = Org::new("OrdererMSP");
        let org1 = Org::new("Org1MSP");
        let msps = MspSet::new(&[orderers.proto(), org1.proto()]).unwrap();
        let config = ChannelConfig {
            consenters: vec![Consenter {
                msp_id: "OrdererMSP".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let policy = block_validation_policy(&config).unwrap();
        (orderers, org1, msps, policy)
    }

    #[test]
    fn an_orderers_signature_is_accepted() {
        let (orderers, _, msps, policy) = setup();
        let mut block = new_block(1, vec![1; 32], vec![b"tx".to_vec()]);
        sign_block(&mut block, &orderers.signer("orderer1", Role::Orderer)).unwrap();
        assert_eq!(verify_block(&block, &msps, &policy), Ok(()));
    }

    #[test]
    fn unsigned_altered_flipped_and_foreign_signatures_are_refused() {
        let (orderers, org1, msps, policy) = setup();
        let signer = orderers.signer("orderer1", Role::Orderer);
        let block = new_block(1, vec![1; 32], vec![b"tx".to_vec()]);
        let err = verify_block(&block, &msps, &policy).unwrap_err();
        assert!(err.contains("not signed"), "{err}");

        let mut signed = block.clone();
        sign_block(&mut signed, &signer).unwrap();
        // Other transactions under the same signature: the header's data hash differs.
        let mut altered = new_block(1, vec![1; 32], vec![b"other".to_vec()]);
        altered.metadata = signed.metadata.clone();
        let err = verify_block(&altered, &msps, &policy).unwrap_err();
        assert!(err.contains("does not verify"), "{err}");

        let mut flipped = signed.clone();
        let sig = &mut flipped.metadata.as_mut().unwrap().signatures[0].signature;
        let last = sig.len() - 1;
        sig[last] ^= 0x01;
        assert!(verify_block(&flipped, &msps, &policy).is_err());

        // A client of a channel organisation is no orderer.
        let mut by_client = block.clone();
        sign_block(&mut by_client, &org1.signer("client", Role::Client)).unwrap();
        let err = verify_block(&by_client, &msps, &policy).unwrap_err();
        assert!(err.contains("BlockValidation"), "{err}");

        // An orderer certificate from a CA outside the channel.
        let impostor = Org::new("OrdererMSP");
        let mut forged = block.clone();
        sign_block(&mut forged, &impostor.signer("orderer1", Role::Orderer)).unwrap();
        let err = verify_block(&forged, &msps, &policy).unwrap_err();
        assert!(err.contains("does not verify"), "{err}");
    }
}
