//! Replicate through the whole pipeline on the in-memory adapters: the receiver as the
//! composition root builds it, and the worker on a scripted prediction API.

mod props;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use http::Request;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::macros::datetime;

use super::prediction::parse_prediction;
use super::reconcile::{ReplicateReconciler, Watching};
use crate::adapters::memory::{MemoryQueue, MemoryStore};
use crate::config::receiver;
use crate::domain::clock::ManualClock;
use crate::domain::job::Job;
use crate::engine::worker::{InboxRecord, Worker, WorkerPorts, WorkerSettings};
use crate::ports::env::Env;
use crate::ports::{JobApi, JobApiError, Queue};
use crate::toolkit::auth::standard_webhooks::Secret;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const NOW: OffsetDateTime = datetime!(2026-11-23 12:00:00 UTC);

/// The prediction API: answers from a script, one per read; the last one repeats.
struct Predictions(Mutex<VecDeque<Value>>);

#[async_trait]
impl JobApi for Predictions {
    async fn get_job(&self, id: &str) -> Result<Job, JobApiError> {
        let mut script = self.0.lock().unwrap();
        let p = if script.len() > 1 { script.pop_front().unwrap() } else { script.front().cloned().unwrap() };
        parse_prediction(&p, id, NOW).map_err(|e| JobApiError::Transient { reason: e.to_string(), retry_after: None })
    }
}

fn prediction(status: &str) -> Value {
    json!({"id": "p1", "status": status, "created_at": "2026-11-23T11:59:00Z", "completed_at": "2026-11-23T11:59:50Z",
           "output": if status == "succeeded" { json!(["https://replicate.delivery/xezq/a/out-0.webp"]) } else { Value::Null },
           "error": if status == "failed" { json!("CUDA out of memory") } else { Value::Null }})
}

fn delivery(body: &Value, id: &str, secret: &str) -> Request<Vec<u8>> {
    let body = body.to_string().into_bytes();
    let mut req = Request::post("/webhooks/replicate");
    for (name, value) in Secret::parse(secret).unwrap().headers(id, NOW.unix_timestamp(), &body) {
        req = req.header(name, value);
    }
    req.body(body).unwrap()
}

fn records(inbox: &MemoryQueue) -> Vec<InboxRecord> {
    inbox
        .messages()
        .into_iter()
        .enumerate()
        .map(|(i, m)| InboxRecord {
            message_id: format!("m{i}"),
            receipt_handle: format!("r{i}"),
            body: m.body,
            receive_count: 1,
            ..Default::default()
        })
        .collect()
}

#[tokio::test]
async fn one_event_per_prediction_confirmed_with_the_api() {
    let (store, inbox, outbox) =
        (Arc::new(MemoryStore::default()), Arc::new(MemoryQueue::default()), Arc::new(MemoryQueue::default()));
    let clock = Arc::new(ManualClock::new(NOW));
    let env = Env::from_pairs([("REPLICATE_WEBHOOK_SECRET", SECRET)]);
    let receiver = receiver(&env, store.clone(), inbox.clone(), clock.clone()).unwrap();

    // Progress, the final delivery, Replicate's retry of it, and a forgery.
    let answers: Vec<u16> = [
        delivery(&prediction("processing"), "msg_1", SECRET),
        delivery(&prediction("succeeded"), "msg_2", SECRET),
        delivery(&prediction("succeeded"), "msg_2", SECRET),
        delivery(&prediction("succeeded"), "msg_3", "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"),
    ]
    .into_iter()
    .map(|r| async { receiver.handle(r, None).await.status().as_u16() })
    .collect::<futures_util::future::JoinAll<_>>()
    .await;
    assert_eq!(answers, [200, 200, 200, 401]);
    assert_eq!(inbox.messages().len(), 2, "progress + final; the retry was a duplicate");

    // The API lags the webhook once, then agrees. (Without the watch: the progress
    // delivery is dropped; the watch has its own test.)
    let api = Predictions(Mutex::new([prediction("processing"), prediction("succeeded")].into()));
    let ports = WorkerPorts { store, inbox: inbox.clone(), inbox_dlq: None, outbox: outbox.clone(), clock };
    let unwatched = Watching { auto_watch: false, ..Watching::default() };
    let reconciler = ReplicateReconciler::new(Arc::new(api)).watching(unwatched);
    let worker = Worker::new(ports, vec![Arc::new(reconciler)], WorkerSettings::default());
    let report = worker.process_batch(records(&inbox)).await;
    assert_eq!((report.skipped, report.retried, report.published), (1, 1, 0), "{report:?}");
    let report = worker.process_batch(records(&inbox)).await;
    assert_eq!(report.published, 1, "{report:?}");
    // Every message again (the two deliveries, and the copy the first retry sent anew).
    let report = worker.process_batch(records(&inbox)).await;
    assert_eq!((report.published, report.skipped), (0, 4), "published once: {report:?}");

    let events: Vec<Value> = outbox.messages().iter().map(|m| serde_json::from_str(&m.body).unwrap()).collect();
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert_eq!(
        (e["type"].as_str(), e["provider"].as_str(), e["job_id"].as_str()),
        (Some("generation.completed"), Some("replicate"), Some("p1"))
    );
    assert_eq!(e["outputs"][0]["url"], "https://replicate.delivery/xezq/a/out-0.webp");
    assert_eq!(e["outputs"][0]["expires_at"], "2026-11-23T12:59:50Z", "an hour after completion");
}

