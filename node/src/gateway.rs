//! The client side of a transaction, as Fabric's gateway does it: sign a proposal, collect
//! endorsements from peers, check that they agree, send the endorsed transaction to an
//! orderer, and wait for a peer to report whether it committed as valid.

use std::time::Duration;

use anyhow::{bail, Context};
use futures::future::join_all;
use prost::Message;
use ring::digest::{digest, SHA256};
use tonic::transport::Channel;

use crate::client::Client;
use crate::proto::common::{ChannelHeader, Envelope, Status};
use crate::proto::peer::{
    endorser_client::EndorserClient, events_client::EventsClient, ChaincodeInput,
    CommitEventsRequest, FilteredBlock, Proposal, ProposalResponse, ProposalResponsePayload,
    SignedProposal, Transaction, TxValidationCode,
};

const MAX_MESSAGE: usize = 256 << 20;
/// The longest one peer or orderer may take to answer one call.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// A signed proposal and the header the transaction will carry.
#[derive(Clone, Debug)]
pub struct SignedCall {
    pub header: ChannelHeader,
    pub signed: SignedProposal,
}

impl SignedCall {
    pub fn tx_id(&self) -> &str {
        &self.header.tx_id
    }
}

/// How a submitted transaction ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub tx_id: String,
    pub block: u64,
    pub code: TxValidationCode,
}

impl Outcome {
    pub fn is_valid(&self) -> bool {
        self.code == TxValidationCode::Valid
    }
}

