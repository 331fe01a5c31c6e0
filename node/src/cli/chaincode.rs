//! `raftnet chaincode deploy|invoke|query`: Fabric's `peer chaincode` commands, with its flag
//! names (`-C`, `-n`, `-c`, `--peerAddresses`, `-o`). In these commands `-o` is the orderer,
//! as in Fabric, so the output format is the long `--output`.

use std::time::Duration;

use anyhow::bail;
use clap::{Args, Subcommand};
use serde_json::{json, Value};

use super::{non_empty, Format, IdentityArg};
use crate::chaincode::{builtin, BUILTIN};
use crate::gateway::Outcome;
use crate::peer::lifecycle::{check_name, deploy_args, parse_policy, LIFECYCLE};
use crate::proto::peer::{ChaincodeDefinition, TxValidationCode};

#[derive(Subcommand)]
pub enum ChaincodeCommand {
    /// Deploy a built-in contract on a channel with an endorsement policy (needs an org admin).
    Deploy(DeployArgs),
    /// Endorse a call on peers, order it, and wait until it is committed.
    Invoke(InvokeArgs),
    /// Run a read-only call on one peer and print its answer (nothing is ordered).
    Query(QueryArgs),
}

/// Which contract on which channel.
#[derive(Args)]
pub struct ContractArg {
    /// Channel name.
    #[arg(
        short = 'C',
        long = "channelID",
        visible_alias = "channel",
        value_name = "CHANNEL"
    )]
    pub channel: String,
    /// Contract (chaincode) name, as deployed.
    #[arg(short = 'n', long, value_name = "NAME", value_parser = parse_name)]
    pub name: String,
}

/// Where a transaction is endorsed and ordered, and how long to wait for its commit.
#[derive(Args)]
pub struct SubmitArg {
    /// Endorsing peers (repeat, or comma-separated); the first reports the commit.
    #[arg(
        long = "peer",
        visible_alias = "peerAddresses",
        value_name = "ADDR",
        env = "CORE_PEER_ADDRESS",
        value_delimiter = ',',
        required = true
    )]
    pub peers: Vec<String>,
    /// Orderers (repeat, or comma-separated); the first that accepts the transaction orders it.
    #[arg(
        short = 'o',
        long = "orderer",
        value_name = "ADDR",
        env = "ORDERER_ADDRESS",
        value_delimiter = ',',
        required = true
    )]
    pub orderers: Vec<String>,
    /// How long to wait for the commit (e.g. 30s, 2m).
    #[arg(
        long,
        visible_alias = "waitForEventTimeout",
        value_name = "DURATION",
        value_parser = humantime::parse_duration,
        default_value = "30s"
    )]
    pub wait_timeout: Duration,
}

#[derive(Args)]
pub struct DeployArgs {
    #[command(flatten)]
    pub contract: ContractArg,
    /// Built-in contract to run.
    #[arg(long = "contract", value_name = "CONTRACT", value_parser = parse_contract)]
    pub code: String,
    /// Version label of this definition.
    #[arg(short = 'v', long, default_value = "1.0")]
    pub version: String,
    /// Endorsement policy, e.g. "AND('Org1MSP.peer','Org2MSP.peer')".
    #[arg(
        short = 'P',
        long,
        visible_alias = "signature-policy",
        value_name = "POLICY",
        value_parser = parse_policy_arg
    )]
    pub policy: String,
    /// Arguments of the contract's init, as a JSON array of strings.
    #[arg(long, value_name = "JSON", default_value = "[]", value_parser = parse_init)]
    pub init: InitArgs,
    #[command(flatten)]
    pub submit: SubmitArg,
    #[command(flatten)]
    pub identity: IdentityArg,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub output: Format,
}

#[derive(Args)]
pub struct InvokeArgs {
    #[command(flatten)]
    pub contract: ContractArg,
    /// The call: {"Args":["fn","arg",...]}, {"function":"fn","Args":[...]} or ["fn","arg",...].
    #[arg(short = 'c', long, value_name = "JSON", value_parser = parse_ctor)]
    pub ctor: Ctor,
    #[command(flatten)]
    pub submit: SubmitArg,
    #[command(flatten)]
    pub identity: IdentityArg,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub output: Format,
}

#[derive(Args)]
pub struct QueryArgs {
    #[command(flatten)]
    pub contract: ContractArg,
    /// The call: {"Args":["fn","arg",...]}, {"function":"fn","Args":[...]} or ["fn","arg",...].
    #[arg(short = 'c', long, value_name = "JSON", value_parser = parse_ctor)]
    pub ctor: Ctor,
    /// The peer to ask.
    #[arg(
        long = "peer",
        visible_alias = "peerAddresses",
        value_name = "ADDR",
        env = "CORE_PEER_ADDRESS"
    )]
    pub peer: String,
    #[command(flatten)]
    pub identity: IdentityArg,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub output: Format,
}

