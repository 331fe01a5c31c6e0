//! What the `raftnet` client, the benchmarks and the tests use to talk to orderers:
//! signed envelopes, broadcast, deliver and the admin API, over mutual TLS.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use futures::Stream;
use prost::Message;
use ring::rand::{SecureRandom, SystemRandom};
use tonic::transport::Channel;

use crate::identity::SigningIdentity;
use crate::ledger::compute_tx_id;
use crate::network::ClientProfile;
use crate::proto::admin::{
    admin_client::AdminClient, ChannelStatus, ChannelStatusRequest, JoinChannelRequest,
    ListChannelsRequest,
};
use crate::proto::common::{Block, ChannelHeader, Envelope, HeaderType, Payload, Status};
use crate::proto::orderer::{
    atomic_broadcast_client::AtomicBroadcastClient, deliver_response, BroadcastResponse,
    DeliverRequest, SeekBehavior,
};
use crate::tls::TlsMaterial;

const MAX_MESSAGE: usize = 256 << 20;

pub struct Client {
    pub signer: SigningIdentity,
    pub tls: TlsMaterial,
    rng: SystemRandom,
    /// One HTTP/2 connection per address, shared by every call (a TLS handshake per call
    /// would cost more than the call).
    channels: Mutex<HashMap<String, Channel>>,
}

impl Client {
    /// A client signing as `signer` and connecting with `tls`.
    pub fn new(signer: SigningIdentity, tls: TlsMaterial) -> Self {
        Self {
            signer,
            tls,
            rng: SystemRandom::new(),
            channels: Mutex::new(HashMap::new()),
        }
    }

    pub fn from_profile(profile: &ClientProfile) -> anyhow::Result<Self> {
        Ok(Self {
            signer: profile.signer()?,
            tls: profile.tls()?,
            rng: SystemRandom::new(),
            channels: Mutex::new(HashMap::new()),
        })
    }

    pub fn load(path: &std::path::Path) -> anyhow::Result<Self> {
        Self::from_profile(&ClientProfile::load(path)?)
    }

    pub fn channel(&self, addr: &str) -> anyhow::Result<Channel> {
        let mut channels = self.channels.lock().expect("channels");
        if let Some(c) = channels.get(addr) {
            return Ok(c.clone());
        }
        let c = self.tls.channel(addr)?;
        channels.insert(addr.to_string(), c.clone());
        Ok(c)
    }

