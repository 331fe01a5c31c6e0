//! Deploying a contract from the client side: the `_lifecycle` call that `raftnet chaincode
//! deploy`, `raftnet up` and the operator make (see `peer::lifecycle` for what peers check).

use std::time::Duration;

use crate::client::Client;
use crate::proto::peer::ChaincodeDefinition;

/// The namespace (and pseudo-contract) of contract definitions.
pub const LIFECYCLE: &str = "_lifecycle";
/// The lifecycle function that deploys a contract.
pub const DEPLOY: &str = "deploy";

/// The arguments of a deploy proposal.
pub fn deploy_args(def: &ChaincodeDefinition, init: &[String]) -> Vec<String> {
    vec![
        DEPLOY.to_string(),
        def.name.clone(),
        def.version.clone(),
        def.contract.clone(),
        def.endorsement_policy.clone(),
        serde_json::to_string(init).expect("strings serialise"),
    ]
}

/// What a deploy did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Deployed {
    /// This call deployed the contract.
    Now,
    /// It was deployed before (the endorsers say so).
    Already,
}

/// Deploys `def` with `init` on `channel`: endorsed on `endorsers` (one peer of each
/// organisation its policy needs), ordered through `orderers`, waited for up to `timeout`.
/// `client` must be an admin the channel's Admins policy admits.
pub async fn deploy(
    client: &Client,
    endorsers: &[String],
    orderers: &[String],
    channel: &str,
    def: &ChaincodeDefinition,
    init: &[String],
    timeout: Duration,
) -> anyhow::Result<Deployed> {
    let outcome = client
        .submit_transaction(
            endorsers,
            orderers,
            channel,
            LIFECYCLE,
            &deploy_args(def, init),
            timeout,
        )
        .await;
    match outcome {
        Ok(o) if o.is_valid() => Ok(Deployed::Now),
        Ok(o) => anyhow::bail!(
            "deploying {} on {channel}: committed as {}",
            def.name,
            o.code.as_str_name()
        ),
        // The endorsers refuse a second deploy of the same contract, naming it.
        Err(e) if format!("{e:#}").contains("already deployed") => Ok(Deployed::Already),
        Err(e) => Err(e),
    }
}
