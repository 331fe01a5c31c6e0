//! Signed read requests on real orderers: Deliver is served to members of the channel's
//! Readers policy who sign their request, and refused with PERMISSION_DENIED and a reason to
//! anyone else: unsigned, signed by a certificate of a foreign CA, outside the policy, or
//! replayed after the time window.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use raftnet_node::client::Client;
use raftnet_node::identity::Role;
use raftnet_node::network::ordering::OrderingSpec;
use raftnet_node::proto::common::Policies;
use raftnet_node::proto::orderer::{DeliverRequest, SeekBehavior};
use raftnet_node::signed_request::{sign, sign_at, TIME_WINDOW};

use crate::support;

fn request(channel: &str) -> DeliverRequest {
    DeliverRequest {
        channel_id: channel.to_string(),
        start: 0,
        stop: Some(0),
        behavior: SeekBehavior::FailIfNotReady as i32,
        signature: None,
    }
}

/// The gRPC status a Deliver call got, or "served".
async fn deliver(client: &Client, addr: &str, req: DeliverRequest) -> (tonic::Code, String) {
    match client.broadcaster(addr).unwrap().deliver(req).await {
        Ok(mut stream) => {
            let first = stream.get_mut().message().await.unwrap().unwrap();
            assert!(first.r#type.is_some());
            (tonic::Code::Ok, "served".into())
        }
        Err(s) => (s.code(), s.message().to_string()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliver_serves_signed_readers_and_refuses_everyone_else_with_reasons() {
    // Readers: Org1's admins and peers (and the orderers, which pull blocks from each other).
    let mut plan = OrderingSpec {
        orderers: 3,
        orgs: vec!["Org1MSP".into()],
        ..Default::default()
    }
    .plan();
    plan.channels[0].policies = Some(Policies {
        writers: "OR('Org1MSP.member')".into(),
        readers: "OR('Org1MSP.admin','Org1MSP.peer','OrdererMSP.member')".into(),
        admins: "OR('Org1MSP.admin')".into(),
        block_validation: String::new(),
    });
    let net = support::start_plan(plan).await;
    let ch = net.channel();
    let addr = net.addr(0);
    let admin = net.cluster.admin_of("Org1MSP").unwrap();
    let client = &net.client; // Org1's client: a member, not an admin.

    let (code, _) = deliver(
        &admin,
        &addr,
        sign(request(&ch), &admin.signer, &admin.tls.cert_pem).unwrap(),
    )
    .await;
    assert_eq!(code, tonic::Code::Ok, "a reader's signed request is served");

    let refusals = [
        (request(&ch), "not signed"),
        (
            sign(request(&ch), &client.signer, &admin.tls.cert_pem).unwrap(),
            "does not satisfy the Readers policy",
        ),
        (
            {
                let id = support::foreign_identity("Org1MSP", "admin", Role::Admin);
                sign(request(&ch), &id, &admin.tls.cert_pem).unwrap()
            },
            "refused",
        ),
        (
            // An organisation the channel does not have.
            {
                let id = support::foreign_identity("Org9MSP", "admin", Role::Admin);
                sign(request(&ch), &id, &admin.tls.cert_pem).unwrap()
            },
            "Org9MSP",
        ),
        (
            {
                let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
                let old = now - TIME_WINDOW - Duration::from_secs(60);
                sign_at(
                    request(&ch),
                    &admin.signer,
                    &admin.tls.cert_pem,
                    old.as_millis() as i64,
                )
                .unwrap()
            },
            "outside the",
        ),
        (
            // A reader's request bound to another TLS certificate (a replay over another
            // connection).
            sign(request(&ch), &admin.signer, &client.tls.cert_pem).unwrap(),
            "refused",
        ),
        (
            // Signed for one range, sent with another: the signature no longer verifies.
            {
                let mut r = sign(request(&ch), &admin.signer, &admin.tls.cert_pem).unwrap();
                r.stop = Some(5);
                r
            },
            "refused",
        ),
    ];
    for (req, why) in refusals {
        let (code, msg) = deliver(&admin, &addr, req).await;
        assert_eq!(code, tonic::Code::PermissionDenied, "{msg}");
        assert!(msg.contains(why), "{why:?} not in {msg:?}");
    }

    // Orderers still pull from each other: their own requests are signed as orderers.
    assert_eq!(net.submit(1, 3, 32).await.len(), 3);
}