impl Client {
    pub fn endorser(&self, addr: &str) -> anyhow::Result<EndorserClient<Channel>> {
        Ok(EndorserClient::new(self.channel(addr)?)
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE))
    }

    /// A proposal to run `args` (function first) on contract `chaincode`.
    pub fn proposal(
        &self,
        channel: &str,
        chaincode: &str,
        args: &[String],
    ) -> anyhow::Result<SignedCall> {
        let header = self.header(channel)?;
        let proposal_bytes = Proposal {
            header: Some(header.clone()),
            input: Some(ChaincodeInput {
                chaincode: chaincode.to_string(),
                args: args.to_vec(),
            }),
        }
        .encode_to_vec();
        let signature = self.signer.sign(&proposal_bytes)?;
        Ok(SignedCall {
            header,
            signed: SignedProposal {
                proposal_bytes,
                signature,
            },
        })
    }

    /// Asks one peer to endorse; a contract error becomes an error naming the peer.
    pub async fn endorse_one(
        &self,
        peer: &str,
        call: &SignedCall,
    ) -> anyhow::Result<ProposalResponse> {
        let mut endorser = self.endorser(peer)?;
        let resp =
            tokio::time::timeout(CALL_TIMEOUT, endorser.process_proposal(call.signed.clone()))
                .await
                .map_err(|_| anyhow::anyhow!("peer {peer} did not answer within {CALL_TIMEOUT:?}"))?
                .map_err(|s| anyhow::anyhow!("peer {peer}: {}", s.message()))?
                .into_inner();
        let r = resp.response.clone().unwrap_or_default();
        if r.status >= 400 {
            bail!("peer {peer}: contract error ({}): {}", r.status, r.message);
        }
        if resp.endorsement.is_none() || resp.payload.is_empty() {
            bail!("peer {peer} answered without an endorsement");
        }
        // A response for another proposal would only fail later, at validation.
        let payload = ProposalResponsePayload::decode(&resp.payload[..])
            .map_err(|e| anyhow::anyhow!("peer {peer} sent an undecodable response: {e}"))?;
        if payload.proposal_hash != digest(&SHA256, &call.signed.proposal_bytes).as_ref() {
            bail!("peer {peer} endorsed a different proposal");
        }
        Ok(resp)
    }

    /// Endorsements from every peer in `peers`, asked at once.
    pub async fn endorse(
        &self,
        peers: &[String],
        call: &SignedCall,
    ) -> anyhow::Result<Vec<ProposalResponse>> {
        if peers.is_empty() {
            bail!("no peers to endorse: give at least one --peer");
        }
        join_all(peers.iter().map(|p| self.endorse_one(p, call)))
            .await
            .into_iter()
            .collect()
    }

    /// The signed transaction envelope from a proposal and its endorsements, which must all
    /// sign the same result.
    pub fn endorsed_envelope(
        &self,
        call: &SignedCall,
        responses: &[ProposalResponse],
        peers: &[String],
    ) -> anyhow::Result<Envelope> {
        let first = responses.first().context("no endorsements")?;
        for (i, r) in responses.iter().enumerate().skip(1) {
            if r.payload != first.payload {
                bail!(
                    "peers {} and {} returned different results (their states differ, or one is behind); retry, or endorse with peers that are in sync",
                    peers.first().map(String::as_str).unwrap_or("?"),
                    peers.get(i).map(String::as_str).unwrap_or("?"),
                );
            }
        }
        let tx = Transaction {
            proposal_bytes: call.signed.proposal_bytes.clone(),
            response_payload: first.payload.clone(),
            endorsements: responses
                .iter()
                .filter_map(|r| r.endorsement.clone())
                .collect(),
        };
        self.sign_envelope(call.header.clone(), tx.encode_to_vec())
    }

    /// Outcomes of committed blocks from peer `addr`, from `start` (default: the next block).
    pub async fn commit_events(
        &self,
        addr: &str,
        channel: &str,
        start: Option<u64>,
    ) -> anyhow::Result<tonic::Streaming<FilteredBlock>> {
        Ok(EventsClient::new(self.channel(addr)?)
            .commit_events(crate::signed_request::sign(
                CommitEventsRequest {
                    channel_id: channel.to_string(),
                    start,
                    signature: None,
                },
                &self.signer,
                &self.tls.cert_pem,
            )?)
            .await
            .map_err(|s| anyhow::anyhow!("peer {addr}: {}", s.message()))?
            .into_inner())
    }

    /// Sends an envelope to the first orderer of `orderers` that accepts it.
    pub async fn order(&self, orderers: &[String], env: &Envelope) -> anyhow::Result<()> {
        let mut errors = Vec::new();
        for o in orderers {
            let sent = tokio::time::timeout(CALL_TIMEOUT, self.broadcast(o, vec![env.clone()]))
                .await
                .unwrap_or_else(|_| Err(anyhow::anyhow!("no answer within {CALL_TIMEOUT:?}")));
            match sent {
                Ok(r) if r[0].status == Status::Success as i32 => return Ok(()),
                Ok(r) => {
                    let s = Status::try_from(r[0].status).unwrap_or(Status::Unspecified);
                    // Refusals of the transaction itself are the same on every orderer.
                    if !matches!(s, Status::ServiceUnavailable | Status::InternalServerError) {
                        bail!(
                            "orderer {o} refused the transaction: {} {}",
                            s.as_str_name(),
                            r[0].info
                        );
                    }
                    errors.push(format!("{o}: {} {}", s.as_str_name(), r[0].info));
                }
                Err(e) => errors.push(format!("{o}: {}", short_reason(&e))),
            }
        }
        bail!(
            "the ordering service is unavailable (no Raft leader, or no orderer reachable): {}",
            errors.join("; ")
        )
    }

    /// Endorses on `peers`, orders through `orderers`, and waits up to `timeout` for every
    /// one of those peers to report the transaction's outcome.
    pub async fn submit_transaction(
        &self,
        peers: &[String],
        orderers: &[String],
        channel: &str,
        chaincode: &str,
        args: &[String],
        timeout: Duration,
    ) -> anyhow::Result<Outcome> {
        self.submit_transaction_retrying(
            peers,
            orderers,
            channel,
            chaincode,
            args,
            timeout,
            Duration::ZERO,
        )
        .await
    }

    /// Like [`Client::submit_transaction`], but while the ordering service is unavailable
    /// (an election) the same envelope is sent again for up to `retry_for`. Resending the
    /// same transaction is safe where a new one is not: an attempt answered "unavailable" may
    /// still have been ordered, and orderers and peers drop a second copy of one tx id, while
    /// a freshly endorsed retry would be a second transaction.
    #[allow(clippy::too_many_arguments)]
    pub async fn submit_transaction_retrying(
        &self,
        peers: &[String],
        orderers: &[String],
        channel: &str,
        chaincode: &str,
        args: &[String],
        timeout: Duration,
        retry_for: Duration,
    ) -> anyhow::Result<Outcome> {
        let call = self.proposal(channel, chaincode, args)?;
        let responses = self.endorse(peers, &call).await?;
        let env = self.endorsed_envelope(&call, &responses, peers)?;
        // Listen before ordering, so that the commit cannot be missed. Every endorsing peer
        // is waited for, so that a query right after sees the new state on any of them.
        let mut streams = Vec::new();
        for p in peers {
            streams.push(self.commit_events(p, channel, None).await?);
        }
        let started = std::time::Instant::now();
        loop {
            match self.order(orderers, &env).await {
                Ok(()) => break,
                Err(e)
                    if started.elapsed() < retry_for
                        && format!("{e:#}").contains("unavailable") =>
                {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => return Err(e),
            }
        }
        let tx_id = call.tx_id();
        let outcomes = join_all(peers.iter().zip(streams).map(|(p, events)| async move {
            wait_for(events, tx_id, timeout)
                .await
                .with_context(|| format!("waiting for transaction {tx_id} on {p}"))
        }))
        .await;
        let mut outcomes = outcomes.into_iter().collect::<anyhow::Result<Vec<_>>>()?;
        let first = outcomes.remove(0);
        if let Some(other) = outcomes.iter().find(|o| o.code != first.code) {
            bail!(
                "peers disagree on transaction {tx_id}: {} and {}",
                first.code.as_str_name(),
                other.code.as_str_name()
            );
        }
        Ok(first)
    }

    /// Runs a read-only call on one peer and returns the contract's answer (nothing is
    /// ordered).
    pub async fn query(
        &self,
        peer: &str,
        channel: &str,
        chaincode: &str,
        args: &[String],
    ) -> anyhow::Result<Vec<u8>> {
        let call = self.proposal(channel, chaincode, args)?;
        let resp = self.endorse_one(peer, &call).await?;
        Ok(resp.response.unwrap_or_default().payload)
    }
}

