//! The worker's APIMP paths on the in-memory adapters and a scripted status API.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::macros::datetime;

use crate::adapters::memory::{MemoryQueue, MemoryStore};
use crate::domain::clock::ManualClock;
use crate::domain::job::{Job, JobOutput, JobState};
use crate::engine::worker::{
    FAILURE_REASON_ATTRIBUTE, InboxRecord, UnconfiguredReconciler, Worker, WorkerPorts, WorkerSettings,
};
use crate::ports::JobApiError;
use crate::ports::provider::Reconciler;
use crate::ports::{JobApi, WatchStore};
use crate::providers::apimp::api::ApimpTask;
use crate::providers::apimp::message::{ApimpCallbackMessage, ApimpMessage, ApimpWatchMessage};
use crate::providers::apimp::reconcile::ApimpReconciler;
use crate::providers::apimp::upstream::Upstream;
use crate::providers::apimp::watch::registration;
use crate::providers::katalo::Katalo;

const NOW: OffsetDateTime = datetime!(2026-11-23 12:00:00 UTC);
const TASK: &str = "task_01HF8Z";

/// Answers `get_task` per task id from a script; the last answer repeats.
#[derive(Default)]
struct ScriptedTasks {
    answers: Mutex<HashMap<String, VecDeque<Result<ApimpTask, JobApiError>>>>,
}

impl ScriptedTasks {
    fn script(&self, task_id: &str, answers: Vec<Result<ApimpTask, JobApiError>>) {
        self.answers.lock().unwrap().insert(task_id.into(), answers.into());
    }
}

#[async_trait]
impl JobApi for ScriptedTasks {
    async fn get_job(&self, task_id: &str) -> Result<Job, JobApiError> {
        let mut all = self.answers.lock().unwrap();
        let a = all.get_mut(task_id).expect("scripted task");
        let answer = if a.len() > 1 { a.pop_front().unwrap() } else { a.front().cloned().unwrap() };
        answer.map(ApimpTask::into_job)
    }
}

fn task(status: &str, state: JobState) -> ApimpTask {
    let files = if state == JobState::Succeeded {
        vec![JobOutput {
            url: "https://cdn.example/out.mp4?sig=1".into(),
            expires_at: Some(NOW + time::Duration::hours(2)),
        }]
    } else {
        vec![]
    };
    ApimpTask { task_id: TASK.into(), status: status.into(), state, progress: Some(100), files, error_message: None }
}

struct Rig {
    worker: Worker,
    store: Arc<MemoryStore>,
    inbox: Arc<MemoryQueue>,
    dlq: Arc<MemoryQueue>,
    outbox: Arc<MemoryQueue>,
    api: Arc<ScriptedTasks>,
    clock: Arc<ManualClock>,
}

fn rig() -> Rig {
    let store = Arc::new(MemoryStore::default());
    let (inbox, dlq, outbox) =
        (Arc::new(MemoryQueue::default()), Arc::new(MemoryQueue::default()), Arc::new(MemoryQueue::default()));
    let api = Arc::new(ScriptedTasks::default());
    let clock = Arc::new(ManualClock::new(NOW));
    let ports = WorkerPorts {
        store: store.clone(),
        inbox: inbox.clone(),
        inbox_dlq: Some(dlq.clone()),
        outbox: outbox.clone(),
        clock: clock.clone(),
    };
    let reconcilers: Vec<Arc<dyn Reconciler>> =
        vec![Arc::new(UnconfiguredReconciler(&Katalo)), Arc::new(ApimpReconciler::new(api.clone(), store.clone()))];
    let worker = Worker::new(ports, reconcilers, WorkerSettings::default());
    Rig { worker, store, inbox, dlq, outbox, api, clock }
}

fn as_record(id: &str, message: &ApimpMessage) -> InboxRecord {
    InboxRecord {
        message_id: id.into(),
        receipt_handle: format!("rh-{id}"),
        body: message.to_json(),
        receive_count: 1,
        ..Default::default()
    }
}

fn watch_record(id: &str) -> (InboxRecord, ApimpWatchMessage) {
    let m = registration("order-7", TASK, None, Duration::from_secs(3600), NOW).unwrap();
    (as_record(id, &ApimpMessage::Watch(m.clone())), m)
}

fn callback_record(id: &str, status: &str, state: JobState) -> InboxRecord {
    as_record(
        id,
        &ApimpMessage::Callback(ApimpCallbackMessage {
            dedupe_key: format!("apimp#kling:kt_1#{status}"),
            upstream: Upstream::Kling,
            reference: "order-7".into(),
            upstream_task_id: "kt_1".into(),
            status: status.into(),
            state,
            received_at: "2026-11-23T11:59:00Z".into(),
            payload: json!({"task_id": "kt_1", "task_status": status}),
            thin: None,
        }),
    )
}