#[tokio::test]
async fn failed_and_canceled_predictions_publish_failed_events() {
    for status in ["failed", "canceled"] {
        let (store, inbox, outbox) =
            (Arc::new(MemoryStore::default()), Arc::new(MemoryQueue::default()), Arc::new(MemoryQueue::default()));
        let clock = Arc::new(ManualClock::new(NOW));
        let receiver = receiver(
            &Env::from_pairs([("REPLICATE_WEBHOOK_SECRET", SECRET)]),
            store.clone(),
            inbox.clone(),
            clock.clone(),
        )
        .unwrap();
        assert_eq!(receiver.handle(delivery(&prediction(status), "msg_9", SECRET), None).await.status(), 200);
        let api = Predictions(Mutex::new([prediction(status)].into()));
        let ports = WorkerPorts { store, inbox: inbox.clone(), inbox_dlq: None, outbox: outbox.clone(), clock };
        let worker =
            Worker::new(ports, vec![Arc::new(ReplicateReconciler::new(Arc::new(api)))], WorkerSettings::default());
        assert_eq!(worker.process_batch(records(&inbox)).await.published, 1);
        let e: Value = serde_json::from_str(&outbox.messages()[0].body).unwrap();
        assert_eq!((e["type"].as_str(), e["status"].as_str()), (Some("generation.failed"), Some(status)));
        assert!(e["outputs"].as_array().unwrap().is_empty());
    }
}

/// Replicate removes an API prediction's files after an hour and says so
/// (`data_removed: true`, `output: null`): a refresh of it is dead-lettered with that
/// reason, never a `generation.urls_refreshed` event without outputs.
#[tokio::test]
async fn a_refresh_of_a_prediction_whose_files_were_removed_is_dead_lettered() {
    let (store, inbox, outbox, dlq) = (
        Arc::new(MemoryStore::default()),
        Arc::new(MemoryQueue::default()),
        Arc::new(MemoryQueue::default()),
        Arc::new(MemoryQueue::default()),
    );
    let mut removed = prediction("succeeded");
    removed["output"] = Value::Null;
    removed["data_removed"] = json!(true);
    let api = Predictions(Mutex::new([removed].into()));
    let refresh = crate::providers::common::refresh::message("replicate", "p1", "req-1", NOW).unwrap();
    inbox.send(refresh).await.unwrap();
    let ports = WorkerPorts {
        store,
        inbox: inbox.clone(),
        inbox_dlq: Some(dlq.clone()),
        outbox: outbox.clone(),
        clock: Arc::new(ManualClock::new(NOW)),
    };
    let worker = Worker::new(ports, vec![Arc::new(ReplicateReconciler::new(Arc::new(api)))], WorkerSettings::default());
    let report = worker.process_batch(records(&inbox)).await;
    assert_eq!((report.published, report.dead_lettered), (0, 1), "{report:?}");
    assert!(outbox.messages().is_empty());
    assert!(dlq.messages()[0].attributes[0].1.contains("the provider has removed its outputs"));
}

/// Issue 21: a prediction whose `starting` delivery came but whose final webhook never
/// does is published by the watch that delivery registered: the first poll reads it at
/// once, the next ones on the backoff, until it ends; the event is the one a final
/// webhook would have given, and a late final webhook finds it published.
#[tokio::test]
async fn a_prediction_whose_final_webhook_never_comes_is_published_by_its_watch() {
    use crate::adapters::memory::MemoryQueueSettings;
    use crate::ports::QueueConsumer;
    let clock = Arc::new(ManualClock::new(NOW));
    let inbox = Arc::new(MemoryQueue::new(MemoryQueueSettings { clock: clock.clone(), ..Default::default() }));
    let (store, outbox) = (Arc::new(MemoryStore::default()), Arc::new(MemoryQueue::default()));
    let env = Env::from_pairs([("REPLICATE_WEBHOOK_SECRET", SECRET)]);
    let receiver = receiver(&env, store.clone(), inbox.clone(), clock.clone()).unwrap();
    assert_eq!(receiver.handle(delivery(&prediction("starting"), "msg_1", SECRET), None).await.status(), 200);

    let api = Predictions(Mutex::new(
        [prediction("starting"), prediction("processing"), prediction("processing"), prediction("succeeded")].into(),
    ));
    let ports =
        WorkerPorts { store, inbox: inbox.clone(), inbox_dlq: None, outbox: outbox.clone(), clock: clock.clone() };
    let worker = Worker::new(ports, vec![Arc::new(ReplicateReconciler::new(Arc::new(api)))], WorkerSettings::default());
    // The event source: every message as it becomes due, the clock moved on to the next.
    let mut rescheduled = 0;
    for _ in 0..20 {
        let batch = inbox.receive(10, std::time::Duration::ZERO).await.unwrap();
        if batch.is_empty() {
            if inbox.held_ids().is_empty() {
                break;
            }
            clock.advance(time::Duration::minutes(1));
            continue;
        }
        let receipts: Vec<String> = batch.iter().map(|m| m.receipt_handle.clone()).collect();
        let report = worker.process_batch(batch.into_iter().map(InboxRecord::from).collect()).await;
        rescheduled += report.rescheduled;
        inbox.delete(receipts).await.unwrap();
    }
    assert_eq!(rescheduled, 3, "polled while starting, processing, processing");
    let events: Vec<Value> = outbox.messages().iter().map(|m| serde_json::from_str(&m.body).unwrap()).collect();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["type"], "generation.completed");
    // The id a final webhook's event has: keyed by prediction and type.
    let id =
        crate::domain::dedupe::event_id(&crate::domain::dedupe::dedupe_key("replicate", "p1", "generation.completed"));
    assert_eq!(events[0]["event_id"], id);
    assert_eq!(events[0]["received_at"], "2026-11-23T12:00:00Z", "when the starting delivery was received");
}
