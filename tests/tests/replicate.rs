//! Replicate predictions through the whole pipeline: receiver → DynamoDB Local → SQS
//! inbox → worker (against the simulator's prediction API) → SQS outbox.

use genhook_cli::simulate::script::Answer;
use genhook_tests::{Harness, unique};
use serde_json::{Value, json};

/// A prediction created now, as Replicate's API and webhooks give it, with `output` once
/// it succeeded (now).
fn prediction(id: &str, status: &str) -> Value {
    let now = genhook::domain::clock::rfc3339(time::OffsetDateTime::now_utc());
    let output = if status == "succeeded" {
        json!([format!("https://replicate.delivery/xezq/{id}/out-0.png")])
    } else {
        Value::Null
    };
    json!({
        "id": id, "model": "acme/img2img", "version": "v1", "status": status,
        "input": {"prompt": "a lighthouse"}, "logs": "", "output": output, "error": null,
        "created_at": now, "completed_at": if status == "succeeded" { json!(now) } else { Value::Null },
        "data_removed": false,
        "urls": {"get": format!("https://api.replicate.com/v1/predictions/{id}")}
    })
}

/// A final webhook of 2 MB (its `input` a data URI, as image-to-image predictions carry)
/// is verified whole, queued thin, and published once from the API; its retry is a
/// duplicate.
#[tokio::test]
async fn a_two_megabyte_signed_final_webhook_is_published_once() {
    let h = Harness::new().await;
    let id = unique("p2mb");
    h.katalo.script(&id, vec![Answer::Job(prediction(&id, "succeeded"))]);
    let mut body = prediction(&id, "succeeded");
    body["input"]["image"] = json!(format!("data:image/png;base64,{}", "A".repeat(2 * 1024 * 1024)));
    let body = serde_json::to_vec(&body).unwrap();
    assert!(body.len() > 2 * 1024 * 1024);

    assert_eq!(h.post_replicate("msg_final", &body).await, (200, json!({"ok": true, "duplicate": false})));
    let queued = h.aws.receive_all(&h.stack.inbox).await;
    assert_eq!(queued.len(), 1);
    let message: Value = serde_json::from_str(queued[0].body().unwrap()).unwrap();
    assert_eq!(message["thin"]["body_bytes"], body.len());
    assert_eq!(message["thin"]["body_sha256"], genhook::domain::dedupe::body_sha256(&body));
    // Back on the queue at once, as the worker would find it.
    let handle = queued[0].receipt_handle().unwrap();
    h.aws
        .sqs
        .change_message_visibility()
        .queue_url(&h.stack.inbox)
        .receipt_handle(handle)
        .visibility_timeout(0)
        .send()
        .await
        .unwrap();
    h.drain().await;
    // Replicate's retry of the same delivery.
    assert_eq!(h.post_replicate("msg_final", &body).await, (200, json!({"ok": true, "duplicate": true})));
    h.drain().await;

    let events = h.events().await;
    assert_eq!(events.len(), 1, "{events:?}");
    let e = &events[0];
    assert_eq!((e["type"].as_str(), e["provider"].as_str()), (Some("generation.completed"), Some("replicate")));
    assert_eq!(e["job_id"], id);
    assert_eq!(e["outputs"][0]["url"], format!("https://replicate.delivery/xezq/{id}/out-0.png"));
    assert_eq!(h.katalo.calls(&id), 1);
}
