//! Replicate predictions through the whole pipeline: receiver → DynamoDB Local → SQS
//! inbox → worker (against the simulator's prediction API) → SQS outbox.

use std::time::Duration;

use genhook::providers::replicate::sweep::ReplicateSweepMessage;
use genhook_cli::simulate::script::Answer;
use genhook_cli::simulate::{JobSpec, Provider};
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

/// A prediction whose final webhook never comes is published by the watch its
/// `starting` delivery registered.
#[tokio::test]
async fn a_prediction_whose_final_webhook_never_comes_is_published_by_the_poller() {
    let h = Harness::new().await;
    let id = unique("pstart");
    h.katalo.script(&id, vec![Answer::Job(prediction(&id, "processing")), Answer::Job(prediction(&id, "succeeded"))]);
    let starting = serde_json::to_vec(&prediction(&id, "starting")).unwrap();
    assert_eq!(h.post_replicate("msg_start", &starting).await.0, 200);
    h.drain().await;

    let events = h.events().await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(
        (events[0]["type"].as_str(), events[0]["job_id"].as_str()),
        (Some("generation.completed"), Some(id.as_str()))
    );
    assert_eq!(h.katalo.calls(&id), 2, "one read at once, one poll");
}

/// A watched prediction still running when its horizon passes gives one
/// `generation.abandoned` event and one DLQ entry, with the same reason.
#[tokio::test]
async fn a_prediction_past_its_horizon_is_abandoned_with_the_dlq_reason() {
    let h = Harness::new().await;
    let id = unique("phorizon");
    h.katalo.script(&id, vec![Answer::Job(prediction(&id, "processing"))]);
    let now = time::OffsetDateTime::now_utc();
    let watch = genhook::providers::replicate::message::ReplicateWatchMessage {
        dedupe_key: genhook::providers::replicate::message::publish_key(&id),
        prediction_id: id.clone(),
        registered_at: genhook::domain::clock::rfc3339(now - time::Duration::days(1)),
        horizon_at: now.unix_timestamp() - 1,
        polls: 40,
    };
    let out = watch.outgoing(None);
    h.aws
        .sqs
        .send_message()
        .queue_url(&h.stack.inbox)
        .message_body(out.body)
        .message_group_id(out.group_id.unwrap())
        .message_deduplication_id(out.dedup_id.unwrap())
        .send()
        .await
        .unwrap();
    h.drain().await;

    let events = h.events().await;
    assert_eq!(events.len(), 1, "{events:?}");
    let e = &events[0];
    assert_eq!(
        (e["type"].as_str(), e["abandon_reason"].as_str()),
        (Some("generation.abandoned"), Some("horizon_passed"))
    );
    assert_eq!((e["status"].as_str(), e["provider_status"].as_str()), (Some("running"), Some("processing")));
    let dead = h.aws.receive_all(&h.stack.inbox_dlq).await;
    assert_eq!(dead.len(), 1);
    let reason =
        dead[0].message_attributes().and_then(|a| a.get("genhook_failure_reason")).and_then(|v| v.string_value());
    assert_eq!(reason, e["abandon_detail"].as_str());
    assert!(reason.is_some_and(|r| r.contains("horizon")), "{reason:?}");
}

/// Sends `message` to the harness's inbox.
async fn enqueue(h: &Harness, message: genhook::ports::OutgoingMessage) {
    let mut send = h.aws.sqs.send_message().queue_url(&h.stack.inbox).message_body(message.body);
    if let (Some(group), Some(dedup)) = (message.group_id, message.dedup_id) {
        send = send.message_group_id(group).message_deduplication_id(dedup);
    }
    send.send().await.unwrap();
}

/// A prediction that ended with no delivery at all (nobody registered it, its webhooks
/// were lost) is published by the sweep; the next sweep publishes nothing more.
#[tokio::test]
async fn a_prediction_with_no_delivery_at_all_is_published_by_the_sweep() {
    let h = Harness::new().await;
    let spec = JobSpec { runs_for: Duration::from_millis(50), ..JobSpec::default() };
    let (done, _running) = (
        h.katalo.create_prediction(spec.clone()),
        h.katalo.create_prediction(JobSpec { runs_for: Duration::from_secs(3600), ..spec }),
    );
    h.katalo.wait_for_webhook_body_for(Provider::Replicate, &done).await.unwrap();
    let reads = h.katalo.reads();

    enqueue(&h, ReplicateSweepMessage::start(Duration::from_secs(3600)).outgoing()).await;
    h.drain().await;
    let events = h.events().await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(
        (events[0]["job_id"].as_str(), events[0]["type"].as_str()),
        (Some(done.as_str()), Some("generation.completed"))
    );
    assert_eq!(h.katalo.reads() - reads, 2, "one page, one read of the ended prediction; none of the running one");

    // The next sweep finds it published: nothing more, and no read of it.
    enqueue(&h, ReplicateSweepMessage::start(Duration::from_secs(3600)).outgoing()).await;
    h.drain().await;
    assert!(h.events().await.is_empty());
    assert_eq!(h.katalo.reads() - reads, 3, "one more page only");
    assert!(h.aws.receive_all(&h.stack.inbox_dlq).await.is_empty());
}

/// A prediction's final webhook, its watch and a sweep, all at once, give one event.
#[tokio::test]
async fn a_webhook_a_watch_and_a_sweep_race_to_one_event() {
    let h = Harness::new().await;
    let id = h.katalo.create_prediction(JobSpec { runs_for: Duration::from_millis(50), ..JobSpec::default() });
    let body = h.katalo.wait_for_webhook_body_for(Provider::Replicate, &id).await.unwrap();
    let now = time::OffsetDateTime::now_utc();
    let watch = genhook::providers::replicate::watch::registration(&id, Duration::from_secs(3600), now).unwrap();
    let (posted, (), ()) = tokio::join!(
        h.post_replicate("msg_race", &body),
        enqueue(&h, watch.outgoing(None)),
        enqueue(&h, ReplicateSweepMessage::start(Duration::from_secs(3600)).outgoing()),
    );
    assert_eq!(posted.0, 200);
    h.drain().await;
    let events = h.events().await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(
        events[0]["event_id"],
        genhook::domain::dedupe::event_id(&format!("replicate#{id}#generation.completed"))
    );
}
