//! Bad envelopes get a clear answer and change nothing; admin calls need an admin.

use prost::Message;
use raftnet_node::client::Client;
use raftnet_node::network::ordering::{generate, OrderingSpec};
use raftnet_node::proto::common::{Envelope, Payload, Status};

use crate::support;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_envelopes_are_refused_with_a_reason_and_leave_the_ledger_alone() {
    let mut spec = OrderingSpec {
        orderers: 3,
        ..Default::default()
    };
    spec.batch.absolute_max_bytes = 4096;
    spec.batch.preferred_max_bytes = 4096;
    let net = support::start(spec).await;
    let ch = net.channel();
    let addr = net.addr(0);
    let before = net.blocks(0).await.len();

    let (good, _) = net.client.envelope(&ch, b"x".to_vec()).unwrap();
    let mut bad_sig = good.clone();
    bad_sig.signature[10] ^= 0xff;

    // A client of an organisation that is not in the channel (its own CAs).
    let other = tempfile::tempdir().unwrap();
    let outsider_layout = generate(
        other.path(),
        &OrderingSpec {
            orgs: vec!["Org9MSP".into()],
            orderers: 1,
            ..Default::default()
        },
    )
    .unwrap();
    let outsider = Client::load(&outsider_layout.client).unwrap();
    let (foreign, _) = outsider.envelope(&ch, b"x".to_vec()).unwrap();

    let (unknown_channel, _) = net.client.envelope("nochannel", b"x".to_vec()).unwrap();
    let (oversize, _) = net.client.envelope(&ch, vec![1u8; 8192]).unwrap();
    let garbage = Envelope {
        payload: vec![0xff, 0xff, 0xff],
        signature: vec![],
    };
    let mut wrong_id = good.clone();
    let mut p = Payload::decode(&wrong_id.payload[..]).unwrap();
    p.header.as_mut().unwrap().tx_id = "abc".into();
    wrong_id.payload = p.encode_to_vec();
    wrong_id.signature = net.client.signer.sign(&wrong_id.payload).unwrap();

    // An envelope signed ten minutes ago (as one read from Deliver and broadcast again), and
    // one from a client whose clock runs ten minutes ahead.
    let dated = |shift_ms: i64| {
        let mut header = net.client.header(&ch).unwrap();
        header.timestamp_ms += shift_ms;
        net.client.sign_envelope(header, b"x".to_vec()).unwrap()
    };
    let stale = dated(-600_000);
    let future = dated(600_000);

    let cases = [
        (stale, Status::BadRequest, "older than this orderer's clock"),
        (
            future,
            Status::BadRequest,
            "newer than this orderer's clock",
        ),
        (bad_sig, Status::Forbidden, "signature"),
        (foreign, Status::Forbidden, "not a member"),
        (unknown_channel, Status::NotFound, "nochannel"),
        (oversize, Status::RequestEntityTooLarge, "absoluteMaxBytes"),
        (garbage, Status::BadRequest, "does not decode"),
        (wrong_id, Status::BadRequest, "tx_id"),
    ];
    // Outsider TLS certificates are not trusted at all: send everything with the member's
    // connection, as a relaying client would.
    let envs: Vec<Envelope> = cases.iter().map(|(e, _, _)| e.clone()).collect();
    let resps = net.client.broadcast(&addr, envs).await.unwrap();
    for ((_, status, words), r) in cases.iter().zip(&resps) {
        assert_eq!(r.status, *status as i32, "{words}: {}", r.info);
        assert!(r.info.contains(words), "expected {words:?} in {:?}", r.info);
    }

    // A follower leaves the signature to the leader and passes its refusal on: a forged
    // signature gets the same answer from the leader and from a follower.
    let leader = net.leader().await;
    let follower = (leader + 1) % 3;
    for i in [leader, follower] {
        let r = net
            .client
            .broadcast(&net.addr(i), vec![cases[2].0.clone()])
            .await
            .unwrap();
        assert_eq!(
            r[0].status,
            Status::Forbidden as i32,
            "orderer {i}: {}",
            r[0].info
        );
        assert!(
            r[0].info.contains("signature does not verify"),
            "{}",
            r[0].info
        );
    }

    // Nothing was ordered; a good envelope still is.
    assert_eq!(net.blocks(0).await.len(), before);
    let ok = net
        .client
        .broadcast(&addr, vec![good.clone()])
        .await
        .unwrap();
    assert_eq!(ok[0].status, Status::Success as i32, "{}", ok[0].info);
    // A retry of an ordered envelope, through another orderer, is answered with its block
    // and not ordered again.
    let again = net
        .client
        .broadcast(&net.addr(1), vec![good])
        .await
        .unwrap();
    assert_eq!(again[0].status, Status::Success as i32, "{}", again[0].info);
    assert_eq!(again[0].block_number, ok[0].block_number);
    let ids = crate::support::tx_ids(&net.blocks(0).await);
    assert_eq!(ids.iter().filter(|id| **id == ok[0].tx_id).count(), 1);

    // A client is not an admin.
    let err = net.client.status(&addr, &ch).await.unwrap_err().to_string();
    assert!(err.contains("admin"), "{err}");
    // Joining the same channel twice is refused by name.
    let genesis = std::fs::read(&net.cluster.layout.genesis).unwrap();
    let err = net
        .admin
        .join(&addr, &genesis)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("already joined"), "{err}");
    let err = net
        .admin
        .join(&addr, b"not a block")
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("genesis"), "{err}");
}
