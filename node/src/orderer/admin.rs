//! The admin API: channel participation and live status. Every call needs a TLS client
//! certificate with OU=admin from the node's own organisation.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::registrar::Registrar;
use crate::adminapi::{authorize, genesis_of, join, status_stream, StatusStream};
use crate::proto::admin::{
    admin_server, ChannelInfo, ChannelStatus, ChannelStatusRequest, JoinChannelRequest,
    ListChannelsRequest, ListChannelsResponse,
};

pub struct AdminService {
    pub reg: Arc<Registrar>,
}

impl AdminService {
    fn authorize<T>(&self, req: &Request<T>) -> Result<(), Status> {
        authorize(&self.reg.own_org, &self.reg.msp_id, req)
    }

    fn chain(&self, channel: &str) -> Result<Arc<super::chain::ChainHandle>, Status> {
        self.reg.get(channel).ok_or_else(|| {
            Status::not_found(format!(
                "channel {channel:?} is not joined on {}",
                self.reg.name
            ))
        })
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
        Ok(Response::new(ListChannelsResponse {
            channels: self.reg.list().iter().map(|c| info(c)).collect(),
        }))
    }

    async fn channel_status(
        &self,
        req: Request<ChannelStatusRequest>,
    ) -> Result<Response<ChannelStatus>, Status> {
        self.authorize(&req)?;
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
}