/// A contract call's arguments, function first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ctor(pub Vec<String>);

/// Init arguments (may be empty).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InitArgs(pub Vec<String>);

const CTOR_FORMS: &str = r#"expected {"Args":["fn","arg1",...]}, {"function":"fn","Args":["arg1",...]} or ["fn","arg1",...]"#;

/// Parses `-c/--ctor` in the forms Fabric accepts, plus a plain JSON array. Keys are matched
/// without regard to case, as Fabric's Go JSON decoding does (`"args"` works too).
pub fn parse_ctor(text: &str) -> Result<Ctor, String> {
    let value: Value =
        serde_json::from_str(text).map_err(|e| format!("not JSON ({e}); {CTOR_FORMS}"))?;
    let args = match value {
        Value::Array(items) => strings(items)?,
        Value::Object(map) => {
            let mut function = None;
            let mut args = Vec::new();
            for (key, v) in map {
                match (key.to_ascii_lowercase().as_str(), v) {
                    ("function", Value::String(f)) => function = Some(f),
                    ("args", Value::Array(items)) => args = strings(items)?,
                    ("function", _) => {
                        return Err(format!("\"function\" must be a string; {CTOR_FORMS}"))
                    }
                    ("args", _) => {
                        return Err(format!(
                            "\"Args\" must be an array of strings; {CTOR_FORMS}"
                        ))
                    }
                    _ => return Err(format!("unknown key {key:?}; {CTOR_FORMS}")),
                }
            }
            function.into_iter().chain(args).collect()
        }
        _ => return Err(CTOR_FORMS.to_string()),
    };
    if args.is_empty() {
        return Err(format!("no function to call; {CTOR_FORMS}"));
    }
    Ok(Ctor(args))
}

/// Contract arguments are strings; a number is refused rather than guessed at ("10" vs 10.0).
fn strings(items: Vec<Value>) -> Result<Vec<String>, String> {
    items
        .into_iter()
        .map(|v| match v {
            Value::String(s) => Ok(s),
            other => Err(format!(
                "arguments must be strings: write \"{}\" in quotes; {CTOR_FORMS}",
                other.to_string().trim_matches('"')
            )),
        })
        .collect()
}

