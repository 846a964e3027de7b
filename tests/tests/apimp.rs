//! APIMP through the whole pipeline: upstream callbacks into the receiver's Lambda
//! handler with minted callback URLs, registrations and polls through the worker's, on
//! DynamoDB Local + the SQS emulator, against a fake APIMP status API.

use genhook::domain::clock::{Clock, SystemClock};
use genhook::providers::apimp::capability::mint_callback_url;
use genhook::providers::apimp::upstream::Upstream;
use genhook::providers::apimp::watch::{DEFAULT_HORIZON, watch};
use genhook::toolkit::auth::hmac::HmacSecrets;
use genhook_tests::fake_apimp::status;
use genhook_tests::lambda::{apigw_event, deliver};
use genhook_tests::{APIMP_CALLBACK_SECRET, Harness, unique};
use serde_json::{Value, json};

/// The path and query of a minted callback URL for this stack.
fn callback_path(upstream: Upstream, reference: &str) -> String {
    let secrets = HmacSecrets::new(APIMP_CALLBACK_SECRET, None);
    let url = mint_callback_url("https://api1234.execute-api.us-east-1.amazonaws.com", upstream, reference, &secrets)
        .unwrap();
    url.trim_start_matches("https://api1234.execute-api.us-east-1.amazonaws.com").to_string()
}

async fn callback(h: &Harness, path: &str, body: &Value) -> (u16, Value) {
    deliver(&h.receiver, apigw_event("POST", path, body.to_string().as_bytes(), None, false)).await
}

async fn register(h: &Harness, reference: &str, task_id: &str, upstream: Option<Upstream>) {
    let inbox = genhook::adapters::sqs::SqsQueue::new(h.aws.sqs.clone(), h.stack.inbox.clone());
    watch(&inbox, reference, task_id, upstream, DEFAULT_HORIZON, SystemClock.now()).await.unwrap();
}

#[tokio::test]
async fn every_upstream_callback_is_accepted_once_and_the_challenge_is_echoed() {
    let h = Harness::new().await;
    let fixtures = [
        (
            Upstream::Kling,
            json!({"task_id": "kt_9", "task_status": "succeed", "task_result": {"videos": [{"url": "https://k/v.mp4", "duration": "5"}]}}),
        ),
        (
            Upstream::Doubao,
            json!({"id": "cgt-2025-x", "status": "succeeded", "content": {"video_url": "https://ark/v.mp4"}, "created_at": 1743414619}),
        ),
        (
            Upstream::Minimax,
            json!({"task_id": 115334141465231360_u64, "status": "Success", "base_resp": {"status_code": 0}}),
        ),
        (Upstream::Vidu, json!({"id": "vidu_9", "state": "success", "creations": [{"url": "https://v/c.mp4"}]})),
    ];
    for (upstream, body) in &fixtures {
        let path = callback_path(*upstream, "order-1");
        assert_eq!(callback(&h, &path, body).await, (200, json!({"ok": true, "duplicate": false})), "{upstream}");
        assert_eq!(callback(&h, &path, body).await.1["duplicate"], true, "{upstream} retried");
    }
    assert_eq!(h.aws.depth(&h.stack.inbox).await, 4);

    let (status, body) =
        callback(&h, &callback_path(Upstream::Minimax, "order-1"), &json!({"challenge": "ch-1"})).await;
    assert_eq!((status, body), (200, json!({"challenge": "ch-1"})));
    let forged = callback(&h, "/webhooks/apimp/kling?ref=order-1&token=00", &fixtures[0].1).await;
    assert_eq!(forged.0, 401);
    assert_eq!(h.aws.depth(&h.stack.inbox).await, 4, "neither the challenge nor the forgery is queued");
}

