//! Exactly once under faults: the receiver and worker talk to DynamoDB Local and the SQS
//! emulator through fault proxies that refuse, drop, hold or answer late, chosen per
//! operation (`X-Amz-Target`). Each scenario ends by draining the inbox through the real
//! worker and counting the job's events on the outbox.

use std::sync::Arc;
use std::time::Duration;

use genhook::domain::dedupe::event_id;
use genhook_cli::simulate::script::{Answer, Gate};
use genhook_tests::fake_katalo::succeeded;
use genhook_tests::lambda::{Pump, pump, pump_until_empty};
use genhook_tests::proxied::{Proxies, Tuning, WorkerOptions, eventually};
use genhook_tests::proxy::{Action, Rule, Stage};
use genhook_tests::{Harness, webhook};
use serde_json::json;

/// Longer than any client here waits: the client gives up and the proxy drops the answer.
const NEVER: Duration = Duration::from_secs(60);

/// The key the receiver claims a job's `generation.completed` delivery under.
fn key(job: &str) -> String {
    genhook::domain::dedupe::delivery_key("katalo", job, "generation.completed")
}

/// The job's events on the outbox, after checking they all carry the job's one event id.
async fn events_for(h: &Harness, job: &str) -> Vec<serde_json::Value> {
    let events: Vec<_> = h.events().await.into_iter().filter(|e| e["job_id"] == job).collect();
    for e in &events {
        let id = event_id(&genhook::domain::dedupe::dedupe_key("katalo", job, "generation.completed"));
        assert_eq!(e["event_id"], id, "every copy carries the same event id: {e}");
    }
    events
}

/// Drains the inbox through a healthy worker and checks it is empty. Its work lease is
/// short: copies of a message that found another copy's lease wait that long (the
/// harness worker's 120 s lease would outlast the drain).
async fn drain(h: &Harness) -> Vec<Pump> {
    let worker = h.worker_on(&h.aws, WorkerOptions { lease: Duration::from_secs(2), ..Default::default() });
    drain_with(h, &worker).await
}

async fn drain_with(h: &Harness, worker: &genhook::engine::worker::Worker) -> Vec<Pump> {
    let pumps = pump_until_empty(&h.aws, worker, &h.stack.inbox, 80).await;
    assert_eq!(h.aws.depth(&h.stack.inbox).await, 0, "the inbox drained");
    pumps
}

/// The job's key: the worker leases it and marks it PUBLISHED (the receiver's record of
/// the delivery, under [`key`], stays ENQUEUED).
fn job_key(job: &str) -> String {
    genhook::providers::katalo::message::publish_key(job)
}

/// The status of the job's record.
async fn status(h: &Harness, job: &str) -> Option<String> {
    h.aws.attr(&h.stack.table, &job_key(job), "status").await
}

#[tokio::test]
async fn through_idle_proxies_nothing_changes() {
    let h = Harness::new().await;
    let p = Proxies::start().await;
    let receiver = h.receiver_on(&p.clients(Tuning::default()).await);
    h.katalo.script("job_proxy", vec![Answer::Job(succeeded("job_proxy", 3600))]);

    let (code, body) = h.post_with(&receiver, &webhook("job_proxy", "generation.completed")).await;
    assert_eq!((code, &body["duplicate"]), (200, &json!(false)));
    for op in ["PutItem", "UpdateItem"] {
        assert_eq!(p.ddb.count(op, Stage::Delivered), 1, "{op} went through the proxy: {:#?}", p.ddb.log());
    }
    assert_eq!(p.sqs.count("SendMessage", Stage::Delivered), 1, "{:#?}", p.sqs.log());

    drain(&h).await;
    assert_eq!(events_for(&h, "job_proxy").await.len(), 1);
    assert_eq!(status(&h, "job_proxy").await.as_deref(), Some("PUBLISHED"));
}

