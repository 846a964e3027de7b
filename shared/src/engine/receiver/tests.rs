//! Receiver unit tests on the in-memory adapters.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use http::{Method, Request, StatusCode};
use serde_json::{Value, json};
use time::macros::datetime;

use super::*;
use crate::adapters::memory::{MemoryQueue, MemoryStore};
use crate::domain::clock::ManualClock;
use crate::domain::dedupe::{Claim, ClaimOutcome, LeaseOutcome, RecordStatus, body_sha256};
use crate::ports::{OutgoingMessage, QueueError};
use crate::providers::apimp::Apimp;
use crate::providers::katalo::source::KataloSource;
use crate::toolkit::auth::hmac::{HmacSecrets, sign_hex};

const SECRET: &str = "test-secret-current";
const KEY: &str = "katalo#job_1#on:generation.completed";

struct Rig {
    receiver: Receiver,
    store: Arc<MemoryStore>,
    inbox: Arc<MemoryQueue>,
    clock: Arc<ManualClock>,
}

fn rig() -> Rig {
    let store = Arc::new(MemoryStore::default());
    let inbox = Arc::new(MemoryQueue::default());
    let clock = Arc::new(ManualClock::new(datetime!(2026-11-23 12:00:00 UTC)));
    let sources = katalo_only(HmacSecrets::new(SECRET, Some(b"test-secret-previous".to_vec())));
    let receiver = Receiver::new(store.clone(), inbox.clone(), sources, ReceiverSettings::default(), clock.clone());
    Rig { receiver, store, inbox, clock }
}

/// Katalo's route signed with `secrets`; APIMP's routes off.
pub(crate) fn katalo_only(secrets: HmacSecrets) -> Vec<Arc<dyn WebhookSource>> {
    vec![Arc::new(KataloSource::new(secrets)), Arc::new(UnconfiguredSource(&Apimp))]
}

fn body(job: &str, event_type: &str) -> Vec<u8> {
    json!({"event_type": event_type, "job_id": job, "reference": "ref-1", "outputs": []}).to_string().into_bytes()
}

fn signed(body: &[u8], secret: &str) -> Request<Vec<u8>> {
    Request::builder()
        .method(Method::POST)
        .uri("/webhooks/katalo")
        .header("X-Katalo-Signature", sign_hex(secret.as_bytes(), body))
        .body(body.to_vec())
        .unwrap()
}

async fn send(rig: &Rig, req: Request<Vec<u8>>) -> (StatusCode, Value) {
    let resp = rig.receiver.handle(req, None).await;
    (resp.status(), serde_json::from_str(resp.body()).unwrap())
}

#[tokio::test]
async fn accepts_enqueues_and_marks() {
    let rig = rig();
    let (status, json) = send(&rig, signed(&body("job_1", "generation.completed"), SECRET)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json, json!({"ok": true, "duplicate": false}));
    let msgs = rig.inbox.messages();
    assert_eq!(msgs.len(), 1);
    let msg: Value = serde_json::from_str(&msgs[0].body).unwrap();
    assert_eq!(msg["type"], "katalo.webhook");
    assert_eq!(msg["dedupe_key"], KEY);
    assert_eq!(msg["payload"]["reference"], "ref-1");
    assert_eq!(msg["received_at"], "2026-11-23T12:00:00Z");
    let rec = rig.store.record(KEY).unwrap();
    assert_eq!(rec.status, RecordStatus::Enqueued);
    assert_eq!(rec.expires_at, datetime!(2026-12-08 12:00:00 UTC).unix_timestamp());
}

#[tokio::test]
async fn duplicates_are_acknowledged_once_queued() {
    let rig = rig();
    let b = body("job_1", "generation.completed");
    send(&rig, signed(&b, SECRET)).await;
    let (status, json) = send(&rig, signed(&b, SECRET)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json["duplicate"], true);
    assert_eq!(rig.inbox.messages().len(), 1);
    // A different event type for the same job is a different event.
    send(&rig, signed(&body("job_1", "generation.failed"), SECRET)).await;
    assert_eq!(rig.inbox.messages().len(), 2);
}

