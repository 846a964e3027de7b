//! The receiver Lambda handler against DynamoDB Local and the SQS emulator.

use aws_sdk_dynamodb::types::AttributeValue;
use genhook::toolkit::auth::hmac::sign_hex;
use genhook_tests::lambda::{apigw_event, deliver};
use genhook_tests::{Harness, WEBHOOK_SECRET, WEBHOOK_SECRET_PREVIOUS, webhook};
use serde_json::json;

fn key(job: &str) -> String {
    genhook::domain::dedupe::delivery_key("katalo", job, "generation.completed")
}

#[tokio::test]
async fn accepts_once_and_acknowledges_duplicates() {
    let h = Harness::new().await;
    let body = webhook("job_happy", "generation.completed");
    assert_eq!(h.post(&body).await, (200, json!({"ok": true, "duplicate": false})));
    assert_eq!(h.post(&body).await, (200, json!({"ok": true, "duplicate": true})));
    assert_eq!(h.aws.depth(&h.stack.inbox).await, 1);

    let item = h.aws.item(&h.stack.table, &key("job_happy")).await.expect("dedupe record");
    assert_eq!(item["status"].as_s().unwrap(), "ENQUEUED");
    // The body's digest is the MAC that verified it (the attribute keeps its old name).
    let mac = sign_hex(WEBHOOK_SECRET.as_bytes(), &body);
    assert_eq!(item["body_sha256"].as_s().unwrap(), &format!("hmac-sha256:{mac}"));
    let ttl: i64 = item["expires_at"].as_n().unwrap().parse().unwrap();
    let days15 = time::OffsetDateTime::now_utc().unix_timestamp() + 15 * 24 * 3600;
    assert!((ttl - days15).abs() < 120, "TTL defaults to 15 days (past the queues' 14-day retention)");

    let msgs = h.aws.receive_all(&h.stack.inbox).await;
    let msg: serde_json::Value = serde_json::from_str(msgs[0].body().unwrap()).unwrap();
    assert_eq!(msg["type"], "katalo.webhook");
    assert_eq!(msg["job_id"], "job_happy");
    assert_eq!(msg["payload"]["reference"], "listing-123");
    // ...and carries the webhook as it was signed, byte for byte.
    let text = std::str::from_utf8(&body).unwrap();
    assert!(msgs[0].body().unwrap().ends_with(&format!(r#","payload":{text}}}"#)));
}

#[tokio::test]
async fn text_bodies_and_the_previous_secret_verify_too() {
    let h = Harness::new().await;
    let body = webhook("job_text", "generation.failed");
    let sig = sign_hex(WEBHOOK_SECRET_PREVIOUS.as_bytes(), &body).to_uppercase();
    let (status, _) = deliver(&h.receiver, apigw_event("POST", "/webhooks/katalo", &body, Some(&sig), false)).await;
    assert_eq!(status, 200);
    assert_eq!(h.aws.depth(&h.stack.inbox).await, 1);
}

#[tokio::test]
async fn forged_and_malformed_requests_write_nothing() {
    let h = Harness::new().await;
    let body = webhook("job_forged", "generation.completed");
    let forged = sign_hex(b"not-the-secret", &body);
    for sig in [None, Some("nothex"), Some(forged.as_str())] {
        let (status, json) = deliver(&h.receiver, apigw_event("POST", "/webhooks/katalo", &body, sig, true)).await;
        assert_eq!((status, json["error"].as_str()), (401, Some("invalid_signature")));
    }
    // Signed but not a usable webhook.
    let bad = br#"{"event_type":"generation.completed"}"#;
    let sig = sign_hex(WEBHOOK_SECRET.as_bytes(), bad);
    let (status, _) = deliver(&h.receiver, apigw_event("POST", "/webhooks/katalo", bad, Some(&sig), true)).await;
    assert_eq!(status, 400);
    // Too large, wrong method, wrong path.
    let huge = vec![b'x'; genhook::engine::receiver::LAMBDA_MAX_BODY_BYTES + 1];
    let sig = sign_hex(WEBHOOK_SECRET.as_bytes(), &huge);
    assert_eq!(deliver(&h.receiver, apigw_event("POST", "/webhooks/katalo", &huge, Some(&sig), true)).await.0, 413);
    assert_eq!(deliver(&h.receiver, apigw_event("GET", "/webhooks/katalo", b"", None, false)).await.0, 405);
    assert_eq!(deliver(&h.receiver, apigw_event("POST", "/webhooks/other", &body, None, true)).await.0, 404);

    assert!(h.aws.item(&h.stack.table, &key("job_forged")).await.is_none());
    assert_eq!(h.aws.depth(&h.stack.inbox).await, 0);
}

#[tokio::test]
async fn queue_failure_releases_the_claim_and_the_retry_delivers() {
    let h = Harness::new().await;
    let missing_queue = format!("{}-missing", h.stack.inbox);
    let broken = Harness::receiver_for(&h.stack, &missing_queue).await;
    let body = webhook("job_outage", "generation.completed");
    let (status, json) = h.post_with(&broken, &body).await;
    assert_eq!(status, 503);
    assert_eq!(json["retryable"], true);
    assert!(h.aws.item(&h.stack.table, &key("job_outage")).await.is_none(), "claim released");

    // The provider retries once the queue is back.
    assert_eq!(h.post(&body).await, (200, json!({"ok": true, "duplicate": false})));
    assert_eq!(h.aws.depth(&h.stack.inbox).await, 1);
}

async fn put_claim(h: &Harness, k: &str, lease_until_ms: i64, expires_at: i64) {
    h.aws
        .ddb
        .put_item()
        .table_name(&h.stack.table)
        .item("pk", AttributeValue::S(k.into()))
        .item("status", AttributeValue::S("IN_PROGRESS".into()))
        .item("claim_id", AttributeValue::S("crashed-receiver".into()))
        .item("lease_until_ms", AttributeValue::N(lease_until_ms.to_string()))
        .item("expires_at", AttributeValue::N(expires_at.to_string()))
        .item("body_sha256", AttributeValue::S("0".repeat(64)))
        .item("received_at", AttributeValue::S("2026-11-23T12:00:00Z".into()))
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn live_claims_defer_and_expired_claims_are_reclaimed() {
    let h = Harness::new().await;
    let now_ms = time::OffsetDateTime::now_utc().unix_timestamp() * 1000;
    let far = now_ms / 1000 + 3600;

    // A receiver that is still working on the same event: retryable, nothing enqueued.
    put_claim(&h, &key("job_live"), now_ms + 60_000, far).await;
    let (status, json) = h.post(&webhook("job_live", "generation.completed")).await;
    assert_eq!((status, json["error"].as_str()), (503, Some("in_progress")));
    assert_eq!(h.aws.depth(&h.stack.inbox).await, 0);

    // A receiver that crashed: its lease has run out, so the retry takes over.
    put_claim(&h, &key("job_dead"), now_ms - 1_000, far).await;
    assert_eq!(h.post(&webhook("job_dead", "generation.completed")).await.1["duplicate"], false);
    assert_eq!(h.aws.attr(&h.stack.table, &key("job_dead"), "status").await.as_deref(), Some("ENQUEUED"));

    // A record past its expiry that TTL has not deleted yet counts as absent.
    put_claim(&h, &key("job_old"), now_ms + 60_000, now_ms / 1000 - 10).await;
    assert_eq!(h.post(&webhook("job_old", "generation.completed")).await.1["duplicate"], false);
    assert_eq!(h.aws.depth(&h.stack.inbox).await, 2);
}

#[tokio::test]
async fn a_different_body_under_the_same_key_is_counted() {
    let h = Harness::new().await;
    h.post(&webhook("job_conflict", "generation.completed")).await;
    let other =
        json!({"event_type": "generation.completed", "job_id": "job_conflict", "reference": "changed"}).to_string();
    assert_eq!(h.post(other.as_bytes()).await.1["duplicate"], true);
    assert_eq!(h.aws.attr(&h.stack.table, &key("job_conflict"), "conflicts").await.as_deref(), Some("1"));
    assert_eq!(h.aws.depth(&h.stack.inbox).await, 1);
}
