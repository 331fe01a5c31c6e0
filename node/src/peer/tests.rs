//! Validation and commit on a real channel ledger (redb) with real certificates and
//! signatures, fed blocks directly: the cases the ordering service would not let through
//! in a live network (it drops recent duplicates) and exact same-block conflicts.

use std::sync::Arc;

use prost::Message;

use super::channel::PeerChannel;
use super::committer::commit_block;
use super::endorser::endorse_on;
use super::lifecycle::{deploy_args, LIFECYCLE};
use crate::client::Client;
use crate::config::NodeConfig;
use crate::identity::{KeyAlgorithm, SigningIdentity};
use crate::ledger::{channel_config, new_block};
use crate::network::ordering::{generate, OrderingSpec};
use crate::proto::common::{Block, Envelope};
use crate::proto::peer::{ChaincodeDefinition, FilteredBlock, TxValidationCode as Code};

struct Fixture {
    dir: tempfile::TempDir,
    genesis: Block,
    ch: Arc<PeerChannel>,
    /// peer0 of Org1 and of Org2.
    peers: Vec<SigningIdentity>,
    client: Client,
    admin: Client,
}

fn fixture() -> Fixture {
    fixture_with(KeyAlgorithm::EcdsaP256)
}

/// Two organisations whose signing identities use `key_algorithm`.
fn fixture_with(key_algorithm: KeyAlgorithm) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let layout = generate(
        &dir.path().join("net"),
        &OrderingSpec {
            orderers: 1,
            orgs: vec!["Org1MSP".into(), "Org2MSP".into()],
            peers_per_org: 1,
            key_algorithm,
            ..OrderingSpec::default()
        },
    )
    .unwrap();
    let genesis = Block::decode(&std::fs::read(&layout.genesis).unwrap()[..]).unwrap();
    let peers = layout
        .peers
        .iter()
        .map(|p| {
            let cfg = NodeConfig::load(&p.config).unwrap();
            let id = cfg.identity.unwrap();
            SigningIdentity::load(&cfg.msp_id, &id.cert, &id.key).unwrap()
        })
        .collect();
    let ch = open(&dir, &genesis);
    Fixture {
        genesis,
        ch,
        peers,
        client: Client::load(&layout.org_clients[0].1).unwrap(),
        admin: Client::load(&layout.org_admins[0].1).unwrap(),
        dir,
    }
}

fn open(dir: &tempfile::TempDir, genesis: &Block) -> Arc<PeerChannel> {
    let cfg = channel_config(genesis).unwrap();
    PeerChannel::open(cfg, &dir.path().join("ledger"), genesis).unwrap()
}

impl Fixture {
    /// An envelope for `args` on `chaincode`, endorsed by both organisations' peers.
    fn tx(&self, by: &Client, chaincode: &str, args: &[&str]) -> (String, Envelope) {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let call = by.proposal(self.ch.channel_id(), chaincode, &args).unwrap();
        let resps: Vec<_> = self
            .peers
            .iter()
            .map(|p| endorse_on(&self.ch, p, call.signed.clone()).unwrap())
            .collect();
        let env = by.endorsed_envelope(&call, &resps, &[]).unwrap();
        (call.tx_id().to_string(), env)
    }

    /// Like [`Fixture::tx`], with the signature of the endorsement of peer `forged` altered.
    fn tx_with_forged_endorsement(&self, args: &[&str], forged: usize) -> Envelope {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let call = self
            .client
            .proposal(self.ch.channel_id(), "mycc", &args)
            .unwrap();
        let mut resps: Vec<_> = self
            .peers
            .iter()
            .map(|p| endorse_on(&self.ch, p, call.signed.clone()).unwrap())
            .collect();
        let e = resps[forged].endorsement.as_mut().unwrap();
        e.signature[20] ^= 0x01;
        self.client.endorsed_envelope(&call, &resps, &[]).unwrap()
    }

    fn commit(&self, envs: &[&Envelope]) -> FilteredBlock {
        let tip = self.ch.store.tip();
        let block = new_block(
            tip.height,
            tip.last_hash,
            envs.iter().map(|e| e.encode_to_vec()).collect(),
        );
        commit_block(&self.ch, &block).unwrap()
    }

    fn deploy(&self, name: &str, contract: &str, init: &[&str]) {
        let def = ChaincodeDefinition {
            name: name.into(),
            version: "1".into(),
            contract: contract.into(),
            endorsement_policy: "AND('Org1MSP.peer','Org2MSP.peer')".into(),
        };
        let init: Vec<String> = init.iter().map(|s| s.to_string()).collect();
        let args = deploy_args(&def, &init);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (_, env) = self.tx(&self.admin, LIFECYCLE, &args);
        assert_eq!(codes(&self.commit(&[&env])), [Code::Valid]);
    }