fn published(rig: &Rig) -> Vec<Value> {
    rig.outbox.messages().iter().map(|m| serde_json::from_str(&m.body).unwrap()).collect()
}

#[tokio::test]
async fn a_callback_before_its_registration_waits_then_publishes() {
    let rig = rig();
    rig.api.script(TASK, vec![Ok(task("finished", JobState::Succeeded))]);
    let early = rig.worker.process_batch(vec![callback_record("c1", "succeed", JobState::Succeeded)]).await;
    assert_eq!((early.retried, early.published, early.failed.len()), (1, 0, 0), "{early:?}");
    assert!(rig.store.get_watch("order-7").await.unwrap().is_none());

    // The registration arrives (and publishes, the task being done already).
    let (w, _) = watch_record("w1");
    assert_eq!(rig.worker.process_batch(vec![w]).await.published, 1);
    // The callback's retry finds the watch and the task's event already out: one event.
    let later = rig.worker.process_batch(vec![callback_record("c1", "succeed", JobState::Succeeded)]).await;
    assert_eq!((later.skipped, later.published), (1, 0));
    let events = published(&rig);
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert_eq!(
        (e["provider"].as_str(), e["job_id"].as_str(), e["type"].as_str()),
        (Some("apimp"), Some(TASK), Some("generation.completed"))
    );
    assert_eq!(
        (e["reference"].as_str(), e["status"].as_str(), e["provider_status"].as_str()),
        (Some("order-7"), Some("succeeded"), Some("finished"))
    );
    assert_eq!(e["metadata"], serde_json::Value::Null, "APIMP does not echo metadata; progress has its own field");
    assert_eq!(e["progress"], 100);
    assert_eq!(e["outputs"][0]["media"], "video", "file_type is ignored; the URL says video");
}

#[tokio::test]
async fn a_callback_publishes_with_its_upstream_ids_and_a_poll_then_finds_it_done() {
    let rig = rig();
    rig.api.script(TASK, vec![Ok(task("finished", JobState::Succeeded))]);
    let (_, m) = watch_record("w0");
    rig.store.put_watch(&m.watch).await.unwrap();
    let r = rig.worker.process_batch(vec![callback_record("c1", "succeed", JobState::Succeeded)]).await;
    assert_eq!(r.published, 1);
    let e = &published(&rig)[0];
    assert_eq!((e["upstream"].as_str(), e["upstream_task_id"].as_str()), (Some("kling"), Some("kt_1")));
    // The poller's next visit sees the task published: it stops.
    let poll = ApimpWatchMessage { polls: 3, ..m };
    let r = rig.worker.process_batch(vec![as_record("w2", &ApimpMessage::Watch(poll))]).await;
    assert_eq!((r.skipped, r.rescheduled, published(&rig).len()), (1, 0, 1));
}

#[tokio::test]
async fn callback_and_poll_in_one_batch_publish_one_event() {
    let rig = rig();
    rig.api.script(TASK, vec![Ok(task("finished", JobState::Succeeded))]);
    let (w, m) = watch_record("w1");
    rig.store.put_watch(&m.watch).await.unwrap();
    let r = rig.worker.process_batch(vec![w, callback_record("c1", "succeed", JobState::Succeeded)]).await;
    // One takes the task's lease and publishes; the other waits for it and then skips.
    assert_eq!(r.published, 1, "{r:?}");
    assert_eq!(published(&rig).len(), 1);
    let event_id = published(&rig)[0]["event_id"].clone();
    let again = rig.worker.process_batch(vec![callback_record("c1", "succeed", JobState::Succeeded)]).await;
    assert_eq!((again.skipped, published(&rig).len()), (1, 1));
    assert_eq!(published(&rig)[0]["event_id"], event_id);
}