/// Scenario 1: SendMessage lands but its answer never arrives, on every SDK attempt: the
/// receiver answers 503 and releases the claim; the provider's retry is accepted as new;
/// the inbox holds one copy per attempt plus the retry's, and the worker publishes once.
#[tokio::test]
async fn a_send_that_landed_but_timed_out_is_retried_and_published_once() {
    let h = Harness::new().await;
    let p = Proxies::start().await;
    let receiver = h.receiver_on(&p.clients(Tuning::with_retries()).await);
    h.katalo.script("job_lost_ack", vec![Answer::Job(succeeded("job_lost_ack", 3600))]);
    p.sqs.add(Rule::op("SendMessage", Action::DelayResponse(NEVER)));
    let body = webhook("job_lost_ack", "generation.completed");

    let (code, headers, answer) = Harness::post_full(&receiver, &body).await;
    assert_eq!(code, 503, "{answer}");
    assert_eq!(answer["error"], "unavailable");
    assert!(headers.contains_key("retry-after"));
    let landed = p.sqs.count("SendMessage", Stage::Answered);
    assert_eq!(landed, 3, "each SDK attempt reached the queue: {:#?}", p.sqs.log());
    assert_eq!(p.sqs.count("SendMessage", Stage::Delivered), 0);
    assert_eq!(h.aws.depth(&h.stack.inbox).await, landed);
    assert_eq!(h.aws.item(&h.stack.table, &key("job_lost_ack")).await, None, "the claim was released");

    // The provider retries through a healthy receiver.
    let (code, answer) = h.post(&body).await;
    assert_eq!((code, &answer["duplicate"]), (200, &json!(false)), "{answer}");
    assert_eq!(h.aws.depth(&h.stack.inbox).await, landed + 1);

    drain(&h).await;
    assert_eq!(events_for(&h, "job_lost_ack").await.len(), 1, "one event from {} inbox copies", landed + 1);
    assert_eq!(status(&h, "job_lost_ack").await.as_deref(), Some("PUBLISHED"));
    assert_eq!(h.katalo.calls("job_lost_ack"), 1, "the other copies found the record PUBLISHED");
}

/// Scenario 1, control: SendMessage never reaches the queue (the request is swallowed):
/// 503, nothing queued, the claim released; the retry is published once.
#[tokio::test]
async fn a_send_that_never_arrived_is_retried_and_published_once() {
    let h = Harness::new().await;
    let job = "job_lost_send";
    let p = Proxies::start().await;
    let receiver = h.receiver_on(&p.clients(Tuning::default()).await);
    h.katalo.script(job, vec![Answer::Job(succeeded(job, 3600))]);
    p.sqs.add(Rule::op("SendMessage", Action::Drop));
    let body = webhook(job, "generation.completed");

    let (code, answer) = h.post_with(&receiver, &body).await;
    assert_eq!((code, &answer["error"]), (503, &json!("unavailable")), "{answer}");
    assert_eq!(p.sqs.count("SendMessage", Stage::Forwarded), 0);
    assert_eq!(h.aws.depth(&h.stack.inbox).await, 0);
    assert_eq!(h.aws.item(&h.stack.table, &key(job)).await, None, "the claim was released");

    let (code, answer) = h.post(&body).await;
    assert_eq!((code, &answer["duplicate"]), (200, &json!(false)), "{answer}");
    drain(&h).await;
    assert_eq!(events_for(&h, job).await.len(), 1);
    assert_eq!(status(&h, job).await.as_deref(), Some("PUBLISHED"));
}

