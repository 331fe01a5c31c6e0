//! The admin API: channel participation and live status. Every call needs a TLS client
//! certificate with OU=admin from the node's own organisation.

use std::sync::Arc;

use futures::StreamExt;
use tonic::{Request, Response, Status};

use super::handoff::TransferError;
use super::registrar::Registrar;
use crate::adminapi::{authorize, genesis_of, join, node_info, status_stream, StatusStream};
use crate::proto::admin::{
    admin_server, ChannelInfo, ChannelStatus, ChannelStatusRequest, JoinChannelRequest,
    ListChannelsRequest, ListChannelsResponse, NodeInfoRequest, NodeInfoResponse, Role,
    TransferLeadershipRequest, TransferLeadershipResponse,
};

pub struct AdminService {
    pub reg: Arc<Registrar>,
}

impl AdminService {
    fn authorize<T>(&self, req: &Request<T>) -> Result<(), Status> {
        authorize(&self.reg.own_org, &self.reg.msp_id, req)
    }

    fn chain(&self, channel: &str) -> Result<Arc<super::chain::ChainHandle>, Status> {
        self.reg
            .get(channel)
            .ok_or_else(|| match self.reg.broken(channel) {
                Some(reason) => Status::unavailable(broken_message(&reason)),
                None => Status::not_found(format!(
                    "channel {channel:?} is not joined on {}",
                    self.reg.name
                )),
            })
    }

    /// The status of a channel that could not be opened at start-up: halted, with why.
    fn broken_status(&self, channel: &str) -> Option<ChannelStatus> {
        let reason = self.reg.broken(channel)?;
        Some(ChannelStatus {
            channel_id: channel.to_string(),
            node_name: self.reg.name.clone(),
            role: Role::Halted as i32,
            halt_error: broken_message(&reason),
            ..ChannelStatus::default()
        })
    }
}

fn broken_message(reason: &str) -> String {
    format!("the channel could not be opened at start-up: {reason}")
}

/// A consenter named by name (`orderer3`) or id (`3`).
fn consenter_id(chain: &super::chain::ChainHandle, target: &str) -> Result<u64, Status> {
    chain
        .config
        .consenters
        .iter()
        .find(|c| c.name == target || c.id.to_string() == target)
        .map(|c| c.id)
        .ok_or_else(|| {
            let names: Vec<&str> = chain
                .config
                .consenters
                .iter()
                .map(|c| c.name.as_str())
                .collect();
            Status::invalid_argument(format!(
                "{target:?} is not a consenter of channel {}; its consenters are {}",
                chain.channel_id(),
                names.join(", ")
            ))
        })
}

fn transfer_status(e: TransferError, chain: &super::chain::ChainHandle) -> Status {
    let name = |id: u64| {
        chain
            .consenter_name(id)
            .map_or_else(|| id.to_string(), str::to_string)
    };
    let msg = match &e {
        TransferError::NotLeader(id) if *id != 0 => format!(
            "this orderer does not lead channel {}; {} does: call it there",
            chain.channel_id(),
            name(*id)
        ),
        TransferError::TargetInactive(id) => format!(
            "{} is not active (not heard from within an election timeout)",
            name(*id)
        ),
        _ => e.to_string(),
    };
    match e {
        TransferError::UnknownTarget(_) => Status::invalid_argument(msg),
        TransferError::TimedOut { .. } => Status::deadline_exceeded(msg),
        TransferError::Halted(_) => Status::unavailable(msg),
        _ => Status::failed_precondition(msg),
    }
}

fn info(chain: &super::chain::ChainHandle) -> ChannelInfo {
    ChannelInfo {
        channel_id: chain.channel_id().to_string(),
        height: chain.store.height(),
        consenter: true,
    }
}

#[tonic::async_trait]
impl admin_server::Admin for AdminService {
    async fn join_channel(
        &self,
        req: Request<JoinChannelRequest>,
    ) -> Result<Response<ChannelInfo>, Status> {
        self.authorize(&req)?;
        let block = genesis_of(&req.into_inner().genesis_block)?;
        let reg = self.reg.clone();
        let chain = join(move || reg.join(block)).await?;
        tracing::info!(channel = chain.channel_id(), node = %self.reg.name, "joined channel");
        Ok(Response::new(info(&chain)))
    }

    async fn list_channels(
        &self,
        req: Request<ListChannelsRequest>,
    ) -> Result<Response<ListChannelsResponse>, Status> {
        self.authorize(&req)?;
        let mut channels: Vec<ChannelInfo> = self.reg.list().iter().map(|c| info(c)).collect();
        channels.extend(self.reg.broken_channels().into_iter().map(|c| ChannelInfo {
            channel_id: c,
            height: 0,
            consenter: true,
        }));
        Ok(Response::new(ListChannelsResponse { channels }))
    }

    async fn channel_status(
        &self,
        req: Request<ChannelStatusRequest>,
    ) -> Result<Response<ChannelStatus>, Status> {
        self.authorize(&req)?;
        if let Some(status) = self.broken_status(&req.get_ref().channel_id) {
            return Ok(Response::new(status));
        }
        let chain = self.chain(&req.get_ref().channel_id)?;
        Ok(Response::new(chain.status().to_proto(
            &chain.config,
            chain.node_id,
            &chain.node_name,
            &chain.contacts,
        )))
    }

    type WatchStatusStream = StatusStream;

    async fn watch_status(
        &self,
        req: Request<ChannelStatusRequest>,
    ) -> Result<Response<StatusStream>, Status> {
        self.authorize(&req)?;
        if let Some(status) = self.broken_status(&req.get_ref().channel_id) {
            // It stays as it is until a restart: one answer, and the stream stays open.
            let once = futures::stream::once(async move { Ok(status) });
            return Ok(Response::new(Box::pin(
                once.chain(futures::stream::pending()),
            )));
        }
        let chain = self.chain(&req.get_ref().channel_id)?;
        let rx = chain.watch_status();
        let stream = status_stream(rx, move |s| {
            s.to_proto(
                &chain.config,
                chain.node_id,
                &chain.node_name,
                &chain.contacts,
            )
        });
        Ok(Response::new(stream))
    }

    async fn node_info(
        &self,
        req: Request<NodeInfoRequest>,
    ) -> Result<Response<NodeInfoResponse>, Status> {
        self.authorize(&req)?;
        let r = &self.reg;
        Ok(Response::new(node_info(
            &r.name,
            &r.msp_id,
            "orderer",
            r.tls_der(),
            r.signer.cert_pem(),
            r.list()
                .iter()
                .map(|c| c.channel_id().to_string())
                .chain(r.broken_channels()),
        )))
    }

    async fn transfer_leadership(
        &self,
        req: Request<TransferLeadershipRequest>,
    ) -> Result<Response<TransferLeadershipResponse>, Status> {
        self.authorize(&req)?;
        let req = req.into_inner();
        let chain = self.chain(&req.channel_id)?;
        let target = match req.target.as_str() {
            "" => None,
            t => Some(consenter_id(&chain, t)?),
        };
        let done = chain
            .transfer_leadership(target)
            .await
            .map_err(|_| Status::unavailable("the chain stopped"))?
            .map_err(|e| transfer_status(e, &chain))?;
        let name = |id| chain.consenter_name(id).unwrap_or_default().to_string();
        Ok(Response::new(TransferLeadershipResponse {
            channel_id: req.channel_id,
            previous_leader: name(done.from),
            new_leader: name(done.to),
            term: done.term,
            elapsed_ms: done.elapsed.as_millis() as u64,
        }))
    }
}
