//! The endorser: runs a proposal's contract on the peer's committed state and signs the
//! outcome (the read/write set and the contract's response). Nothing is written here:
//! writes happen only when the ordered transaction is validated and committed.

use std::sync::Arc;

use prost::Message;
use ring::digest::{digest, SHA256};
use tonic::{Request, Response, Status};

use super::channel::PeerChannel;
use super::lifecycle::{self, LIFECYCLE};
use super::registrar::PeerRegistrar;
use super::simulator::Simulator;
use super::statedb::StateReader;
use crate::chaincode::{builtin, ContractError};
use crate::identity::SigningIdentity;
use crate::ledger::compute_tx_id;
use crate::proto::common::HeaderType;
use crate::proto::peer::{
    endorser_server, ChaincodeId, Endorsement, Proposal, ProposalResponse, ProposalResponsePayload,
    Response as CcResponse, SignedProposal, TxReadWriteSet,
};

pub struct EndorserService {
    reg: Arc<PeerRegistrar>,
    /// Simulations running at once: each holds a blocking thread and a database snapshot,
    /// and a burst of proposals must not starve the commit thread.
    running: Arc<tokio::sync::Semaphore>,
}

impl EndorserService {
    pub fn new(reg: Arc<PeerRegistrar>) -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self {
            reg,
            running: Arc::new(tokio::sync::Semaphore::new(2 * cores)),
        }
    }
}

/// A contract's failure: answered with status 500 and no endorsement, as Fabric does.
fn failed(msg: impl Into<String>) -> ProposalResponse {
    ProposalResponse {
        response: Some(CcResponse {
            status: 500,
            message: msg.into(),
            payload: Vec::new(),
        }),
        ..Default::default()
    }
}

#[tonic::async_trait]
impl endorser_server::Endorser for EndorserService {
    async fn process_proposal(
        &self,
        req: Request<SignedProposal>,
    ) -> Result<Response<ProposalResponse>, Status> {
        let reg = self.reg.clone();
        let permit = self
            .running
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Status::unavailable("the peer is shutting down"))?;
        // Signature checks and contract runs are CPU work.
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            endorse(&reg, req.into_inner())
        })
        .await
        .map_err(|e| Status::internal(e.to_string()))?
        .map(Response::new)
    }
}

fn endorse(reg: &PeerRegistrar, sp: SignedProposal) -> Result<ProposalResponse, Status> {
    let proposal = Proposal::decode(&sp.proposal_bytes[..])
        .map_err(|e| Status::invalid_argument(format!("proposal does not decode: {e}")))?;
    let channel = proposal
        .header
        .map(|h| h.channel_id)
        .ok_or_else(|| Status::invalid_argument("proposal has no header"))?;
    let chaincode = proposal.input.map(|i| i.chaincode).unwrap_or_default();
    let ch = reg.get(&channel).ok_or_else(|| {
        Status::not_found(format!("channel {channel:?} is not joined on {}", reg.name))
    })?;
    let m = crate::operations::metrics();
    m.endorser_proposals_received
        .with_label_values(&[&channel])
        .inc();
    let started = std::time::Instant::now();
    let answer = endorse_on(&ch, &reg.signer, sp);
    let success = answer
        .as_ref()
        .is_ok_and(|r| r.response.as_ref().is_some_and(|r| r.status == 200));
    if success {
        m.endorser_successful_proposals
            .with_label_values(&[&channel])
            .inc();
    }
    // Only contracts that answered name a label: a caller's made-up names would not.
    let (chaincode, success) = match success {
        true => (chaincode.as_str(), "true"),
        false => ("", "false"),
    };
    m.endorser_proposal_duration
        .with_label_values(&[channel.as_str(), chaincode, success])
        .observe(started.elapsed().as_secs_f64());
    answer
}