#[tokio::test]
async fn a_polling_only_task_is_polled_with_delayed_messages_until_terminal() {
    let rig = rig();
    rig.api.script(
        TASK,
        vec![
            Ok(task("not_started", JobState::Pending)),
            Ok(task("running", JobState::Pending)),
            Ok(task("finished", JobState::Succeeded)),
        ],
    );
    let (w, _) = watch_record("w1");
    let r = rig.worker.process_batch(vec![w]).await;
    assert_eq!((r.rescheduled, r.failed.len(), r.published), (1, 0, 0), "the message is done; a new one is due later");
    assert_eq!(rig.store.get_watch("order-7").await.unwrap().unwrap().task_id, TASK);
    for round in 1..=2 {
        let sent = rig.inbox.messages();
        let next = sent.last().unwrap();
        assert!(next.delay.is_some_and(|d| d >= Duration::from_secs(1) && d <= Duration::from_secs(900)));
        let body: Value = serde_json::from_str(&next.body).unwrap();
        assert_eq!(body["polls"], round);
        let rec = InboxRecord {
            message_id: format!("w{}", round + 1),
            receipt_handle: "rh".into(),
            body: next.body.clone(),
            receive_count: 1,
            ..Default::default()
        };
        rig.worker.process_batch(vec![rec]).await;
    }
    assert_eq!(rig.inbox.messages().len(), 2, "two polls rescheduled, the third published");
    let events = published(&rig);
    assert_eq!((events.len(), events[0]["type"].as_str()), (1, Some("generation.completed")));
    assert!(events[0].get("upstream").is_none(), "polling-only: no upstream");
}

#[tokio::test]
async fn past_the_horizon_a_running_task_is_dead_lettered() {
    let rig = rig();
    rig.api.script(TASK, vec![Ok(task("running", JobState::Pending))]);
    let (w, _) = watch_record("w1");
    rig.clock.advance(time::Duration::seconds(3600));
    let r = rig.worker.process_batch(vec![w]).await;
    assert_eq!(r.dead_lettered, 1);
    let reason = &rig.dlq.messages()[0].attributes[0].1;
    assert!(reason.contains("horizon") && reason.contains("running"), "{reason}");
}

#[tokio::test]
async fn progress_callbacks_are_dropped_and_failed_tasks_publish_failed() {
    let rig = rig();
    let r = rig.worker.process_batch(vec![callback_record("c0", "processing", JobState::Pending)]).await;
    assert_eq!((r.skipped, r.failed.len()), (1, 0));
    let mut failed = task("failed", JobState::Failed);
    failed.error_message = Some("upstream refused the prompt".into());
    rig.api.script(TASK, vec![Ok(failed)]);
    let (w, _) = watch_record("w1");
    rig.worker.process_batch(vec![w]).await;
    let e = &published(&rig)[0];
    assert_eq!(
        (e["type"].as_str(), e["failure"]["message"].as_str()),
        (Some("generation.failed"), Some("upstream refused the prompt"))
    );
}

#[tokio::test]
async fn the_upstream_ahead_of_the_platform_is_retried_and_no_api_key_dead_letters() {
    let rig = rig();
    rig.api.script(TASK, vec![Ok(task("running", JobState::Pending))]);
    let (_, m) = watch_record("w0");
    rig.store.put_watch(&m.watch).await.unwrap();
    let r = rig.worker.process_batch(vec![callback_record("c1", "succeed", JobState::Succeeded)]).await;
    assert_eq!((r.retried, r.published), (1, 0));

    let bare = rig.worker.with_reconcilers(vec![Arc::new(UnconfiguredReconciler(&crate::providers::apimp::Apimp))]);
    let r = bare.process_batch(vec![callback_record("c2", "succeed", JobState::Succeeded)]).await;
    assert_eq!(r.dead_lettered, 1);
    assert!(rig.dlq.messages()[0].attributes[0].1.contains("APIMP_API_KEY"));
}

#[tokio::test]
async fn a_watch_never_replaces_another_task_s_registration() {
    let rig = rig();
    let now = NOW;
    let first =
        crate::providers::apimp::watch::registration("order-1", "task_A", None, Duration::from_secs(60), now).unwrap();
    let second =
        crate::providers::apimp::watch::registration("order-1", "task_B", None, Duration::from_secs(60), now).unwrap();
    rig.store.put_watch(&first.watch).await.unwrap();
    let body = ApimpMessage::Watch(second).to_json();
    let rec = InboxRecord {
        message_id: "m1".into(),
        receipt_handle: "rh".into(),
        body,
        receive_count: 1,
        ..Default::default()
    };
    let report = rig.worker.process_batch(vec![rec]).await;
    assert_eq!(report.dead_lettered, 1, "{report:?}");
    let reason =
        rig.dlq.messages()[0].attributes.iter().find(|(k, _)| k == FAILURE_REASON_ATTRIBUTE).unwrap().1.clone();
    assert!(reason.contains("task_A"), "{reason}");
    assert_eq!(rig.store.get_watch("order-1").await.unwrap().unwrap().task_id, "task_A");
}