/// Scenario 2 (defect 1; FAILS on the current library, kept on purpose until the fix):
/// SendMessage lands but times out, and a worker leases the record and starts
/// reconciling before the receiver's release runs. The release must not free the key
/// the worker now owns: otherwise the provider's retry claims a clean record, enqueues a
/// second copy, a second worker publishes it, and the first worker publishes again.
#[tokio::test]
async fn a_release_racing_a_worker_does_not_publish_twice() {
    let h = Arc::new(Harness::new().await);
    let job = "job_race";
    let p = Proxies::start().await;
    // One attempt per call: exactly one copy lands from the first delivery.
    let receiver = h.receiver_on(&p.clients(Tuning::default()).await);
    p.sqs.add(Rule::op("SendMessage", Action::DelayResponse(NEVER)));
    // The release (DeleteItem) lands only when the test says so.
    let release = Gate::new();
    p.ddb.add(Rule::op("DeleteItem", Action::Hold(release.clone())));
    // The first worker's read of the job blocks until the test says so; later reads answer at once.
    let katalo = Gate::new();
    h.katalo.script(job, vec![Answer::Gated(katalo.clone(), succeeded(job, 3600)), Answer::Job(succeeded(job, 3600))]);
    let body = webhook(job, "generation.completed");

    let first = tokio::spawn(async move { Harness::post_full(&receiver, &body).await });
    p.sqs.wait_for("SendMessage", Stage::Answered, 1).await;

    // Worker 1 takes the message, leases the record and waits on the API. Its lease is
    // short only so that, once the bug is fixed, the drain below is quick; it stays live
    // for as long as this orchestration needs.
    let aws = h.aws.clone();
    let w1 = h.worker_on(&aws, WorkerOptions { http_timeout: Duration::from_secs(30), lease: Duration::from_secs(8) });
    let inbox = h.stack.inbox.clone();
    let worker1 = tokio::spawn(async move { pump(&aws, &w1, &inbox).await });
    eventually("worker 1 is reconciling", || h.katalo.calls(job) == 1).await;

    // Now the receiver's release lands.
    p.ddb.wait_for("DeleteItem", Stage::Received, 1).await;
    release.open();
    p.ddb.wait_for("DeleteItem", Stage::Answered, 1).await;
    let (code, _, answer) = first.await.unwrap();
    assert_eq!(code, 503, "the send timed out: {answer}");
    let after_release = h.aws.item(&h.stack.table, &key(job)).await;
    eprintln!("record after the receiver's release: {after_release:?}");

    // The provider retries. Fixed, this is a duplicate (or "in progress, retry").
    let body = webhook(job, "generation.completed");
    let (retry_code, retry_answer) = h.post(&body).await;
    eprintln!("provider retry: {retry_code} {retry_answer}");
    // A second worker sees whatever the retry enqueued while worker 1 is still busy.
    let second = pump(&h.aws, &h.worker, &h.stack.inbox).await;
    eprintln!("worker 2 while worker 1 reconciles: {second:?}");

    katalo.open();
    let first_pump = worker1.await.unwrap();
    assert_eq!((first_pump.received, first_pump.failed.len()), (1, 0), "worker 1 finished its message");
    drain(&h).await;
    if retry_code != 200 {
        let (code, answer) = h.post(&body).await;
        assert_eq!((code, &answer["duplicate"]), (200, &json!(true)), "{answer}");
    }

    let events = events_for(&h, job).await;
    assert_eq!(
        events.len(),
        1,
        "exactly one event (defect 1: the receiver's release deleted the record worker 1 had leased; \
         record after release: {after_release:?}; retry answered {retry_code} {retry_answer})"
    );
    assert_eq!(status(&h, job).await.as_deref(), Some("PUBLISHED"));
}

