//! The contracts a `Channel` lists, deployed once the channel has a leader and its peers have
//! joined: by an admin of the channel's first organisation, endorsed by one peer of each
//! organisation, through the same client code as `raftnet chaincode deploy`. A deploy runs in
//! the background (it waits for a block) and wakes the channel's reconcile when it ends, so a
//! reconcile never waits on it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Secret;
use kube::runtime::events::EventType;
use kube::{Api, ResourceExt};
use raftnet_crds::{Channel, ContractSpec, Network, Peer};
use raftnet_node::client::Client;
use raftnet_node::deploy::{deploy, Deployed};
use raftnet_node::identity::SigningIdentity;
use raftnet_node::proto::peer::ChaincodeDefinition;

use super::address::node_address;
use super::node::network_roots;
use crate::objects::NodeKind;
use crate::pki::{admin_tls, text, user_secret_name, SIGN_CERT, SIGN_KEY};
use crate::{Context, Error, Result};

/// How long one deploy may take (endorse, order, commit).
const DEPLOY_TIMEOUT: Duration = Duration::from_secs(30);
/// Before a failed deploy is tried again.
const RETRY_AFTER: Duration = Duration::from_secs(5);

/// A contract as status lists it: `mycc@1.0`.
pub fn label(contract: &ContractSpec) -> String {
    format!("{}@{}", contract.name, contract.version)
}

#[derive(Clone, Debug)]
enum State {
    Running,
    Done(Deployed),
    Failed(String, Instant),
}

/// Deploys in flight or finished, by namespace, channel and contract label.
#[derive(Default)]
pub struct Deploys(Mutex<HashMap<(String, String, String), State>>);

/// What became of a contract's deploy since the last look.
pub enum Progress {
    /// Deployed (now or before): list it in status.
    Deployed(Deployed),
    /// It failed; the message says why (it is tried again later).
    Failed(String),
    /// Running, or started now.
    Pending,
}

impl Deploys {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String, String), State>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Looks at (and if needed starts) the deploy of `contract` on `channel`.
pub async fn progress(
    ctx: &std::sync::Arc<Context>,
    network: &Network,
    channel: &Channel,
    contract: &ContractSpec,
    consenters: &[String],
    joined: &[String],
) -> Result<Progress> {
    let ns = super::namespace(channel)?;
    let key = (ns.clone(), channel.name_any(), label(contract));
    match ctx.deploys.lock().get(&key) {
        Some(State::Running) => return Ok(Progress::Pending),
        Some(State::Done(d)) => return Ok(Progress::Deployed(*d)),
        Some(State::Failed(message, at)) if at.elapsed() < RETRY_AFTER => {
            return Ok(Progress::Failed(message.clone()))
        }
        _ => {}
    }
    let plan = prepare(ctx, network, channel, contract, consenters, joined).await?;
    ctx.deploys.lock().insert(key.clone(), State::Running);
    let ctx = ctx.clone();
    let channel = channel.clone();
    tokio::spawn(async move {
        let (client, endorsers, orderers, def, init) = plan;
        let result = deploy(
            &client,
            &endorsers,
            &orderers,
            &key.1,
            &def,
            &init,
            DEPLOY_TIMEOUT,
        )
        .await;
        let state = match result {
            Ok(d) => {
                if d == Deployed::Now {
                    let note = format!("deployed {} on channel {}", key.2, key.1);
                    ctx.event(&channel, EventType::Normal, "ContractDeployed", note)
                        .await;
                }
                State::Done(d)
            }
            Err(e) => {
                let message = format!("{e:#}");
                let note = format!("deploying {} on channel {}: {message}", key.2, key.1);
                ctx.event(&channel, EventType::Warning, "DeployFailed", note)
                    .await;
                State::Failed(message, Instant::now())
            }
        };
        ctx.deploys.lock().insert(key.clone(), state);
        ctx.hub.wake_channel(&key.0, &key.1);
    });
    Ok(Progress::Pending)
}

type Plan = (
    Client,
    Vec<String>,
    Vec<String>,
    ChaincodeDefinition,
    Vec<String>,
);

/// Who deploys, who endorses, where to order.
async fn prepare(
    ctx: &Context,
    network: &Network,
    channel: &Channel,
    contract: &ContractSpec,
    consenters: &[String],
    joined: &[String],
) -> Result<Plan> {
    let ns = super::namespace(channel)?;
    let network_name = network.name_any();
    let admin_msp = channel
        .spec
        .organizations
        .first()
        .ok_or_else(|| Error::InvalidSpec("spec.organizations is empty".into()))?;
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &ns);
    let roots = network_roots(ctx, network).await?;
    let admin_name = user_secret_name(&network_name, admin_msp, "admin");
    let admin = secrets
        .get_opt(&admin_name)
        .await?
        .ok_or_else(|| Error::Waiting(format!("Secret {admin_name} does not exist yet")))?;
    let signer = SigningIdentity::from_pem(
        admin_msp,
        text(&admin, SIGN_CERT)?.as_bytes(),
        text(&admin, SIGN_KEY)?.as_bytes(),
    )
    .map_err(Error::pki)?;
    let tls = admin_tls(&secrets, &network_name, admin_msp, &roots).await?;
    let client = Client::new(signer, tls);

    let peers: Api<Peer> = Api::namespaced(ctx.client.clone(), &ns);
    let mut all_peers = peers.list(&Default::default()).await?.items;
    all_peers.sort_by_key(|p| p.name_any());
    let mut endorsers = Vec::new();
    for msp in &channel.spec.organizations {
        let peer = all_peers
            .iter()
            .find(|p| &p.spec.organization == msp && joined.contains(&p.name_any()))
            .ok_or_else(|| Error::Waiting(format!("no peer of {msp} has joined yet")))?;
        endorsers.push(
            node_address(ctx, peer, NodeKind::Peer, false)
                .await?
                .endpoint(),
        );
    }
    let orderers_api: Api<raftnet_crds::Orderer> = Api::namespaced(ctx.client.clone(), &ns);
    let mut orderers = Vec::new();
    for name in consenters {
        if let Some(orderer) = orderers_api.get_opt(name).await? {
            orderers.push(
                node_address(ctx, &orderer, NodeKind::Orderer, false)
                    .await?
                    .endpoint(),
            );
        }
    }
    let def = ChaincodeDefinition {
        name: contract.name.clone(),
        version: contract.version.clone(),
        contract: contract.contract.as_str().to_owned(),
        endorsement_policy: contract.endorsement_policy.clone(),
    };
    Ok((client, endorsers, orderers, def, contract.init.clone()))
}