    pub fn broadcaster(&self, addr: &str) -> anyhow::Result<AtomicBroadcastClient<Channel>> {
        Ok(AtomicBroadcastClient::new(self.channel(addr)?)
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE))
    }

    pub fn admin(&self, addr: &str) -> anyhow::Result<AdminClient<Channel>> {
        Ok(AdminClient::new(self.channel(addr)?)
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE))
    }

    /// A fresh TRANSACTION header for `channel`: a new nonce and the tx id derived from it.
    pub fn header(&self, channel: &str) -> anyhow::Result<ChannelHeader> {
        let mut nonce = [0u8; 24];
        self.rng
            .fill(&mut nonce)
            .map_err(|_| anyhow::anyhow!("no randomness"))?;
        let creator = self.signer.serialize();
        Ok(ChannelHeader {
            r#type: HeaderType::Transaction as i32,
            channel_id: channel.to_string(),
            tx_id: compute_tx_id(&nonce, &creator.cert_pem),
            timestamp_ms: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_millis() as i64)
                .unwrap_or(0),
            nonce: nonce.to_vec(),
            creator: Some(creator),
        })
    }

    /// A signed envelope with this header and data.
    pub fn sign_envelope(&self, header: ChannelHeader, data: Vec<u8>) -> anyhow::Result<Envelope> {
        let payload = Payload {
            header: Some(header),
            data,
        }
        .encode_to_vec();
        let signature = self.signer.sign(&payload)?;
        Ok(Envelope { payload, signature })
    }

    /// A signed TRANSACTION envelope for `channel` carrying `data`; returns it with its tx id.
    pub fn envelope(&self, channel: &str, data: Vec<u8>) -> anyhow::Result<(Envelope, String)> {
        let header = self.header(channel)?;
        let tx_id = header.tx_id.clone();
        Ok((self.sign_envelope(header, data)?, tx_id))
    }

    /// Broadcasts envelopes on one stream; responses come back in order.
    pub async fn broadcast(
        &self,
        addr: &str,
        envs: Vec<Envelope>,
    ) -> anyhow::Result<Vec<BroadcastResponse>> {
        let mut client = self.broadcaster(addr)?;
        let n = envs.len();
        let mut stream = client
            .broadcast(futures::stream::iter(envs))
            .await
            .with_context(|| format!("broadcast to {addr}"))?
            .into_inner();
        let mut out = Vec::with_capacity(n);
        while let Some(r) = stream.message().await? {
            out.push(r);
        }
        if out.len() != n {
            bail!("{addr} answered {} of {n} envelopes", out.len());
        }
        Ok(out)
    }

    /// Blocks `start..=stop`; with `fail_if_not_ready`, stops at the last block written.
    pub async fn deliver(
        &self,
        addr: &str,
        channel: &str,
        start: u64,
        stop: Option<u64>,
        fail_if_not_ready: bool,
    ) -> anyhow::Result<Vec<Block>> {
        let mut blocks = Vec::new();
        let mut stream = self
            .deliver_stream(addr, channel, start, stop, fail_if_not_ready)
            .await?;
        use futures::StreamExt;
        while let Some(item) = stream.next().await {
            match item? {
                DeliverItem::Block(b) => blocks.push(*b),
                DeliverItem::End(Status::Success, _) => break,
                DeliverItem::End(Status::ServiceUnavailable, _) if fail_if_not_ready => break,
                DeliverItem::End(s, info) => {
                    bail!("deliver from {addr} ended with {}: {info}", s.as_str_name())
                }
            }
        }
        Ok(blocks)
    }

    pub async fn deliver_stream(
        &self,
        addr: &str,
        channel: &str,
        start: u64,
        stop: Option<u64>,
        fail_if_not_ready: bool,
    ) -> anyhow::Result<impl Stream<Item = anyhow::Result<DeliverItem>>> {
        let mut client = self.broadcaster(addr)?;
        let req = DeliverRequest {
            channel_id: channel.to_string(),
            start,
            stop,
            behavior: if fail_if_not_ready {
                SeekBehavior::FailIfNotReady
            } else {
                SeekBehavior::BlockUntilReady
            } as i32,
            signature: None,
        };
        let req = crate::signed_request::sign(req, &self.signer, &self.tls.cert_pem)?;
        let stream = client
            .deliver(req)
            .await
            .with_context(|| format!("deliver from {addr}"))?
            .into_inner();
        use futures::StreamExt;
        Ok(stream.map(|r| {
            let r = r?;
            match r.r#type {
                Some(deliver_response::Type::Block(b)) => Ok(DeliverItem::Block(Box::new(b))),
                Some(deliver_response::Type::Status(s)) => Ok(DeliverItem::End(
                    Status::try_from(s).unwrap_or(Status::Unspecified),
                    r.info,
                )),
                None => bail!("empty deliver response"),
            }
        }))
    }

    pub async fn join(&self, addr: &str, genesis: &[u8]) -> anyhow::Result<()> {
        self.admin(addr)?
            .join_channel(JoinChannelRequest {
                genesis_block: genesis.to_vec(),
            })
            .await
            .map_err(answered_by(addr))?;
        Ok(())
    }

    pub async fn status(&self, addr: &str, channel: &str) -> anyhow::Result<ChannelStatus> {
        Ok(self
            .admin(addr)?
            .channel_status(status_request(channel))
            .await
            .map_err(answered_by(addr))?
            .into_inner())
    }

    /// The channel's status now and on every change.
    pub async fn watch(
        &self,
        addr: &str,
        channel: &str,
    ) -> anyhow::Result<tonic::Streaming<ChannelStatus>> {
        Ok(self
            .admin(addr)?
            .watch_status(status_request(channel))
            .await
            .map_err(answered_by(addr))?
            .into_inner())
    }

    /// Who the node is and when its certificates expire.
    pub async fn node_info(
        &self,
        addr: &str,
    ) -> anyhow::Result<crate::proto::admin::NodeInfoResponse> {
        Ok(self
            .admin(addr)?
            .node_info(crate::proto::admin::NodeInfoRequest {})
            .await
            .map_err(answered_by(addr))?
            .into_inner())
    }

    /// Hands the channel's leadership over, asking the leader; `target` is a consenter's
    /// name, or None for the most caught-up active one. `addr` is any orderer of the
    /// channel: the leader is found through its status.
    pub async fn transfer_leadership(
        &self,
        addr: &str,
        channel: &str,
        target: Option<&str>,
    ) -> anyhow::Result<crate::proto::admin::TransferLeadershipResponse> {
        let status = self.status(addr, channel).await?;
        let leader = status
            .consenters
            .iter()
            .find(|c| c.id == status.leader_id && status.leader_id != 0)
            .with_context(|| {
                format!("{addr}: channel {channel} has no leader now; nothing to hand over")
            })?;
        let endpoint = if leader.id == status.node_id {
            addr.to_string()
        } else {
            leader.endpoint.clone()
        };
        Ok(self
            .admin(&endpoint)?
            .transfer_leadership(crate::proto::admin::TransferLeadershipRequest {
                channel_id: channel.to_string(),
                target: target.unwrap_or_default().to_string(),
            })
            .await
            .map_err(|s| anyhow::anyhow!("{} ({endpoint}): {}", leader.name, s.message()))?
            .into_inner())
    }

    pub async fn list_channels(
        &self,
        addr: &str,
    ) -> anyhow::Result<Vec<crate::proto::admin::ChannelInfo>> {
        Ok(self
            .admin(addr)?
            .list_channels(ListChannelsRequest {})
            .await
            .map_err(answered_by(addr))?
            .into_inner()
            .channels)
    }
}

/// Turns an admin call's refusal into an error naming the orderer.
fn answered_by(addr: &str) -> impl FnOnce(tonic::Status) -> anyhow::Error + '_ {
    move |s| anyhow::anyhow!("{addr}: {}", s.message())
}

fn status_request(channel: &str) -> ChannelStatusRequest {
    ChannelStatusRequest {
        channel_id: channel.to_string(),
    }
}

pub enum DeliverItem {
    Block(Box<Block>),
    End(Status, String),
}