#[tokio::test]
async fn a_callback_before_its_registration_waits_and_publishes_once() {
    let h = Harness::new().await;
    let (reference, task) = (unique("order"), unique("task"));
    h.apimp.script(&task, vec![status(&task, "finished", 100)]);
    let path = callback_path(Upstream::Kling, &reference);
    assert_eq!(callback(&h, &path, &json!({"task_id": "kt_1", "task_status": "succeed"})).await.0, 200);
    // The worker sees the callback first: no task is registered for the reference yet.
    let early = genhook_tests::lambda::pump(&h.aws, &h.worker, &h.stack.inbox).await;
    assert_eq!((early.received, early.failed.len()), (1, 0), "it waits (sent anew) instead of failing");
    assert_eq!(h.aws.depth(&h.stack.inbox).await, 1, "the copy waits on the inbox");
    assert_eq!(h.apimp.calls(&task), 0);

    register(&h, &reference, &task, Some(Upstream::Kling)).await;
    h.drain().await;
    let events = h.events().await;
    assert_eq!(events.len(), 1, "{events:?}");
    let e = &events[0];
    assert_eq!((e["provider"].as_str(), e["job_id"].as_str()), (Some("apimp"), Some(task.as_str())));
    assert_eq!((e["upstream"].as_str(), e["reference"].as_str()), (Some("kling"), Some(reference.as_str())));
    assert_eq!(e["outputs"][0]["media"], "video");
    assert_eq!(h.aws.depth(&h.stack.inbox_dlq).await, 0);
}

#[tokio::test]
async fn a_polling_only_task_reaches_terminal_through_the_poller() {
    let h = Harness::new().await;
    let (reference, task) = (unique("render"), unique("task"));
    h.apimp.script(
        &task,
        vec![status(&task, "not_started", 0), status(&task, "running", 40), status(&task, "finished", 100)],
    );
    register(&h, &reference, &task, None).await;
    h.drain().await;
    let events = h.events().await;
    assert_eq!(events.len(), 1);
    assert_eq!(
        (events[0]["type"].as_str(), events[0]["status"].as_str()),
        (Some("generation.completed"), Some("succeeded"))
    );
    assert!(events[0].get("upstream").is_none());
    assert_eq!(h.apimp.calls(&task), 3, "polled until terminal, then no more");
    let key = genhook::providers::apimp::message::publish_key(&task);
    assert_eq!(h.aws.attr(&h.stack.table, &key, "status").await.as_deref(), Some("PUBLISHED"));
}

#[tokio::test]
async fn a_callback_and_a_poll_racing_publish_one_event() {
    let h = Harness::new().await;
    let (reference, task) = (unique("order"), unique("task"));
    h.apimp.script(&task, vec![status(&task, "finished", 100)]);
    // The registration and the callback are in the inbox together.
    register(&h, &reference, &task, Some(Upstream::Vidu)).await;
    let path = callback_path(Upstream::Vidu, &reference);
    assert_eq!(callback(&h, &path, &json!({"id": "vidu_7", "state": "success"})).await.0, 200);
    h.drain().await;
    let events = h.events().await;
    assert_eq!(events.len(), 1, "{events:?}");
    let expected = genhook::domain::dedupe::event_id(&format!("apimp#{task}#generation.completed"));
    assert_eq!(events[0]["event_id"], Value::String(expected));
}

#[tokio::test]
async fn vidu_signatures_and_stale_dates_when_a_vidu_secret_is_configured() {
    let h = Harness::new().await;
    let receiver =
        Harness::receiver_with(&h.stack, &h.stack.inbox, &[("VIDU_CALLBACK_SECRET", "vidu-integration-key".into())])
            .await;
    let path_and_query = callback_path(Upstream::Vidu, "order-v");
    let (path, query) = path_and_query.split_once('?').unwrap();
    let body = json!({"id": "vidu_5", "state": "success"}).to_string();
    let send = |date: String| {
        let mut event = apigw_event("POST", &path_and_query, body.as_bytes(), None, false);
        for (k, v) in genhook::providers::apimp::vidu::sign("vidu-integration-key", path, query, &date, "nonce-7") {
            event.headers_mut().insert(k, v.parse().unwrap());
        }
        deliver(&receiver, event)
    };
    let now = time::OffsetDateTime::now_utc();
    let http_date = |t: time::OffsetDateTime| httpdate::fmt_http_date(t.into());
    assert_eq!(send(http_date(now - time::Duration::minutes(6))).await.0, 401, "stale Date");
    assert_eq!(deliver(&receiver, apigw_event("POST", &path_and_query, body.as_bytes(), None, false)).await.0, 401);
    assert_eq!(h.aws.depth(&h.stack.inbox).await, 0);
    assert_eq!(send(http_date(now)).await, (200, json!({"ok": true, "duplicate": false})));
    assert_eq!(h.aws.depth(&h.stack.inbox).await, 1);
}