fn parse_init(text: &str) -> Result<InitArgs, String> {
    let items: Vec<Value> = serde_json::from_str(text)
        .map_err(|e| format!(r#"not a JSON array ({e}); expected e.g. ["a","100","b","200"]"#))?;
    Ok(InitArgs(strings(items)?))
}

fn parse_name(text: &str) -> Result<String, String> {
    check_name(text).map(|()| text.to_string())
}

fn parse_contract(text: &str) -> Result<String, String> {
    match builtin(text) {
        Some(_) => Ok(text.to_string()),
        None => Err(format!(
            "unknown contract; the built-in contracts are {}",
            BUILTIN.join(", ")
        )),
    }
}

/// Checked here so that a typo is reported against the flag, before anything is signed.
fn parse_policy_arg(text: &str) -> Result<String, String> {
    parse_policy(text).map(|_| text.to_string())
}

pub async fn run(c: ChaincodeCommand) -> anyhow::Result<()> {
    match c {
        ChaincodeCommand::Deploy(a) => deploy(a).await,
        ChaincodeCommand::Invoke(a) => invoke(a).await,
        ChaincodeCommand::Query(a) => query(a).await,
    }
}

/// The peers and orderers of a submission, with empty entries dropped and `-o json` (a habit
/// from the other commands, where `-o` is the output format) caught before it is dialled.
fn addresses(s: &SubmitArg) -> anyhow::Result<(Vec<String>, Vec<String>)> {
    let peers = non_empty(s.peers.clone());
    let orderers = non_empty(s.orderers.clone());
    if let Some(f) = orderers.iter().find(|o| *o == "json" || *o == "table") {
        bail!(
            "-o/--orderer {f:?} is not an address: in chaincode commands -o is the orderer, as in Fabric; for {f} output use --output {f}"
        );
    }
    if peers.is_empty() {
        bail!("no peers: pass --peer ADDR (or --peerAddresses), once for each endorsing peer");
    }
    if orderers.is_empty() {
        bail!("no orderers: pass -o/--orderer ADDR (or set ORDERER_ADDRESS)");
    }
    Ok((peers, orderers))
}

async fn deploy(a: DeployArgs) -> anyhow::Result<()> {
    let (peers, orderers) = addresses(&a.submit)?;
    let client = a.identity.client()?;
    let def = ChaincodeDefinition {
        name: a.contract.name.clone(),
        version: a.version.clone(),
        contract: a.code.clone(),
        endorsement_policy: a.policy.clone(),
    };
    let outcome = client
        .submit_transaction(
            &peers,
            &orderers,
            &a.contract.channel,
            LIFECYCLE,
            &deploy_args(&def, &a.init.0),
            a.submit.wait_timeout,
        )
        .await?;
    if outcome.is_valid() && matches!(a.output, Format::Table) {
        println!(
            "contract {} {} ({}) deployed on channel {}",
            def.name, def.version, def.contract, a.contract.channel
        );
    }
    report(&outcome, a.output)
}

async fn invoke(a: InvokeArgs) -> anyhow::Result<()> {
    let (peers, orderers) = addresses(&a.submit)?;
    let client = a.identity.client()?;
    let outcome = client
        .submit_transaction(
            &peers,
            &orderers,
            &a.contract.channel,
            &a.contract.name,
            &a.ctor.0,
            a.submit.wait_timeout,
        )
        .await?;
    report(&outcome, a.output)
}

async fn query(a: QueryArgs) -> anyhow::Result<()> {
    let client = a.identity.client()?;
    let payload = client
        .query(&a.peer, &a.contract.channel, &a.contract.name, &a.ctor.0)
        .await?;
    // Contracts answer bytes; most answer text, which is printed as is.
    let (text, encoding) = match String::from_utf8(payload) {
        Ok(s) => (s, "utf8"),
        Err(e) => (hex::encode(e.as_bytes()), "hex"),
    };
    match a.output {
        Format::Table => println!("{text}"),
        Format::Json => println!("{}", json!({"payload": text, "encoding": encoding})),
    }
    Ok(())
}

/// Prints how a transaction ended; an invalid transaction is an error (non-zero exit), with
/// what to do about it for the codes users meet.
fn report(o: &Outcome, output: Format) -> anyhow::Result<()> {
    let code = o.code.as_str_name();
    match output {
        Format::Table => println!(
            "transaction {} committed in block {}: {code}",
            o.tx_id, o.block
        ),
        Format::Json => println!(
            "{}",
            json!({"tx_id": o.tx_id, "block": o.block, "code": code, "valid": o.is_valid()})
        ),
    }
    if o.is_valid() {
        return Ok(());
    }
    match explain(o.code) {
        Some(why) => bail!("transaction {} is invalid ({code}): {why}", o.tx_id),
        None => bail!("transaction {} is invalid ({code})", o.tx_id),
    }
}

/// One line on the validation codes a CLI user can act on.
pub fn explain(code: TxValidationCode) -> Option<&'static str> {
    use TxValidationCode as C;
    Some(match code {
        C::EndorsementPolicyFailure => "the endorsements do not satisfy the contract's endorsement policy; endorse on peers of every organisation the policy names (one --peer each)",
        C::MvccReadConflict => "a key it read changed before it committed (another transaction wrote it first); retry",
        C::PhantomReadConflict => "a range of keys it read changed before it committed; retry",
        C::DuplicateTxid => "a transaction with the same id was committed before",
        C::InvalidChaincode => "the contract is not deployed on this channel, or its definition changed since endorsement; check -n/--name and -C/--channelID",
        C::BadCreatorSignature => "the creator's signature does not verify, or the creator is not a member of the channel",
        C::InvalidEndorserTransaction => "the endorsements are not valid for this transaction",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Ctor {
        Ctor(v.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn ctor_forms() {
        let want = args(&["invoke", "a", "b", "10"]);
        assert_eq!(
            parse_ctor(r#"{"Args":["invoke","a","b","10"]}"#).unwrap(),
            want
        );
        assert_eq!(
            parse_ctor(r#"{"function":"invoke","Args":["a","b","10"]}"#).unwrap(),
            want
        );
        assert_eq!(
            parse_ctor(r#"{"args":["invoke","a","b","10"]}"#).unwrap(),
            want
        );
        assert_eq!(parse_ctor(r#"["invoke","a","b","10"]"#).unwrap(), want);
    }

    #[test]
    fn ctor_errors_show_the_forms() {
        for bad in [
            "not json",
            r#"{"Args":[]}"#,
            r#"{"Arg":["q"]}"#,
            r#"["q",1]"#,
            "42",
        ] {
            let e = parse_ctor(bad).unwrap_err();
            assert!(e.contains(r#"{"Args""#), "{bad}: {e}");
        }
    }

    #[test]
    fn init_args() {
        assert_eq!(parse_init("[]").unwrap(), InitArgs(vec![]));
        assert_eq!(
            parse_init(r#"["a","100"]"#).unwrap(),
            InitArgs(vec!["a".into(), "100".into()])
        );
        assert!(parse_init("a,100").is_err());
    }
}
