//! Peers end to end: two organisations with two peers each and five orderers, as real
//! processes. Contracts are deployed and invoked through the same client code the `raftnet`
//! command uses.

use std::time::{Duration, Instant};

use raftnet_node::client::Client;
use raftnet_node::identity::KeyAlgorithm;
use raftnet_node::network::ordering::OrderingSpec;
use raftnet_node::proto::common::Status;
use raftnet_node::proto::peer::{ChaincodeDefinition, TxValidationCode as Code};

use crate::support::{self, Net, TIMEOUT};

const AND_POLICY: &str = "AND('Org1MSP.peer','Org2MSP.peer')";

/// A network with peers and example02 deployed as `mycc` with `init a 100 b 200`.
pub struct Lab {
    pub net: Net,
    /// Org1's client and admin, Org2's client.
    pub org1: Client,
    pub org1_admin: Client,
    pub org2: Client,
}

impl Lab {
    pub async fn start(orderers: usize) -> Lab {
        Self::start_with(orderers, KeyAlgorithm::EcdsaP256).await
    }

    /// A lab whose organisations sign with `key_algorithm` keys.
    pub async fn start_with(orderers: usize, key_algorithm: KeyAlgorithm) -> Lab {
        let spec = OrderingSpec {
            orderers,
            orgs: vec!["Org1MSP".into(), "Org2MSP".into()],
            peers_per_org: 2,
            key_algorithm,
            ..OrderingSpec::default()
        };
        let mut net = support::start(spec).await;
        if let Err(e) = net.cluster.start_peers(TIMEOUT).await {
            panic!("peers did not start: {e:#}");
        }
        let layout = &net.cluster.layout;
        let org1 = Client::load(&layout.org_clients[0].1).unwrap();
        let org2 = Client::load(&layout.org_clients[1].1).unwrap();
        let org1_admin = Client::load(&layout.org_admins[0].1).unwrap();
        let lab = Lab {
            net,
            org1,
            org1_admin,
            org2,
        };
        let def = ChaincodeDefinition {
            name: "mycc".into(),
            version: "1.0".into(),
            contract: "example02".into(),
            endorsement_policy: AND_POLICY.into(),
        };
        let init: Vec<String> = ["a", "100", "b", "200"].map(String::from).to_vec();
        let args = raftnet_node::peer::lifecycle::deploy_args(&def, &init);
        let outcome = lab
            .submit_retry(
                &lab.org1_admin,
                raftnet_node::peer::lifecycle::LIFECYCLE,
                &args,
            )
            .await;
        assert!(outcome.is_valid(), "deploy: {outcome:?}");
        lab
    }

    /// Submits through both organisations' peer0, sending the same transaction again while
    /// the ordering service is electing a leader.
    async fn submit_retry(
        &self,
        client: &Client,
        chaincode: &str,
        args: &[String],
    ) -> raftnet_node::gateway::Outcome {
        let (peers, orderers, channel) = (self.endorsers(), self.orderers(), self.net.channel());
        client
            .submit_transaction_retrying(
                &peers, &orderers, &channel, chaincode, args, TIMEOUT, TIMEOUT,
            )
            .await
            .unwrap_or_else(|e| panic!("submit failed: {e:#}"))
    }

    async fn invoke_retry(&self, args: &[&str]) -> raftnet_node::gateway::Outcome {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        self.submit_retry(&self.org1, "mycc", &args).await
    }

    pub fn peer_addr(&self, p: usize) -> String {
        self.net.cluster.layout.peers[p].address.clone()
    }

    /// peer0 of each organisation.
    pub fn endorsers(&self) -> Vec<String> {
        vec![self.peer_addr(0), self.peer_addr(2)]
    }

    pub fn orderers(&self) -> Vec<String> {
        self.net
            .cluster
            .layout
            .orderers
            .iter()
            .map(|o| o.address.clone())
            .collect()
    }

    pub fn admin_of_peer(&self, p: usize) -> Client {
        let msp = &self.net.cluster.layout.peers[p].msp_id;
        self.net.cluster.admin_of(msp).unwrap()
    }