/// A transport failure in a few words ("unreachable (tcp connect error)") instead of the
/// whole chain of causes.
fn short_reason(e: &anyhow::Error) -> String {
    match e.chain().find_map(|c| c.downcast_ref::<tonic::Status>()) {
        Some(s) if s.code() == tonic::Code::Unavailable => format!("unreachable ({})", s.message()),
        Some(s) => s.message().to_string(),
        None => format!("{e:#}"),
    }
}

/// Reads commit events until `tx_id` shows up.
pub async fn wait_for(
    mut events: tonic::Streaming<FilteredBlock>,
    tx_id: &str,
    timeout: Duration,
) -> anyhow::Result<Outcome> {
    let found = tokio::time::timeout(timeout, async {
        while let Some(fb) = events.message().await? {
            if let Some(t) = fb.transactions.iter().find(|t| t.tx_id == tx_id) {
                return Ok(Outcome {
                    tx_id: tx_id.to_string(),
                    block: fb.number,
                    code: TxValidationCode::try_from(t.code)
                        .unwrap_or(TxValidationCode::InvalidOtherReason),
                });
            }
        }
        bail!("the peer closed the event stream")
    })
    .await;
    match found {
        Ok(r) => r,
        Err(_) => bail!("not committed within {timeout:?}"),
    }
}