    fn value(&self, ns: &str, key: &str) -> Option<String> {
        let v = self.ch.state().unwrap().get(ns, key).unwrap()?;
        Some(String::from_utf8(v.value).unwrap())
    }
}

fn codes(fb: &FilteredBlock) -> Vec<Code> {
    fb.transactions
        .iter()
        .map(|t| Code::try_from(t.code).unwrap())
        .collect()
}

#[test]
fn a_transaction_id_commits_once_even_across_blocks_and_restarts() {
    let f = fixture();
    f.deploy("mycc", "example02", &["a", "100", "b", "200"]);
    let (id, env) = f.tx(&f.client, "mycc", &["invoke", "a", "b", "10"]);
    assert_eq!(codes(&f.commit(&[&env])), [Code::Valid]);
    assert_eq!(f.value("mycc", "a").as_deref(), Some("90"));

    // The same envelope in a later block: refused, nothing applied twice.
    let fb = f.commit(&[&env]);
    assert_eq!(codes(&fb), [Code::DuplicateTxid]);
    assert_eq!(fb.transactions[0].tx_id, id);
    assert_eq!(f.value("mycc", "a").as_deref(), Some("90"));

    // After a restart the ledger, the state and the index of transaction ids are all there.
    let height = f.ch.store.height();
    let hash = f.ch.state().unwrap().commit_hash().unwrap();
    assert!(!hash.is_empty());
    drop(f.ch);
    let ch = open(&f.dir, &f.genesis);
    assert_eq!(ch.store.height(), height);
    assert_eq!(ch.status().commit_hash, hash);
    let f = Fixture { ch, ..f };
    assert_eq!(f.value("mycc", "a").as_deref(), Some("90"));
    assert_eq!(codes(&f.commit(&[&env])), [Code::DuplicateTxid]);
    // Committed outcomes are kept with the block.
    let stored = f.ch.events_of(4).unwrap().unwrap();
    assert_eq!(codes(&stored), [Code::DuplicateTxid]);
}

#[test]
fn conflicts_inside_one_block_are_decided_in_block_order() {
    let f = fixture();
    f.deploy("mycc", "example02", &["a", "100", "b", "200"]);
    let (_, first) = f.tx(&f.client, "mycc", &["invoke", "a", "b", "10"]);
    let (_, second) = f.tx(&f.client, "mycc", &["invoke", "a", "b", "20"]);
    let (_, other) = f.tx(&f.client, "mycc", &["query", "b"]);
    let fb = f.commit(&[&first, &second, &first, &other]);
    assert_eq!(
        codes(&fb),
        [
            Code::Valid,
            Code::MvccReadConflict,
            Code::DuplicateTxid,
            // It read b, which `first` wrote.
            Code::MvccReadConflict
        ]
    );
    assert_eq!(f.value("mycc", "a").as_deref(), Some("90"));
}

#[test]
fn a_range_that_gains_a_key_is_a_phantom_read() {
    let f = fixture();
    f.deploy("kv", "asset", &[]);
    let (_, put1) = f.tx(&f.client, "kv", &["put", "k1", "v1"]);
    assert_eq!(codes(&f.commit(&[&put1])), [Code::Valid]);
    let (_, range) = f.tx(&f.client, "kv", &["range", "k", "l"]);
    let (_, put2) = f.tx(&f.client, "kv", &["put", "k2", "v2"]);
    assert_eq!(
        codes(&f.commit(&[&put2, &range])),
        [Code::Valid, Code::PhantomReadConflict]
    );
}

#[test]
fn endorsements_from_one_organisation_do_not_satisfy_and() {
    let f = fixture();
    f.deploy("mycc", "example02", &["a", "100", "b", "200"]);
    let args: Vec<String> = ["invoke", "a", "b", "10"].map(String::from).to_vec();
    let call = f.client.proposal(f.ch.channel_id(), "mycc", &args).unwrap();
    let resp = endorse_on(&f.ch, &f.peers[0], call.signed.clone()).unwrap();
    let env = f.client.endorsed_envelope(&call, &[resp], &[]).unwrap();
    assert_eq!(codes(&f.commit(&[&env])), [Code::EndorsementPolicyFailure]);
    // A client is not an admin: its deploy is refused at endorsement time and, forced
    // through, at validation.
    let def = ChaincodeDefinition {
        name: "x".into(),
        version: "1".into(),
        contract: "asset".into(),
        endorsement_policy: "OR('Org1MSP.peer')".into(),
    };
    let call = f
        .client
        .proposal(f.ch.channel_id(), LIFECYCLE, &deploy_args(&def, &[]))
        .unwrap();
    let err = endorse_on(&f.ch, &f.peers[0], call.signed).unwrap_err();
    assert!(err.message().contains("Admins policy"), "{}", err.message());
    assert_eq!(f.value(LIFECYCLE, "x"), None);
}

