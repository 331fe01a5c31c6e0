//! The admin API of a peer: channel participation and live status, the same service the
//! orderers serve. Every call needs a TLS client certificate with OU=admin from the peer's
//! own organisation.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::channel::{PeerChannel, PeerStatus};
use super::registrar::PeerRegistrar;
use crate::adminapi::{authorize, genesis_of, join, node_info, status_stream, StatusStream};
use crate::proto::admin::{
    admin_server, ChannelInfo, ChannelStatus, ChannelStatusRequest, JoinChannelRequest,
    ListChannelsRequest, ListChannelsResponse, NodeInfoRequest, NodeInfoResponse,
    TransferLeadershipRequest, TransferLeadershipResponse,
};

pub struct PeerAdmin {
    pub reg: Arc<PeerRegistrar>,
}

impl PeerAdmin {
    fn authorize<T>(&self, req: &Request<T>) -> Result<(), Status> {
        authorize(&self.reg.own_org, &self.reg.msp_id, req)
    }

    fn channel(&self, id: &str) -> Result<Arc<PeerChannel>, Status> {
        self.reg.get(id).ok_or_else(|| {
            Status::not_found(format!("channel {id:?} is not joined on {}", self.reg.name))
        })
    }
}

fn info(ch: &PeerChannel) -> ChannelInfo {
    ChannelInfo {
        channel_id: ch.channel_id().to_string(),
        height: ch.store.height(),
        consenter: false,
    }
}

fn to_proto(ch: &PeerChannel, node: &str, s: &PeerStatus) -> ChannelStatus {
    ChannelStatus {
        channel_id: ch.channel_id().to_string(),
        node_name: node.to_string(),
        height: s.height,
        last_block_hash: s.last_hash.clone(),
        commit_hash: s.commit_hash.clone(),
        orderer_endpoint: s.orderer.clone(),
        commit_error: s.commit_error.clone(),
        ..Default::default()
    }
}

#[tonic::async_trait]
impl admin_server::Admin for PeerAdmin {
    async fn join_channel(
        &self,
        req: Request<JoinChannelRequest>,
    ) -> Result<Response<ChannelInfo>, Status> {
        self.authorize(&req)?;
        let block = genesis_of(&req.into_inner().genesis_block)?;
        let reg = self.reg.clone();
        let ch = join(move || reg.join(block)).await?;
        tracing::info!(channel = ch.channel_id(), peer = %self.reg.name, "joined channel");
        Ok(Response::new(info(&ch)))
    }

    async fn list_channels(
        &self,
        req: Request<ListChannelsRequest>,
    ) -> Result<Response<ListChannelsResponse>, Status> {
        self.authorize(&req)?;
        Ok(Response::new(ListChannelsResponse {
            channels: self.reg.list().iter().map(|c| info(c)).collect(),
        }))
    }

    async fn channel_status(
        &self,
        req: Request<ChannelStatusRequest>,
    ) -> Result<Response<ChannelStatus>, Status> {
        self.authorize(&req)?;
        let ch = self.channel(&req.get_ref().channel_id)?;
        Ok(Response::new(to_proto(&ch, &self.reg.name, &ch.status())))
    }

    type WatchStatusStream = StatusStream;

    async fn watch_status(
        &self,
        req: Request<ChannelStatusRequest>,
    ) -> Result<Response<StatusStream>, Status> {
        self.authorize(&req)?;
        let ch = self.channel(&req.get_ref().channel_id)?;
        let name = self.reg.name.clone();
        let rx = ch.watch_status();
        Ok(Response::new(status_stream(rx, move |s| {
            to_proto(&ch, &name, s)
        })))
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
            "peer",
            &r.tls_cert_pem(),
            r.signer.cert_pem(),
            r.list().iter().map(|c| c.channel_id().to_string()),
        )))
    }

    async fn transfer_leadership(
        &self,
        req: Request<TransferLeadershipRequest>,
    ) -> Result<Response<TransferLeadershipResponse>, Status> {
        self.authorize(&req)?;
        Err(Status::failed_precondition(
            "peers take no part in Raft: call TransferLeadership on the channel's leading orderer",
        ))
    }
}