#[tokio::test]
async fn same_key_different_body_is_counted_not_merged() {
    let rig = rig();
    send(&rig, signed(&body("job_1", "generation.completed"), SECRET)).await;
    let other = json!({"event_type": "generation.completed", "job_id": "job_1", "reference": "changed"}).to_string();
    let (status, json) = send(&rig, signed(other.as_bytes(), SECRET)).await;
    assert_eq!((status, json["duplicate"].clone()), (StatusCode::OK, json!(true)));
    assert_eq!(rig.store.record(KEY).unwrap().conflicts, 1);
    assert_eq!(rig.inbox.messages().len(), 1);
}

#[tokio::test]
async fn the_inbox_carries_the_signed_bytes_and_the_record_their_mac() {
    let rig = rig();
    // Keys out of order and spaced, as a DOM round trip would not keep them.
    let raw = br#"{ "job_id" : "job_1", "zeta": [1, 2.50, {"b": null}], "event_type": "generation.completed", "alpha": "\u00e9" }"#;
    send(&rig, signed(raw, SECRET)).await;
    let messages = rig.inbox.messages();
    let [m] = messages.as_slice() else { panic!("one message: {messages:?}") };
    let text = std::str::from_utf8(raw).unwrap();
    assert!(m.body.ends_with(&format!(r#","payload":{text}}}"#)), "{}", m.body);
    let record = rig.store.record(KEY).unwrap();
    let mac = crate::toolkit::auth::hmac::HmacSecrets::new(SECRET, None).sign_hex(raw);
    assert_eq!(record.body_digest, format!("hmac-sha256:{mac}"));
}

#[tokio::test]
async fn bad_signatures_write_nothing() {
    let rig = rig();
    let b = body("job_1", "generation.completed");
    let mut missing = signed(&b, SECRET);
    missing.headers_mut().remove("x-katalo-signature");
    let mut non_hex = signed(&b, SECRET);
    non_hex.headers_mut().insert("x-katalo-signature", "zz".repeat(32).parse().unwrap());
    let mut short = signed(&b, SECRET);
    short.headers_mut().insert("x-katalo-signature", "abcd".parse().unwrap());
    for req in [missing, non_hex, short, signed(&b, "wrong-secret")] {
        let (status, json) = send(&rig, req).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(json["error"], "invalid_signature");
    }
    assert!(rig.inbox.messages().is_empty());
    assert!(rig.store.record(KEY).is_none());
}

#[tokio::test]
async fn rotation_accepts_the_previous_secret_and_uppercase_hex() {
    let rig = rig();
    let b = body("job_1", "generation.completed");
    assert_eq!(send(&rig, signed(&b, "test-secret-previous")).await.0, StatusCode::OK);
    let b2 = body("job_2", "generation.completed");
    let mut upper = signed(&b2, SECRET);
    let sig = sign_hex(SECRET.as_bytes(), &b2).to_uppercase();
    upper.headers_mut().insert("x-katalo-signature", sig.parse().unwrap());
    assert_eq!(send(&rig, upper).await.0, StatusCode::OK);
}

#[tokio::test]
async fn bad_payloads_sizes_methods_and_paths() {
    let rig = rig();
    for (raw, what) in [
        (&b"{not json"[..], "not json"),
        (br#"{"event_type":"generation.completed"}"#, "no job_id"),
        (br#"{"job_id":"j"}"#, "no event_type"),
    ] {
        let (status, json) = send(&rig, signed(raw, SECRET)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{what}");
        assert_eq!(json["error"], "invalid_payload");
    }
    let huge = vec![b' '; LAMBDA_MAX_BODY_BYTES + 1];
    let (status, json) = send(&rig, signed(&huge, SECRET)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(json["message"], "the body exceeds this receiver's limit of 6291456 bytes");

    let get = Request::builder().method(Method::GET).uri("/webhooks/katalo").body(Vec::new()).unwrap();
    let resp = rig.receiver.handle(get, None).await;
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(resp.headers()["allow"], "POST");
    let other = Request::builder().method(Method::POST).uri("/webhooks/nope").body(Vec::new()).unwrap();
    assert_eq!(rig.receiver.handle(other, None).await.status(), StatusCode::NOT_FOUND);
    let mut slash = signed(&body("job_9", "generation.completed"), SECRET);
    *slash.uri_mut() = "/webhooks/katalo/".parse().unwrap();
    assert_eq!(send(&rig, slash).await.0, StatusCode::OK);
    assert_eq!(rig.inbox.messages().len(), 1);
}

/// A body too large for its inbox message is verified whole, claimed under its own key
/// with its own digest, and queued thin: the ids, the hints that fit, and its digest.
#[tokio::test]
async fn a_body_too_large_to_carry_is_queued_thin() {
    let rig = rig();
    let input = "data:image/png;base64,".to_string() + &"A".repeat(2 * 1024 * 1024);
    let raw = json!({"event_type": "generation.completed", "job_id": "job_1", "reference": "ref-1",
        "metadata": {"user": "u1"}, "input": input})
    .to_string()
    .into_bytes();
    let (status, json) = send(&rig, signed(&raw, SECRET)).await;
    assert_eq!((status, json), (StatusCode::OK, json!({"ok": true, "duplicate": false})));
    let msgs = rig.inbox.messages();
    assert_eq!(msgs.len(), 1);
    assert!(msgs[0].body.len() < 1024, "{} bytes", msgs[0].body.len());
    let msg: Value = serde_json::from_str(&msgs[0].body).unwrap();
    assert_eq!((msg["type"].as_str(), msg["dedupe_key"].as_str()), (Some("katalo.webhook"), Some(KEY)));
    assert_eq!(msg["payload"], json!({"reference": "ref-1", "metadata": {"user": "u1"}}));
    assert_eq!(msg["thin"]["body_bytes"], raw.len());
    assert_eq!(msg["thin"]["body_sha256"], body_sha256(&raw));
    // The record is the one a carried body gets: a retry is a duplicate, another body a
    // conflict.
    let rec = rig.store.record(KEY).unwrap();
    assert_eq!(rec.status, RecordStatus::Enqueued);
    assert_eq!(rec.body_digest, crate::domain::dedupe::body_digest(Some(&hmac_of(&raw)), &raw));
    assert_eq!(send(&rig, signed(&raw, SECRET)).await.1["duplicate"], true);
    // Just under the threshold, the body is carried.
    let fits = body("job_2", "generation.completed");
    send(&rig, signed(&fits, SECRET)).await;
    let msg: Value = serde_json::from_str(&rig.inbox.messages()[1].body).unwrap();
    assert!(msg.get("thin").is_none() && msg["payload"]["outputs"].is_array());
}

fn hmac_of(raw: &[u8]) -> [u8; 32] {
    let hex = sign_hex(SECRET.as_bytes(), raw);
    let mut mac = [0u8; 32];
    hex::decode_to_slice(hex, &mut mac).unwrap();
    mac
}

#[tokio::test]
async fn unknown_event_types_are_forwarded() {
    let rig = rig();
    let (status, _) = send(&rig, signed(&body("job_1", "generation.progress"), SECRET)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(rig.inbox.messages().len(), 1);
}

#[tokio::test]
async fn inbox_outage_releases_the_claim_so_the_retry_succeeds() {
    let rig = rig();
    let b = body("job_1", "generation.completed");
    rig.inbox.fail.store(true, Ordering::SeqCst);
    let resp = rig.receiver.handle(signed(&b, SECRET), None).await;
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(resp.headers().contains_key("retry-after"));
    assert!(rig.store.record(KEY).is_none(), "claim released");
    rig.inbox.fail.store(false, Ordering::SeqCst);
    let (status, json) = send(&rig, signed(&b, SECRET)).await;
    assert_eq!((status, json["duplicate"].clone()), (StatusCode::OK, json!(false)));
    assert_eq!(rig.inbox.messages().len(), 1);
}

#[tokio::test]
async fn store_outage_is_retryable_and_enqueues_nothing() {
    let rig = rig();
    rig.store.fail.store(true, Ordering::SeqCst);
    let (status, json) = send(&rig, signed(&body("job_1", "generation.completed"), SECRET)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(json["retryable"], true);
    assert!(rig.inbox.messages().is_empty());
}

#[tokio::test]
async fn a_live_claim_defers_and_an_expired_one_is_reclaimed() {
    let rig = rig();
    let b = body("job_1", "generation.completed");
    // A receiver that claimed and then crashed before sending, with its invocation
    // deadline 20 s away.
    let now_ms = rig.clock.now_ms();
    let crashed = Claim {
        key: KEY.into(),
        claim_id: "crashed".into(),
        lease_until_ms: now_ms + 20_000,
        expires_at: rig.clock.now().unix_timestamp() + 3600,
        body_digest: body_sha256(&b),
        received_at: "2026-11-23T12:00:00Z".into(),
    };
    rig.store.put(crashed.to_record());
    let resp = rig.receiver.handle(signed(&b, SECRET), None).await;
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(resp.headers()["retry-after"], "20");
    assert!(rig.inbox.messages().is_empty());

    rig.clock.advance(time::Duration::seconds(21));
    let (status, json) = send(&rig, signed(&b, SECRET)).await;
    assert_eq!((status, json["duplicate"].clone()), (StatusCode::OK, json!(false)));
    assert_eq!(rig.inbox.messages().len(), 1);
    assert_eq!(rig.store.record(KEY).unwrap().status, RecordStatus::Enqueued);
}

#[tokio::test]
async fn the_lease_follows_the_invocation_deadline() {
    let rig = rig();
    let deadline = rig.clock.now_ms() + 7_000;
    let b = body("job_1", "generation.completed");
    rig.receiver.handle(signed(&b, SECRET), Some(deadline)).await;
    assert_eq!(rig.store.record(KEY).unwrap().lease_until_ms, deadline);
    // A deadline already past falls back to the default lease.
    let b2 = body("job_2", "generation.completed");
    rig.receiver.handle(signed(&b2, SECRET), Some(1)).await;
    let rec = rig.store.record("katalo#job_2#on:generation.completed").unwrap();
    assert_eq!(rec.lease_until_ms, rig.clock.now_ms() + 30_000);
}

#[tokio::test]
async fn expired_records_count_as_absent() {
    let rig = rig();
    let b = body("job_1", "generation.completed");
    send(&rig, signed(&b, SECRET)).await;
    rig.clock.advance(time::Duration::days(15) + time::Duration::seconds(1));
    let (_, json) = send(&rig, signed(&b, SECRET)).await;
    assert_eq!(json["duplicate"], false, "TTL not yet applied, but the record is logically gone");
    assert_eq!(rig.inbox.messages().len(), 2);
}

#[tokio::test]
async fn round_trips_per_delivery_are_minimal() {
    let rig = rig();
    let b = body("job_1", "generation.completed");
    send(&rig, signed(&b, SECRET)).await;
    // New: PutItem (claim) + SendMessage + UpdateItem (ENQUEUED).
    assert_eq!(rig.store.calls.load(Ordering::SeqCst), 2);
    assert_eq!(rig.inbox.calls.load(Ordering::SeqCst), 1);
    send(&rig, signed(&b, SECRET)).await;
    // Duplicate: the failed conditional put returns the old item; nothing else.
    assert_eq!(rig.store.calls.load(Ordering::SeqCst), 3);
    assert_eq!(rig.inbox.calls.load(Ordering::SeqCst), 1);
    // Rejected deliveries touch nothing.
    send(&rig, signed(&b, "wrong")).await;
    assert_eq!(rig.store.calls.load(Ordering::SeqCst), 3);
}

/// A queue that refuses every message as SQS does one it can never take.
struct Refusing;

#[async_trait::async_trait]
impl Queue for Refusing {
    async fn send(&self, _msg: OutgoingMessage) -> Result<String, QueueError> {
        Err(QueueError::Rejected("InvalidMessageContents: invalid character".into()))
    }
    async fn send_batch(&self, msgs: Vec<OutgoingMessage>) -> Vec<Result<String, QueueError>> {
        msgs.iter().map(|_| Err(QueueError::Rejected("refused".into()))).collect()
    }
    async fn delay_retries(&self, _retries: Vec<(String, std::time::Duration)>) -> Result<(), QueueError> {
        Ok(())
    }
}

#[tokio::test]
async fn what_cannot_be_carried_is_refused_with_a_reason_not_a_503() {
    let rig = rig();
    // (b) A job id past DynamoDB's key limit would get "store unavailable" forever.
    let long = "j".repeat(3000);
    let (status, json) = send(&rig, signed(&body(&long, "generation.completed"), SECRET)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{json}");
    assert!(json["message"].as_str().unwrap().contains("job_id"), "{json}");
    // (c) Nesting the worker could not parse once wrapped in the inbox message.
    let mut deep = json!("leaf");
    for _ in 0..100 {
        deep = json!([deep]);
    }
    let b = json!({"event_type": "generation.completed", "job_id": "job_deep", "metadata": deep}).to_string();
    let (status, json) = send(&rig, signed(b.as_bytes(), SECRET)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{json}");
    assert!(json["message"].as_str().unwrap().contains("nested"), "{json}");
    assert!(rig.inbox.messages().is_empty() && rig.store.records().is_empty(), "nothing stored or queued");

    // A queue that refuses the message itself: 422 with the reason, and the key is free.
    let receiver = Receiver::new(
        rig.store.clone(),
        Arc::new(Refusing),
        katalo_only(HmacSecrets::new(SECRET, None)),
        ReceiverSettings::default(),
        rig.clock.clone(),
    );
    let resp = receiver.handle(signed(&body("job_9", "generation.completed"), SECRET), None).await;
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY, "{}", resp.body());
    assert!(resp.body().contains("InvalidMessageContents"));
    assert!(rig.store.records().is_empty());
}

#[tokio::test]
async fn characters_sqs_refuses_are_escaped_in_the_body_and_cleaned_in_attributes() {
    let rig = rig();
    // (a) Signed JSON with U+FFFF escaped in the text and a control character in the type.
    let b = br#"{"event_type":"generation.completed\u0007","job_id":"job_nc","reference":"a\uffffb\ufffe"}"#;
    let (status, json) = send(&rig, signed(b, SECRET)).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    let msg = &rig.inbox.messages()[0];
    assert!(msg.body.chars().all(crate::domain::limits::is_sqs_char), "{}", msg.body);
    for (k, v) in &msg.attributes {
        assert!(v.chars().all(crate::domain::limits::is_sqs_char), "{k}={v:?}");
    }
    let parsed: Value = serde_json::from_str(&msg.body).unwrap();
    assert_eq!(parsed["payload"]["reference"], "a\u{FFFF}b\u{FFFE}", "the value is kept exactly");
}

#[tokio::test]
async fn a_worker_lease_keeps_the_record_from_a_release_and_a_reclaim() {
    // Defect 1: SendMessage succeeded but the receiver saw a timeout; meanwhile a worker
    // leased the record. The release must not delete it, and the provider's retry must
    // not claim it afresh (which would enqueue and publish a second time).
    let rig = rig();
    let b = body("job_1", "generation.completed");
    let now_ms = rig.clock.now_ms();
    let claim = Claim {
        key: KEY.into(),
        claim_id: "c1".into(),
        lease_until_ms: now_ms + 1_000,
        expires_at: now_ms / 1000 + 3600,
        body_digest: body_sha256(&b),
        received_at: "t".into(),
    };
    assert_eq!(rig.store.claim(&claim, now_ms).await.unwrap(), ClaimOutcome::Claimed);
    let lease = crate::domain::dedupe::WorkLease {
        key: KEY.into(),
        token: "w1".into(),
        until_ms: now_ms + 120_000,
        expires_at: now_ms / 1000 + 7200,
        received_at: "t".into(),
    };
    assert!(matches!(rig.store.acquire_work(&lease, now_ms).await.unwrap(), LeaseOutcome::Acquired { .. }));
    rig.store.release(KEY, "c1").await.unwrap();
    assert!(rig.store.record(KEY).is_some(), "the leased record survives the release");
    rig.clock.advance(time::Duration::seconds(5));
    let (status, json) = send(&rig, signed(&b, SECRET)).await;
    assert_eq!((status, json["duplicate"].as_bool()), (StatusCode::OK, Some(true)), "{json}");
    assert!(rig.inbox.messages().is_empty(), "no second message");
}