/// Simulates a signed proposal on `ch` and signs the outcome as `signer`.
pub fn endorse_on(
    ch: &PeerChannel,
    signer: &SigningIdentity,
    sp: SignedProposal,
) -> Result<ProposalResponse, Status> {
    let proposal = Proposal::decode(&sp.proposal_bytes[..])
        .map_err(|e| Status::invalid_argument(format!("proposal does not decode: {e}")))?;
    let header = proposal
        .header
        .as_ref()
        .ok_or_else(|| Status::invalid_argument("proposal has no header"))?;
    if header.r#type != HeaderType::Transaction as i32 {
        return Err(Status::invalid_argument(
            "proposal header type must be TRANSACTION",
        ));
    }
    let creator = header
        .creator
        .as_ref()
        .ok_or_else(|| Status::invalid_argument("proposal header has no creator"))?;
    if header.nonce.is_empty() || header.tx_id != compute_tx_id(&header.nonce, &creator.cert_pem) {
        return Err(Status::invalid_argument(
            "tx_id must be the hex SHA-256 of the nonce and the creator's certificate",
        ));
    }
    let creator_id = ch
        .rules
        .msps
        .verify(creator, &sp.proposal_bytes, &sp.signature)
        .map_err(|e| Status::permission_denied(format!("proposal creator refused: {e}")))?;
    if !ch.rules.writers.evaluate(&[&creator_id]) {
        return Err(Status::permission_denied(format!(
            "creator {} of {} does not satisfy the Writers policy of channel {}",
            creator_id.common_name,
            creator_id.msp_id,
            ch.channel_id()
        )));
    }
    let state = ch
        .state()
        .map_err(|e| Status::internal(format!("state database: {e:#}")))?;
    if let Some(rec) = state
        .tx(&header.tx_id)
        .map_err(|e| Status::internal(format!("{e:#}")))?
    {
        return Err(Status::already_exists(format!(
            "transaction {} was already committed in block {}",
            header.tx_id, rec.block
        )));
    }
    let input = proposal.input.clone().unwrap_or_default();
    let outcome = if input.chaincode == LIFECYCLE {
        if !ch.rules.admins.evaluate(&[&creator_id]) {
            return Err(Status::permission_denied(format!(
                "deploying a contract needs an identity satisfying the Admins policy {} of channel {}; {} of {} does not",
                ch.rules.admins, ch.channel_id(), creator_id.common_name, creator_id.msp_id
            )));
        }
        simulate_deploy(ch, &state, &header.tx_id, &input.args)?
    } else {
        simulate_invoke(
            &state,
            &header.tx_id,
            &input.chaincode,
            &input.args,
            ch.channel_id(),
        )?
    };
    let (cc_id, result) = match outcome {
        Ok(x) => x,
        Err(e) => return Ok(failed(e.0)),
    };
    let (rwset, payload) = result;
    let response = CcResponse {
        status: 200,
        message: String::new(),
        payload,
    };
    let prp = ProposalResponsePayload {
        proposal_hash: digest(&SHA256, &sp.proposal_bytes).as_ref().to_vec(),
        chaincode_id: Some(cc_id),
        results: Some(rwset),
        response: Some(response.clone()),
    }
    .encode_to_vec();
    let signature = signer
        .sign(&prp)
        .map_err(|e| Status::internal(format!("cannot sign: {e}")))?;
    let endorser = signer.serialize();
    ch.rules
        .own_endorsements
        .remember(&endorser, &prp, &signature);
    Ok(ProposalResponse {
        response: Some(response),
        payload: prp,
        endorsement: Some(Endorsement {
            endorser: Some(endorser),
            signature,
        }),
    })
}

type Simulated = Result<(ChaincodeId, (TxReadWriteSet, Vec<u8>)), ContractError>;

fn simulate_invoke(
    state: &StateReader,
    tx_id: &str,
    name: &str,
    args: &[String],
    channel: &str,
) -> Result<Simulated, Status> {
    let def = lifecycle::definition(state, name)
        .map_err(|e| Status::internal(format!("{e:#}")))?
        .ok_or_else(|| {
            Status::not_found(format!(
                "contract {name:?} is not deployed on channel {channel}; deploy it with `raftnet chaincode deploy`"
            ))
        })?;
    let contract = builtin(&def.contract).ok_or_else(|| {
        Status::internal(format!(
            "contract {name} runs {}, which this peer does not have",
            def.contract
        ))
    })?;
    let Some((function, rest)) = args.split_first() else {
        return Ok(Err(ContractError::new(
            "no function given: the first argument names the function, e.g. [\"query\",\"a\"]",
        )));
    };
    let mut sim = Simulator::new(state, name, tx_id);
    let payload = match contract.invoke(&mut sim, function, rest) {
        Ok(p) => p,
        Err(e) => return Ok(Err(e)),
    };
    Ok(Ok((
        ChaincodeId {
            name: def.name,
            version: def.version,
        },
        (
            TxReadWriteSet {
                ns_rwset: vec![sim.into_rwset()],
            },
            payload,
        ),
    )))
}

fn simulate_deploy(
    ch: &PeerChannel,
    state: &StateReader,
    tx_id: &str,
    args: &[String],
) -> Result<Simulated, Status> {
    let (def, init) =
        lifecycle::parse_deploy(args, &ch.rules.msps).map_err(Status::invalid_argument)?;
    // Recorded as a read of an absent key: two deploys of one name cannot both be valid.
    let mut lc = Simulator::new(state, LIFECYCLE, tx_id);
    use crate::chaincode::Stub;
    if lc
        .get_state(&def.name)
        .map_err(|e| Status::internal(e.0))?
        .is_some()
    {
        return Err(Status::already_exists(format!(
            "contract {} is already deployed on channel {}",
            def.name,
            ch.channel_id()
        )));
    }
    let contract = builtin(&def.contract).expect("checked by parse_deploy");
    let mut sim = Simulator::new(state, &def.name, tx_id);
    let payload = match contract.init(&mut sim, &init) {
        Ok(p) => p,
        Err(e) => return Ok(Err(ContractError::new(format!("init: {e}")))),
    };
    lc.put_state(&def.name, def.encode_to_vec())
        .map_err(|e| Status::internal(e.0))?;
    Ok(Ok((
        ChaincodeId {
            name: LIFECYCLE.to_string(),
            version: String::new(),
        },
        (
            TxReadWriteSet {
                ns_rwset: vec![lc.into_rwset(), sim.into_rwset()],
            },
            payload,
        ),
    )))
}