/// Scenario 3: the store goes down right after the claim, so the ENQUEUED mark fails. The
/// message is queued, so the receiver still acknowledges; the delivery's record stays
/// IN_PROGRESS (a retry meanwhile is told to come back) and the worker publishes once
/// under the job's key.
#[tokio::test]
async fn the_store_failing_after_the_claim_still_acknowledges_and_publishes_once() {
    let h = Harness::new().await;
    let job = "job_store_after_claim";
    let p = Proxies::start().await;
    let receiver = h.receiver_on(&p.clients(Tuning::default()).await);
    h.katalo.script(job, vec![Answer::Job(succeeded(job, 3600))]);
    p.ddb.add(Rule::op("PutItem", Action::Pass).times(1));
    p.ddb.add(Rule::any(Action::Refuse));
    let body = webhook(job, "generation.completed");

    let (code, answer) = h.post_with(&receiver, &body).await;
    assert_eq!((code, &answer["duplicate"]), (200, &json!(false)), "queued, so acknowledged: {answer}");
    assert_eq!(p.ddb.count("UpdateItem", Stage::Refused), 1, "the ENQUEUED mark failed: {:#?}", p.ddb.log());
    assert_eq!(h.aws.attr(&h.stack.table, &key(job), "status").await.as_deref(), Some("IN_PROGRESS"));
    assert_eq!(h.aws.depth(&h.stack.inbox).await, 1);

    // A duplicate delivery while the claim's lease runs is asked to retry, not queued.
    let (code, headers, answer) = Harness::post_full(&h.receiver, &body).await;
    assert_eq!((code, &answer["error"]), (503, &json!("in_progress")), "{answer}");
    assert!(headers.contains_key("retry-after"));
    assert_eq!(h.aws.depth(&h.stack.inbox).await, 1);

    drain(&h).await;
    assert_eq!(events_for(&h, job).await.len(), 1);
    assert_eq!(status(&h, job).await.as_deref(), Some("PUBLISHED"));
    // The delivery's own record is not the job's: it stays IN_PROGRESS until its claim
    // lease ends, so a retry meanwhile is still told to come back; after the lease a
    // retry re-queues, and the worker finds the job PUBLISHED (no second event).
    let (code, answer) = h.post(&body).await;
    assert_eq!((code, &answer["error"]), (503, &json!("in_progress")), "{answer}");
    assert_eq!(h.aws.depth(&h.stack.inbox).await, 0);
}

/// Scenario 3, variant: the store is down before the claim: 503 with Retry-After and
/// nothing queued; the provider's retry, once the store is back, is published once.
#[tokio::test]
async fn the_store_down_before_the_claim_answers_503_and_the_retry_publishes_once() {
    let h = Harness::new().await;
    let job = "job_store_down";
    let p = Proxies::start().await;
    let receiver = h.receiver_on(&p.clients(Tuning::default()).await);
    h.katalo.script(job, vec![Answer::Job(succeeded(job, 3600))]);
    p.ddb.add(Rule::any(Action::Refuse));
    let body = webhook(job, "generation.completed");

    let (code, headers, answer) = Harness::post_full(&receiver, &body).await;
    assert_eq!((code, &answer["error"]), (503, &json!("unavailable")), "{answer}");
    assert_eq!(headers.get("retry-after").and_then(|v| v.to_str().ok()), Some("5"));
    assert_eq!(p.ddb.count("PutItem", Stage::Refused), 1);
    assert_eq!(p.sqs.count("*", Stage::Received), 0, "nothing was sent");
    assert_eq!(h.aws.depth(&h.stack.inbox).await, 0);
    assert_eq!(h.aws.item(&h.stack.table, &key(job)).await, None);

    // The store is back: the same receiver accepts the retry.
    p.ddb.clear();
    let (code, answer) = h.post_with(&receiver, &body).await;
    assert_eq!((code, &answer["duplicate"]), (200, &json!(false)), "{answer}");
    drain(&h).await;
    assert_eq!(events_for(&h, job).await.len(), 1);
    assert_eq!(status(&h, job).await.as_deref(), Some("PUBLISHED"));
}