#[test]
fn a_forged_envelope_does_not_use_up_a_transaction_id() {
    let f = fixture();
    f.deploy("mycc", "example02", &["a", "100", "b", "200"]);
    let (_, env) = f.tx(&f.client, "mycc", &["invoke", "a", "b", "10"]);
    let mut forged = env.clone();
    forged.signature = f.admin.signer.sign(&env.payload).unwrap();
    assert_eq!(
        codes(&f.commit(&[&forged, &env])),
        [Code::BadCreatorSignature, Code::Valid]
    );
    assert_eq!(f.value("mycc", "a").as_deref(), Some("90"));
}

/// A block's Ed25519 signatures are verified as batches; a forged one among them is found
/// and only its transaction is invalid, with the code it gets when checked alone.
#[test]
fn a_forged_ed25519_signature_in_a_batch_is_found_and_named() {
    let f = fixture_with(KeyAlgorithm::Ed25519);
    let accounts: Vec<String> = (0..24)
        .flat_map(|i| [format!("a{i}"), "100".into(), format!("b{i}"), "100".into()])
        .collect();
    let accounts: Vec<&str> = accounts.iter().map(String::as_str).collect();
    f.deploy("mycc", "example02", &accounts);
    let mut envs: Vec<Envelope> = (0..24)
        .map(|i| {
            let (a, b) = (format!("a{i}"), format!("b{i}"));
            f.tx(&f.client, "mycc", &["invoke", &a, &b, "1"]).1
        })
        .collect();
    // The creator's signature of transaction 7, and Org2's endorsement of transaction 15.
    envs[7].signature[20] ^= 0x01;
    envs[15] = f.tx_with_forged_endorsement(&["invoke", "a15", "b15", "1"], 1);
    let codes = codes(&f.commit(&envs.iter().collect::<Vec<_>>()));
    for (i, code) in codes.iter().enumerate() {
        let want = match i {
            7 => Code::BadCreatorSignature,
            15 => Code::EndorsementPolicyFailure,
            _ => Code::Valid,
        };
        assert_eq!(*code, want, "transaction {i}");
    }
    assert_eq!(f.value("mycc", "a7").as_deref(), Some("100"));
    assert_eq!(f.value("mycc", "a15").as_deref(), Some("100"));
    assert_eq!(f.value("mycc", "a3").as_deref(), Some("99"));
}

#[test]
fn a_deploy_cannot_rewrite_another_contracts_definition() {
    use crate::proto::peer::{
        ChaincodeId, KvWrite, NsReadWriteSet, ProposalResponsePayload, Response, Transaction,
        TxReadWriteSet,
    };
    let f = fixture();
    f.deploy("mycc", "example02", &["a", "100", "b", "200"]);
    // An Org1 admin deploys `evil`, endorsable by Org1 alone, and slips in a weaker policy
    // for mycc.
    let evil = ChaincodeDefinition {
        name: "evil".into(),
        version: "1".into(),
        contract: "asset".into(),
        endorsement_policy: "OR('Org1MSP.peer')".into(),
    };
    let weak = ChaincodeDefinition {
        name: "mycc".into(),
        endorsement_policy: "OR('Org1MSP.peer')".into(),
        ..evil.clone()
    };
    let call = f
        .admin
        .proposal(f.ch.channel_id(), LIFECYCLE, &deploy_args(&evil, &[]))
        .unwrap();
    let write = |d: &ChaincodeDefinition| KvWrite {
        key: d.name.clone(),
        is_delete: false,
        value: d.encode_to_vec(),
    };
    let payload = ProposalResponsePayload {
        proposal_hash: ring::digest::digest(&ring::digest::SHA256, &call.signed.proposal_bytes)
            .as_ref()
            .to_vec(),
        chaincode_id: Some(ChaincodeId {
            name: LIFECYCLE.into(),
            version: String::new(),
        }),
        results: Some(TxReadWriteSet {
            ns_rwset: vec![NsReadWriteSet {
                namespace: LIFECYCLE.into(),
                writes: vec![write(&evil), write(&weak)],
                ..Default::default()
            }],
        }),
        response: Some(Response {
            status: 200,
            ..Default::default()
        }),
    }
    .encode_to_vec();
    let tx = Transaction {
        proposal_bytes: call.signed.proposal_bytes.clone(),
        endorsements: vec![crate::proto::peer::Endorsement {
            endorser: Some(f.peers[0].serialize()),
            signature: f.peers[0].sign(&payload).unwrap(),
        }],
        response_payload: payload,
    };
    let env = f
        .admin
        .sign_envelope(call.header.clone(), tx.encode_to_vec())
        .unwrap();
    assert_eq!(codes(&f.commit(&[&env])), [Code::IllegalWriteset]);
    let def = super::lifecycle::definition(&f.ch.state().unwrap(), "mycc")
        .unwrap()
        .unwrap();
    assert_eq!(def.endorsement_policy, "AND('Org1MSP.peer','Org2MSP.peer')");
}