    /// Queries peer `p` as a client of the peer's own organisation.
    pub async fn query(&self, p: usize, key: &str) -> anyhow::Result<String> {
        let client = if p < 2 { &self.org1 } else { &self.org2 };
        let v = client
            .query(
                &self.peer_addr(p),
                &self.net.channel(),
                "mycc",
                &["query".to_string(), key.to_string()],
            )
            .await?;
        Ok(String::from_utf8(v).unwrap())
    }

    pub async fn invoke(
        &self,
        peers: &[String],
        args: &[&str],
    ) -> anyhow::Result<raftnet_node::gateway::Outcome> {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        self.org1
            .submit_transaction(
                peers,
                &self.orderers(),
                &self.net.channel(),
                "mycc",
                &args,
                TIMEOUT,
            )
            .await
    }

    /// Waits until every running peer has committed `height` blocks; returns their
    /// (height, commit hash).
    pub async fn wait_peers(&self, height: u64, skip: &[usize]) -> Vec<(u64, Vec<u8>)> {
        let started = Instant::now();
        loop {
            let mut all = Vec::new();
            for p in 0..self.net.cluster.layout.peers.len() {
                if skip.contains(&p) {
                    continue;
                }
                let s = self
                    .admin_of_peer(p)
                    .status(&self.peer_addr(p), &self.net.channel())
                    .await;
                all.push(s.map(|s| (s.height, s.commit_hash)).unwrap_or_default());
            }
            if all.iter().all(|(h, _)| *h >= height) {
                return all;
            }
            assert!(
                started.elapsed() < TIMEOUT,
                "peers stuck below height {height}: {all:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn peer_height(&self, p: usize) -> u64 {
        self.admin_of_peer(p)
            .status(&self.peer_addr(p), &self.net.channel())
            .await
            .unwrap()
            .height
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn endorse_order_validate_commit() {
    let lab = Lab::start(3).await;
    for p in 0..4 {
        assert_eq!(lab.query(p, "a").await.unwrap(), "100", "peer {p}");
    }

    // Endorsed by both organisations: valid, and every peer sees 90.
    let ok = lab
        .invoke(&lab.endorsers(), &["invoke", "a", "b", "10"])
        .await
        .unwrap();
    assert_eq!(ok.code, Code::Valid, "{ok:?}");
    let states = lab.wait_peers(ok.block + 1, &[]).await;
    for p in 0..4 {
        assert_eq!(lab.query(p, "a").await.unwrap(), "90", "peer {p}");
        assert_eq!(lab.query(p, "b").await.unwrap(), "210", "peer {p}");
    }
    assert!(
        states.windows(2).all(|w| w[0] == w[1]),
        "peers disagree: {states:?}"
    );

    // Endorsed by Org1 only: ordered, committed as invalid, and nothing changes.
    let one_org = vec![lab.peer_addr(0), lab.peer_addr(1)];
    let bad = lab
        .invoke(&one_org, &["invoke", "a", "b", "10"])
        .await
        .unwrap();
    assert_eq!(bad.code, Code::EndorsementPolicyFailure, "{bad:?}");
    lab.wait_peers(bad.block + 1, &[]).await;
    for p in 0..4 {
        assert_eq!(lab.query(p, "a").await.unwrap(), "90", "peer {p}");
    }

    // Two invokes endorsed on the same state: the first to be ordered wins, the other is an
    // MVCC conflict.
    let channel = lab.net.channel();
    let mut envs = Vec::new();
    for amount in ["5", "7"] {
        let args: Vec<String> = ["invoke", "a", "b", amount].map(String::from).to_vec();
        let call = lab.org1.proposal(&channel, "mycc", &args).unwrap();
        let resps = lab.org1.endorse(&lab.endorsers(), &call).await.unwrap();
        envs.push((
            call.tx_id().to_string(),
            lab.org1
                .endorsed_envelope(&call, &resps, &lab.endorsers())
                .unwrap(),
        ));
    }
    let start = lab.peer_height(0).await;
    let acks = lab
        .org1
        .broadcast(
            &lab.orderers()[0],
            envs.iter().map(|(_, e)| e.clone()).collect(),
        )
        .await
        .unwrap();
    assert!(
        acks.iter().all(|a| a.status == Status::Success as i32),
        "{acks:?}"
    );
    let mut codes = Vec::new();
    for (id, _) in &envs {
        let events = lab
            .org1
            .commit_events(&lab.peer_addr(0), &channel, Some(start))
            .await
            .unwrap();
        codes.push(
            raftnet_node::gateway::wait_for(events, id, TIMEOUT)
                .await
                .unwrap()
                .code,
        );
    }
    // The orderer may order them either way round; exactly one wins.
    let winner = match codes[..] {
        [Code::Valid, Code::MvccReadConflict] => 5,
        [Code::MvccReadConflict, Code::Valid] => 7,
        _ => panic!("expected one valid and one MVCC conflict, got {codes:?}"),
    };
    let a_now = (90 - winner).to_string();
    assert_eq!(lab.query(3, "a").await.unwrap(), a_now);

    // Replays: the same envelope again is answered from the orderers' memory and not
    // committed twice; old endorsements under a new transaction id are refused.
    let (_, first_env) = &envs[0];
    let again = lab
        .org1
        .broadcast(&lab.orderers()[1], vec![first_env.clone()])
        .await
        .unwrap();
    assert_eq!(again[0].status, Status::Success as i32);
    let payload: raftnet_node::proto::common::Payload =
        prost::Message::decode(&first_env.payload[..]).unwrap();
    let (forged, forged_id) = lab.org1.envelope(&channel, payload.data).unwrap();
    let events = lab
        .org1
        .commit_events(&lab.peer_addr(1), &channel, None)
        .await
        .unwrap();
    lab.org1.order(&lab.orderers(), &forged).await.unwrap();
    let replay = raftnet_node::gateway::wait_for(events, &forged_id, TIMEOUT)
        .await
        .unwrap();
    assert_eq!(replay.code, Code::InvalidEndorserTransaction);
    lab.wait_peers(replay.block + 1, &[]).await;
    for p in 0..4 {
        assert_eq!(lab.query(p, "a").await.unwrap(), a_now, "peer {p}");
    }

    // Contract errors reach the user with their message and order nothing.
    let err = lab
        .invoke(&lab.endorsers(), &["invoke", "a", "c", "1"])
        .await
        .unwrap_err();
    assert!(format!("{err:#}").contains("\"c\""), "{err:#}");
    let err = lab
        .invoke(&lab.endorsers(), &["invoke", "a", "b", "ten"])
        .await
        .unwrap_err();
    assert!(format!("{err:#}").contains("not an integer"), "{err:#}");
    // A second deploy of the same name is refused by the endorsers.
    let def = ChaincodeDefinition {
        name: "mycc".into(),
        version: "2.0".into(),
        contract: "example02".into(),
        endorsement_policy: AND_POLICY.into(),
    };
    let err = lab
        .org1_admin
        .submit_transaction(
            &lab.endorsers(),
            &lab.orderers(),
            &channel,
            "_lifecycle",
            &raftnet_node::peer::lifecycle::deploy_args(&def, &[]),
            TIMEOUT,
        )
        .await
        .unwrap_err();
    assert!(format!("{err:#}").contains("already deployed"), "{err:#}");
    // Deploying needs an admin.
    let def = ChaincodeDefinition {
        name: "other".into(),
        ..def
    };
    let err = lab
        .org1
        .submit_transaction(
            &lab.endorsers(),
            &lab.orderers(),
            &channel,
            "_lifecycle",
            &raftnet_node::peer::lifecycle::deploy_args(&def, &["x".into(), "1".into()]),
            TIMEOUT,
        )
        .await
        .unwrap_err();
    assert!(format!("{err:#}").contains("Admins policy"), "{err:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn peers_survive_orderer_and_peer_crashes() {
    let mut lab = Lab::start(5).await;
    let channel = lab.net.channel();

    // Kill the orderer peer0.org1 pulls from: it moves to another and keeps committing.
    let admin0 = lab.admin_of_peer(0);
    let source = admin0
        .status(&lab.peer_addr(0), &channel)
        .await
        .unwrap()
        .orderer_endpoint;
    let victim = lab
        .net
        .cluster
        .nodes
        .iter()
        .position(|n| n.address == source)
        .expect("pulling from an orderer");
    lab.net.cluster.kill(victim).unwrap();
    let ok = lab.invoke_retry(&["invoke", "a", "b", "10"]).await;
    assert!(ok.is_valid(), "{ok:?}");
    lab.wait_peers(ok.block + 1, &[]).await;
    let now = admin0
        .status(&lab.peer_addr(0), &channel)
        .await
        .unwrap()
        .orderer_endpoint;
    assert_ne!(
        now, source,
        "peer0.org1 still pulls from the killed orderer"
    );

    // SIGKILL peer1.org2 while transactions flow, restart it: it catches up to the same
    // height and commit hash as the others.
    let p = 3;
    let idx = lab.net.cluster.peer_index(p);
    let mut last = ok;
    for i in 0..6 {
        if i == 2 {
            lab.net.cluster.kill(idx).unwrap();
        }
        last = lab
            .invoke(&lab.endorsers(), &["invoke", "b", "a", "1"])
            .await
            .unwrap();
        assert!(last.is_valid());
    }
    assert!(lab.peer_height(0).await > last.block);
    lab.net.cluster.start(idx).unwrap();
    let states = lab.wait_peers(last.block + 1, &[]).await;
    assert!(
        states.windows(2).all(|w| w[0] == w[1]),
        "peers disagree after restart: {states:?}"
    );
    assert_eq!(lab.query(p, "a").await.unwrap(), "96");

    // Three of five orderers down: no leader. Queries still answer; invokes fail clearly.
    let mut down = vec![victim];
    for i in 0..5 {
        if down.len() == 3 {
            break;
        }
        if !down.contains(&i) {
            lab.net.cluster.kill(i).unwrap();
            down.push(i);
        }
    }
    assert_eq!(lab.query(2, "a").await.unwrap(), "96");
    // Wait until the survivors know they have no leader: a transaction sent to a leader
    // still inside its lease would enter its log, fail to commit now, and may be committed
    // after the recovery (as Fabric's may).
    let started = Instant::now();
    loop {
        let mut leaders = Vec::new();
        for i in (0..5).filter(|i| !down.contains(i)) {
            let s = lab.net.admin.status(&lab.net.addr(i), &channel).await;
            leaders.push(s.map(|s| s.leader_id).unwrap_or(0));
        }
        if leaders.iter().all(|&l| l == 0) {
            break;
        }
        assert!(
            started.elapsed() < TIMEOUT,
            "survivors still see a leader: {leaders:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let err = lab
        .invoke(&lab.endorsers(), &["invoke", "a", "b", "1"])
        .await
        .unwrap_err();
    let msg = format!("{err:#}");
    assert!(
        msg.contains("ordering service is unavailable") && msg.contains("no Raft leader"),
        "{msg}"
    );
    assert_eq!(
        lab.query(0, "a").await.unwrap(),
        lab.query(3, "a").await.unwrap()
    );

    // One back: a majority again, and invokes work.
    lab.net.cluster.start(down[2]).unwrap();
    let ok = lab.invoke_retry(&["invoke", "a", "b", "1"]).await;
    assert!(ok.is_valid(), "{ok:?}");
    assert_eq!(lab.query(1, "a").await.unwrap(), "95");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ed25519_organisations_transact_with_the_same_verdicts() {
    let lab = Lab::start_with(3, KeyAlgorithm::Ed25519).await;
    let signer = &lab.org1.signer;
    assert_eq!(signer.algorithm(), KeyAlgorithm::Ed25519);
    let ok = lab
        .invoke(&lab.endorsers(), &["invoke", "a", "b", "10"])
        .await
        .unwrap();
    assert!(ok.is_valid(), "{ok:?}");
    assert_eq!(lab.query(2, "a").await.unwrap(), "90");
    // Endorsed by one organisation only: ordered, and invalid as with P-256.
    let bad = lab
        .invoke(
            &[lab.peer_addr(0), lab.peer_addr(1)],
            &["invoke", "a", "b", "10"],
        )
        .await
        .unwrap();
    assert_eq!(bad.code, Code::EndorsementPolicyFailure, "{bad:?}");
    assert_eq!(lab.query(0, "a").await.unwrap(), "90");
}