/// Scenario 4: the outbox send lands but its answer never arrives. The worker retries
/// the record and publishes it again: the documented at-least-once window, with the same
/// event id on every copy, and the record ends PUBLISHED.
#[tokio::test]
async fn an_outbox_send_that_landed_but_timed_out_republishes_the_same_event_id() {
    let h = Harness::new().await;
    let job = "job_outbox_timeout";
    let p = Proxies::start().await;
    let worker = h.worker_on(&p.clients(Tuning::default()).await, WorkerOptions::default());
    h.katalo.script(job, vec![Answer::Job(succeeded(job, 3600))]);
    p.sqs.add(Rule::op("SendMessageBatch", Action::DelayResponse(NEVER)).times(1));
    assert_eq!(h.post(&webhook(job, "generation.completed")).await.0, 200);

    let first = pump(&h.aws, &worker, &h.stack.inbox).await;
    assert_eq!((first.received, first.failed.len()), (1, 0), "the worker thinks the send failed: the record waits");
    // The outbox send landed; the second batch send is the record's copy on the inbox.
    assert_eq!(p.sqs.count("SendMessageBatch", Stage::Answered), 2, "{:#?}", p.sqs.log());
    assert_eq!(p.sqs.count("SendMessageBatch", Stage::Delivered), 1, "only the copy's answer came back");
    assert_ne!(status(&h, job).await.as_deref(), Some("PUBLISHED"));

    let pumps = drain_with(&h, &worker).await;
    assert!(pumps.iter().all(|p| p.failed.is_empty()), "{pumps:?}");
    let events = events_for(&h, job).await;
    assert_eq!(events.len(), 2, "the landed-but-unacknowledged send, then the retry's");
    assert_eq!(status(&h, job).await.as_deref(), Some("PUBLISHED"));
}

/// Scenario 4, variant: the store is down when the worker marks the record PUBLISHED.
/// The event is out once; the record keeps the worker's lease (not PUBLISHED), so a
/// duplicate delivery is still acknowledged without a new message; an SQS redelivery of
/// the inbox message after the lease runs out republishes the same event id and marks it.
#[tokio::test]
async fn the_store_down_at_mark_published_keeps_one_event_id() {
    let h = Harness::new().await;
    let job = "job_mark_fails";
    let p = Proxies::start().await;
    let lease = Duration::from_secs(2);
    let worker = h.worker_on(&p.clients(Tuning::default()).await, WorkerOptions { lease, ..Default::default() });
    h.katalo.script(job, vec![Answer::Job(succeeded(job, 3600))]);
    // The lease (UpdateItem) goes through; the store is down from then on.
    p.ddb.add(Rule::op("UpdateItem", Action::Pass).times(1));
    p.ddb.add(Rule::any(Action::Refuse));
    let body = webhook(job, "generation.completed");
    assert_eq!(h.post(&body).await.0, 200);

    let first = pump(&h.aws, &worker, &h.stack.inbox).await;
    assert_eq!((first.received, first.failed.len()), (1, 0), "published, so the message is done");
    assert_eq!(p.ddb.count("UpdateItem", Stage::Refused), 3, "the mark failed, three tries: {:#?}", p.ddb.log());
    assert_eq!(events_for(&h, job).await.len(), 1);
    assert_eq!(status(&h, job).await.as_deref(), Some("ENQUEUED"), "not marked");
    assert!(h.aws.attr(&h.stack.table, &job_key(job), "work_token").await.is_some(), "the lease is still held");
    assert_eq!(h.aws.depth(&h.stack.inbox).await, 0);

    // A duplicate delivery: acknowledged, nothing queued.
    let (code, answer) = h.post(&body).await;
    assert_eq!((code, &answer["duplicate"]), (200, &json!(true)), "{answer}");
    assert_eq!(h.aws.depth(&h.stack.inbox).await, 0);

    // SQS delivers the inbox message again (at least once); the store is back.
    p.ddb.clear();
    let inbox_msg = json!({"type": "katalo.webhook", "dedupe_key": key(job), "job_id": job,
        "event_type": "generation.completed", "received_at": "2026-11-23T12:00:00Z", "payload": {}});
    h.aws.sqs.send_message().queue_url(&h.stack.inbox).message_body(inbox_msg.to_string()).send().await.unwrap();
    let pumps = drain_with(&h, &worker).await;
    eprintln!("redelivery: {pumps:?}");
    // (events_for hides what it has read: these are the new ones.)
    let again = events_for(&h, job).await;
    assert_eq!(again.len(), 1, "one more copy with the same event id, once the lease ran out");
    assert_eq!(status(&h, job).await.as_deref(), Some("PUBLISHED"));
}
