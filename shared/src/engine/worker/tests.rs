//! Worker unit tests on the in-memory adapters and a scripted job API.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::macros::datetime;

use super::*;
use crate::adapters::memory::{MemoryQueue, MemoryStore};
use crate::domain::clock::{Clock, ManualClock};
use crate::domain::dedupe::{Claim, RecordStatus, event_id};
use crate::domain::job::{Job, JobState};
use crate::domain::retry::RetryState;
use crate::ports::{JobApi, OutgoingMessage, Queue, QueueError};
use crate::providers::apimp::Apimp;
use crate::providers::katalo::message::KataloWebhookMessage;
use crate::providers::katalo::reconcile::{DEFAULT_POLL_HORIZON, KataloReconciler};

const NOW: OffsetDateTime = datetime!(2026-11-23 12:00:00 UTC);
const KEY: &str = "katalo#job_1#generation.completed";
/// The key the job is published under (its webhooks and watch alike).
const JOB_KEY: &str = "katalo#job_1#job";

/// Answers `get_job` from a script, one answer per call; the last one repeats.
#[derive(Default)]
struct ScriptedApi {
    answers: Mutex<VecDeque<Result<Job, JobApiError>>>,
    calls: Mutex<u32>,
}

impl ScriptedApi {
    fn new(answers: Vec<Result<Job, JobApiError>>) -> Arc<Self> {
        Arc::new(Self { answers: Mutex::new(answers.into()), calls: Mutex::new(0) })
    }
    fn calls(&self) -> u32 {
        *self.calls.lock().unwrap()
    }
}

#[async_trait]
impl JobApi for ScriptedApi {
    async fn get_job(&self, _job_id: &str) -> Result<Job, JobApiError> {
        *self.calls.lock().unwrap() += 1;
        let mut a = self.answers.lock().unwrap();
        if a.len() > 1 { a.pop_front().unwrap() } else { a.front().cloned().expect("script has an answer") }
    }
}

fn job(status: &str, state: JobState, urls: &[(&str, Option<OffsetDateTime>)]) -> Job {
    Job {
        job_id: "job_1".into(),
        state,
        status: status.into(),
        outputs: urls.iter().map(|(u, e)| JobOutput { url: u.to_string(), expires_at: *e }).collect(),
        failure: None,
        reference: None,
        progress: None,
        metadata: Some(json!({"from": "api"})),
        source_asset_id: Some("src_1".into()),
        outputs_removed: false,
    }
}

fn succeeded() -> Job {
    job("succeeded", JobState::Succeeded, &[("https://cdn/x.png?sig=1", Some(NOW + time::Duration::hours(1)))])
}

struct Rig {
    worker: Worker,
    store: Arc<MemoryStore>,
    inbox: Arc<MemoryQueue>,
    dlq: Arc<MemoryQueue>,
    outbox: Arc<MemoryQueue>,
}

fn rig(api: Arc<ScriptedApi>) -> Rig {
    rig_with(api, WorkerSettings::default())
}

fn rig_with(api: Arc<ScriptedApi>, settings: WorkerSettings) -> Rig {
    rig_on(api, settings, Arc::new(ManualClock::new(NOW)))
}

fn rig_clocked(api: Arc<ScriptedApi>, clock: Arc<ManualClock>) -> Rig {
    rig_on(api, WorkerSettings::default(), clock)
}

fn rig_on(api: Arc<ScriptedApi>, settings: WorkerSettings, clock: Arc<ManualClock>) -> Rig {
    let store = Arc::new(MemoryStore::default());
    let (inbox, dlq, outbox) =
        (Arc::new(MemoryQueue::default()), Arc::new(MemoryQueue::default()), Arc::new(MemoryQueue::default()));
    let ports = WorkerPorts {
        store: store.clone(),
        inbox: inbox.clone(),
        inbox_dlq: Some(dlq.clone()),
        outbox: outbox.clone(),
        clock,
    };
    let reconcilers: Vec<Arc<dyn Reconciler>> =
        vec![Arc::new(KataloReconciler::new(api, DEFAULT_POLL_HORIZON)), Arc::new(UnconfiguredReconciler(&Apimp))];
    Rig { worker: Worker::new(ports, reconcilers, settings), store, inbox, dlq, outbox }
}

fn record(id: &str, event_type: &str, receive_count: u32) -> InboxRecord {
    let msg = KataloWebhookMessage {
        dedupe_key: format!("katalo#job_1#{event_type}"),
        job_id: "job_1".into(),
        event_type: event_type.into(),
        received_at: "2026-11-23T11:59:00Z".into(),
        payload: json!({"job_id": "job_1", "event_type": event_type, "reference": "ref-1", "failure": {"code": "hint"}}),
        thin: None,
        polls: 0,
        horizon_at: None,
    };
    InboxRecord {
        message_id: id.into(),
        receipt_handle: format!("rh-{id}"),
        body: msg.to_json(),
        receive_count,
        ..Default::default()
    }
}

/// The copies the worker sent to the inbox to wait: their delays and the attempts they
/// carry.
fn waits(rig: &Rig) -> Vec<(Duration, RetryState)> {
    rig.inbox
        .messages()
        .iter()
        .filter_map(|m| Some((m.delay?, RetryState::from_attributes(&m.attributes))))
        .filter(|(_, r)| r.earlier_attempts > 0)
        .collect()
}

fn published(rig: &Rig) -> Vec<Value> {
    rig.outbox.messages().iter().map(|m| serde_json::from_str(&m.body).unwrap()).collect()
}

#[tokio::test]
async fn publishes_the_reconciled_event_once() {
    let rig = rig(ScriptedApi::new(vec![Ok(succeeded())]));
    let report = rig.worker.process_batch(vec![record("m1", "generation.completed", 1)]).await;
    assert_eq!((report.published, report.failed.len()), (1, 0));
    let events = published(&rig);
    let e = &events[0];
    assert_eq!(e["schema_version"], "3");
    assert_eq!(e["type"], "generation.completed");
    assert_eq!(e["provider"], "katalo");
    assert_eq!(e["job_id"], "job_1");
    assert_eq!(e["status"], "succeeded");
    assert_eq!(e["outputs"], json!([{"url": "https://cdn/x.png?sig=1", "expires_at": "2026-11-23T13:00:00Z"}]));
    assert_eq!(e["reference"], "ref-1", "the webhook fills what the API leaves out");
    assert_eq!(e["metadata"], json!({"from": "api"}));
    assert_eq!(e["failure"], Value::Null, "a succeeded job carries no failure hint");
    assert_eq!(e["source_asset_id"], "src_1");
    assert_eq!(e["received_at"], "2026-11-23T11:59:00Z");
    assert_eq!(e["reconciled_at"], "2026-11-23T12:00:00Z");
    assert_eq!(e["event_id"], event_id(KEY));
    let rec = rig.store.record(JOB_KEY).unwrap();
    assert_eq!(rec.status, RecordStatus::Published);
    assert_eq!(rec.event_id.as_deref(), Some(event_id(KEY).as_str()));

    // The same message delivered again (SQS at-least-once): nothing is published.
    let again = rig.worker.process_batch(vec![record("m1", "generation.completed", 2)]).await;
    assert_eq!((again.skipped, again.published, again.failed.len()), (1, 0, 0));
    assert_eq!(rig.outbox.messages().len(), 1);
}

#[tokio::test]
async fn published_outputs_carry_links_that_verify() {
    use crate::toolkit::auth::link_token::{LinkMinter, LinkRequest, LinkSigner};
    let two = job(
        "succeeded",
        JobState::Succeeded,
        &[("https://cdn/a.png?sig=1", None), ("https://cdn/b.png?sig=1", Some(NOW + time::Duration::hours(1)))],
    );
    let signer = LinkSigner::new(b"link-secret", None).unwrap();
    let links = LinkMinter::new(signer.clone(), "https://hooks.example.com/Prod").unwrap();
    let linked = rig(ScriptedApi::new(vec![Ok(two)]));
    let linked = Rig { worker: linked.worker.with_links(Some(links)), ..linked };
    linked.worker.process_batch(vec![record("m1", "generation.completed", 1)]).await;
    let events = published(&linked);
    let outputs = events[0]["outputs"].as_array().unwrap();
    assert_eq!(outputs.len(), 2);
    for (index, output) in outputs.iter().enumerate() {
        let link = url::Url::parse(output["link"].as_str().unwrap()).unwrap();
        assert_eq!(link.path(), format!("/Prod/outputs/katalo/job_1/{index}"));
        let req = LinkRequest::parse(link.path().strip_prefix("/Prod").unwrap(), link.query()).unwrap();
        assert_eq!(req.index, index);
        assert_eq!(signer.verify_request(&req, NOW + time::Duration::days(3650)), Ok(()), "links never expire");
    }
    // Without a public URL, no links.
    let plain = rig(ScriptedApi::new(vec![Ok(succeeded())]));
    plain.worker.process_batch(vec![record("m1", "generation.completed", 1)]).await;
    assert_eq!(published(&plain)[0]["outputs"][0].get("link"), None);
}

#[tokio::test]
async fn the_delivery_trace_reaches_the_event_and_the_outbox_message() {
    use crate::domain::trace::Trace;
    let rig = rig(ScriptedApi::new(vec![Ok(succeeded())]));
    let trace = Trace::new(Some("req-abc"), Some("Root=1-6b04f040-161b13bf8aacb4e0ccf300fa;Sampled=1"));
    let traced = InboxRecord { trace: trace.clone(), ..record("m1", "generation.completed", 1) };
    rig.worker.process_batch(vec![traced]).await;
    let e = &published(&rig)[0];
    assert_eq!(
        e["trace"],
        json!({"request_id": "req-abc", "xray_trace_header": "Root=1-6b04f040-161b13bf8aacb4e0ccf300fa;Sampled=1"})
    );
    let sent = &rig.outbox.messages()[0];
    assert_eq!(Trace::from_attributes(&sent.attributes), trace, "the outbox message carries it on");
    // A message without one (a watch registered from a script) publishes no trace.
    let plain = rig_with(ScriptedApi::new(vec![Ok(succeeded())]), WorkerSettings::default());
    plain.worker.process_batch(vec![record("m1", "generation.completed", 1)]).await;
    assert_eq!(published(&plain)[0].get("trace"), None);
}

#[tokio::test]
async fn a_running_job_is_rescheduled_not_retried() {
    // Retrying through visibility would count receives toward the DLQ's 20: a job that
    // runs for hours would be dead-lettered with no reason.
    let api = ScriptedApi::new(vec![Ok(job("processing", JobState::Pending, &[]))]);
    let rig = rig(api);
    let report = rig.worker.process_batch(vec![record("m1", "generation.completed", 3)]).await;
    assert_eq!((report.failed.len(), report.rescheduled), (0, 1), "{report:?}");
    let sent = rig.inbox.messages();
    assert_eq!(sent.len(), 1);
    let next: Value = serde_json::from_str(&sent[0].body).unwrap();
    assert_eq!((next["type"].as_str(), next["polls"].as_u64()), (Some("katalo.webhook"), Some(1)));
    assert_eq!(next["horizon_at"].as_i64(), Some(NOW.unix_timestamp() + 24 * 3600));
    let delay = sent[0].delay.unwrap();
    assert!(delay >= Duration::from_secs(5) && delay <= Duration::from_secs(10), "{delay:?}");
    let rec = rig.store.record(JOB_KEY).unwrap();
    assert_eq!(rec.work_token, None, "the lease is released for the next poll");
    assert_eq!(rec.poll_seq, 1, "the chain moved on");
    assert!(rec.last_error.as_deref().unwrap().starts_with("job job_1 is still processing"));
    assert!(rig.outbox.messages().is_empty());

    // The same message again (its deletion was lost, or a second webhook or a watch of
    // the job): a message that starts polling takes the chain over (poll 2)...
    let again = rig.worker.process_batch(vec![record("m1", "generation.completed", 4)]).await;
    assert_eq!((again.failed.len(), again.rescheduled), (0, 1), "{again:?}");
    let sent = rig.inbox.messages();
    assert_eq!(sent.len(), 2);
    assert_eq!(serde_json::from_str::<Value>(&sent[1].body).unwrap()["polls"].as_u64(), Some(2));
    assert_eq!(rig.store.record(JOB_KEY).unwrap().poll_seq, 2);

    // ...so the poll scheduled first is stale: it schedules nothing, and the chain does
    // not fork.
    let poll = |id: &str, body: &str| InboxRecord {
        message_id: id.into(),
        receipt_handle: format!("rh-{id}"),
        body: body.into(),
        receive_count: 1,
        ..Default::default()
    };
    let stale = rig.worker.process_batch(vec![poll("m2", &sent[0].body)]).await;
    assert_eq!((stale.failed.len(), stale.rescheduled, stale.skipped), (0, 0, 1), "{stale:?}");
    assert_eq!(rig.inbox.messages().len(), 2);

    // The live poll goes on while the job runs.
    let report = rig.worker.process_batch(vec![poll("m3", &sent[1].body)]).await;
    assert_eq!(report.rescheduled, 1, "{report:?}");
    assert_eq!(rig.store.record(JOB_KEY).unwrap().poll_seq, 3);
}

/// Issue 21: a job genhook gives up on is dead-lettered with the reason and the app
/// hears of it in one `generation.abandoned` event with the same reason; a redelivery of
/// the record tells it nothing more, and a final webhook that still comes is published.
#[tokio::test]
async fn a_job_running_past_the_horizon_is_abandoned_once_with_the_reason() {
    let api = ScriptedApi::new(vec![
        Ok(job("processing", JobState::Pending, &[])),
        Ok(job("processing", JobState::Pending, &[])),
        Ok(succeeded()),
    ]);
    let rig = rig(api);
    let msg = KataloWebhookMessage {
        dedupe_key: KEY.into(),
        job_id: "job_1".into(),
        event_type: "generation.completed".into(),
        received_at: "2026-11-22T11:59:00Z".into(),
        payload: json!({"reference": "ref-1"}),
        thin: None,
        polls: 30,
        horizon_at: Some(NOW.unix_timestamp()),
    };
    let rec = InboxRecord {
        message_id: "m1".into(),
        receipt_handle: "rh".into(),
        body: msg.to_json(),
        receive_count: 1,
        ..Default::default()
    };
    let report = rig.worker.process_batch(vec![rec.clone()]).await;
    assert_eq!((report.dead_lettered, report.abandoned), (1, 1), "{report:?}");
    let dead = rig.dlq.messages();
    let reason = &dead[0].attributes.iter().find(|(k, _)| k == FAILURE_REASON_ATTRIBUTE).unwrap().1;
    assert!(reason.contains("horizon") && reason.contains("processing"), "{reason}");
    let events = rig.outbox.messages();
    assert_eq!(events.len(), 1);
    let e: serde_json::Value = serde_json::from_str(&events[0].body).unwrap();
    assert_eq!(e["type"], "generation.abandoned");
    assert_eq!(
        (e["abandon_reason"].as_str(), e["abandon_detail"].as_str()),
        (Some("horizon_passed"), Some(reason.as_str()))
    );
    assert_eq!((e["status"].as_str(), e["provider_status"].as_str()), (Some("running"), Some("processing")));
    assert_eq!((e["reference"].as_str(), e["received_at"].as_str()), (Some("ref-1"), Some("2026-11-22T11:59:00Z")));
    assert_eq!(e["event_id"], crate::domain::dedupe::event_id("katalo#job_1#generation.abandoned"));

    // Redelivered (a crash before the DLQ took it): dead-lettered again, no second event.
    let again = rig.worker.process_batch(vec![rec]).await;
    assert_eq!((again.dead_lettered, again.abandoned), (1, 0), "{again:?}");
    assert_eq!(rig.outbox.messages().len(), 1);
    // The job finishes after all and its webhook comes: published.
    let late = rig.worker.process_batch(vec![record("m9", "generation.completed", 1)]).await;
    assert_eq!(late.published, 1, "{late:?}");
    let types: Vec<String> = rig
        .outbox
        .messages()
        .iter()
        .map(|m| serde_json::from_str::<serde_json::Value>(&m.body).unwrap()["type"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(types, ["generation.abandoned", "generation.completed"]);
}

/// Issue 21: a job that succeeded after its files were removed (a Replicate prediction
/// found late) is abandoned as `outputs_removed`, not published as completed with none.
#[tokio::test]
async fn a_job_whose_files_are_gone_is_abandoned_as_outputs_removed() {
    let mut gone = job("succeeded", JobState::Succeeded, &[]);
    gone.outputs_removed = true;
    let rig = rig(ScriptedApi::new(vec![Ok(gone)]));
    let report = rig.worker.process_batch(vec![record("m1", "generation.completed", 1)]).await;
    assert_eq!((report.published, report.dead_lettered, report.abandoned), (0, 1, 1), "{report:?}");
    let e: serde_json::Value = serde_json::from_str(&rig.outbox.messages()[0].body).unwrap();
    assert_eq!(
        (e["type"].as_str(), e["abandon_reason"].as_str()),
        (Some("generation.abandoned"), Some("outputs_removed"))
    );
    assert!(e["abandon_detail"].as_str().is_some_and(|d| d.contains("removed its output files")), "{e}");
}

/// Issue 21: a job the provider says does not exist is abandoned as `not_found`.
#[tokio::test]
async fn a_job_the_provider_does_not_know_is_abandoned_as_not_found() {
    let api =
        ScriptedApi::new(vec![Err(JobApiError::Permanent { status: 404, reason: "not_found: no such job".into() })]);
    let rig = rig(api);
    let report = rig.worker.process_batch(vec![record("m1", "generation.completed", 1)]).await;
    assert_eq!((report.dead_lettered, report.abandoned), (1, 1), "{report:?}");
    let e: serde_json::Value = serde_json::from_str(&rig.outbox.messages()[0].body).unwrap();
    assert_eq!((e["abandon_reason"].as_str(), e["status"].as_str()), (Some("not_found"), Some("unknown")));
    assert_eq!(e["provider_status"], "unknown");
}

#[tokio::test]
async fn rate_limits_honour_retry_after() {
    let api = ScriptedApi::new(vec![Err(JobApiError::RateLimited { retry_after: Some(Duration::from_secs(42)) })]);
    let rig = rig(api);
    let report = rig.worker.process_batch(vec![record("m1", "generation.completed", 1)]).await;
    assert_eq!((report.retried, report.failed.len()), (1, 0), "sent anew, so the receive is not spent");
    assert!(rig.inbox.delays().is_empty());
    let waits = waits(&rig);
    assert_eq!(waits.len(), 1);
    assert_eq!(waits[0].0, Duration::from_secs(42));
    let since = Some(NOW.unix_timestamp() * 1000);
    assert_eq!(waits[0].1, RetryState { earlier_attempts: 1, waiting_since_ms: since, key_refused_since_ms: None });
}

#[tokio::test]
async fn outages_back_off_exponentially() {
    let api = ScriptedApi::new(vec![Err(JobApiError::Transient { reason: "HTTP 503".into(), retry_after: None })]);
    let rig = rig(api);
    rig.worker.process_batch(vec![record("m1", "generation.completed", 5)]).await;
    let d = waits(&rig)[0].0;
    assert!(d >= Duration::from_secs(80) && d <= Duration::from_secs(160), "{d:?}");
}

#[tokio::test]
async fn permanent_errors_go_to_the_dlq_with_the_reason() {
    let api =
        ScriptedApi::new(vec![Err(JobApiError::Permanent { status: 404, reason: "not_found: no such job".into() })]);
    let rig = rig(api);
    let report = rig.worker.process_batch(vec![record("m1", "generation.completed", 1)]).await;
    assert_eq!((report.dead_lettered, report.failed.len()), (1, 0), "acknowledged: it now lives in the DLQ");
    let dead = rig.dlq.messages();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].body, record("m1", "generation.completed", 1).body, "the original message, for redrive");
    let reason = dead[0].attributes.iter().find(|(k, _)| k == FAILURE_REASON_ATTRIBUTE).unwrap();
    assert!(reason.1.contains("404") && reason.1.contains("no such job"), "{reason:?}");
    assert!(rig.store.record(JOB_KEY).unwrap().last_error.unwrap().contains("404"));
}

#[tokio::test]
async fn malformed_messages_go_to_the_dlq() {
    let rig = rig(ScriptedApi::new(vec![Ok(succeeded())]));
    let bad = InboxRecord {
        message_id: "bad".into(),
        receipt_handle: "rh".into(),
        body: "{}".into(),
        receive_count: 1,
        ..Default::default()
    };
    let report = rig.worker.process_batch(vec![bad]).await;
    assert_eq!(report.dead_lettered, 1);
    assert!(rig.dlq.messages()[0].attributes[0].1.contains("malformed"));
}

#[tokio::test]
async fn expiring_urls_are_refreshed_by_re_reading_the_job() {
    let soon =
        job("succeeded", JobState::Succeeded, &[("https://cdn/x.png?v=old", Some(NOW + time::Duration::seconds(60)))]);
    let fresh =
        job("succeeded", JobState::Succeeded, &[("https://cdn/x.png?v=new", Some(NOW + time::Duration::hours(1)))]);
    let api = ScriptedApi::new(vec![Ok(soon), Ok(fresh)]);
    let rig = rig(api.clone());
    let report = rig.worker.process_batch(vec![record("m1", "generation.completed", 1)]).await;
    assert_eq!(report.published, 1);
    assert_eq!(api.calls(), 2);
    assert_eq!(published(&rig)[0]["outputs"][0]["url"], "https://cdn/x.png?v=new");
}

#[tokio::test]
async fn urls_that_stay_short_lived_are_never_published() {
    let soon =
        job("succeeded", JobState::Succeeded, &[("https://cdn/x.png", Some(NOW + time::Duration::seconds(599)))]);
    let api = ScriptedApi::new(vec![Ok(soon)]);
    let rig = rig(api.clone());
    let report = rig.worker.process_batch(vec![record("m1", "generation.completed", 1)]).await;
    assert_eq!((report.published, report.retried), (0, 1));
    assert_eq!(api.calls(), 3, "the first read plus two refreshes");
    assert!(rig.outbox.messages().is_empty());
}

#[tokio::test]
async fn the_api_is_the_truth_when_the_hint_disagrees() {
    let mut failed = job("failed", JobState::Failed, &[]);
    failed.failure = None;
    let rig = rig(ScriptedApi::new(vec![Ok(failed)]));
    rig.worker.process_batch(vec![record("m1", "generation.completed", 1)]).await;
    let e = &published(&rig)[0];
    assert_eq!(e["type"], "generation.failed");
    assert_eq!(e["status"], "failed");
    assert_eq!(e["failure"], json!({"code": "hint"}), "the webhook's failure fills in");
    assert_eq!(e["event_id"], event_id("katalo#job_1#generation.failed"), "ids follow the published type");
}

#[tokio::test]
async fn unknown_event_types_are_forwarded_with_the_current_state() {
    let rig = rig(ScriptedApi::new(vec![Ok(job("processing", JobState::Pending, &[]))]));
    let report = rig.worker.process_batch(vec![record("m1", "generation.progress", 1)]).await;
    assert_eq!(report.published, 1);
    let e = &published(&rig)[0];
    assert_eq!(
        (e["type"].as_str(), e["status"].as_str(), e["provider_status"].as_str()),
        (Some("generation.progress"), Some("running"), Some("processing"))
    );
}

#[tokio::test]
async fn a_record_leased_by_another_worker_waits() {
    let rig = rig(ScriptedApi::new(vec![Ok(succeeded())]));
    let mut rec = Claim {
        key: JOB_KEY.into(),
        claim_id: "c".into(),
        lease_until_ms: 0,
        expires_at: NOW.unix_timestamp() + 3600,
        body_digest: String::new(),
        received_at: String::new(),
    }
    .to_record();
    rec.status = RecordStatus::Enqueued;
    rec.work_lease_until_ms = Some(NOW.unix_timestamp() * 1000 + 30_000);
    rec.work_token = Some("other".into());
    rig.store.put(rec);
    let report = rig.worker.process_batch(vec![record("m1", "generation.completed", 1)]).await;
    assert_eq!(report.retried, 1);
    assert_eq!(waits(&rig)[0].0, Duration::from_secs(30));
    assert_eq!(rig.store.record(JOB_KEY).unwrap().work_token.as_deref(), Some("other"), "not ours to release");
}

#[tokio::test]
async fn outbox_outage_retries_and_keeps_the_record_unpublished() {
    let rig = rig(ScriptedApi::new(vec![Ok(succeeded())]));
    rig.outbox.fail.store(true, std::sync::atomic::Ordering::SeqCst);
    let report = rig.worker.process_batch(vec![record("m1", "generation.completed", 1)]).await;
    assert_eq!((report.published, report.retried), (0, 1));
    assert_ne!(rig.store.record(JOB_KEY).unwrap().status, RecordStatus::Published);
    rig.outbox.fail.store(false, std::sync::atomic::Ordering::SeqCst);
    let report = rig.worker.process_batch(vec![record("m1", "generation.completed", 2)]).await;
    assert_eq!(report.published, 1);
}

#[tokio::test]
async fn an_event_the_outbox_refuses_is_dead_lettered_at_once_with_the_reason() {
    let rig = rig(ScriptedApi::new(vec![Ok(succeeded())]));
    rig.outbox.refuse.store(true, std::sync::atomic::Ordering::SeqCst);
    let report = rig.worker.process_batch(vec![record("m1", "generation.completed", 1)]).await;
    assert_eq!((report.published, report.dead_lettered, report.retried), (0, 1, 0), "{report:?}");
    assert!(report.failed.is_empty() && rig.inbox.delays().is_empty(), "never retried: {report:?}");
    let reason = rig.dlq.messages()[0].attributes[0].1.clone();
    assert!(reason.starts_with("the outbox refused the event: injected refusal"), "{reason}");
    assert_ne!(rig.store.record(JOB_KEY).unwrap().status, RecordStatus::Published);
}

#[tokio::test]
async fn a_poll_the_inbox_refuses_is_dead_lettered_at_once_with_the_reason() {
    let rig = rig(ScriptedApi::new(vec![Ok(job("processing", JobState::Pending, &[]))]));
    rig.inbox.refuse.store(true, std::sync::atomic::Ordering::SeqCst);
    let report = rig.worker.process_batch(vec![record("m1", "generation.completed", 1)]).await;
    assert_eq!((report.rescheduled, report.dead_lettered, report.retried), (0, 1, 0), "{report:?}");
    let reason = rig.dlq.messages()[0].attributes[0].1.clone();
    assert!(reason.starts_with("the inbox refused the next poll: injected refusal"), "{reason}");
}

#[tokio::test]
async fn a_dead_letter_the_dlq_refuses_goes_again_with_the_reason_alone() {
    let not_found = || Err(JobApiError::Permanent { status: 404, reason: "not_found".into() });
    let rig = rig(ScriptedApi::new(vec![not_found()]));
    // The first send is refused; the bare one is taken.
    let dlq = Arc::new(OnceRefusing { refused: std::sync::atomic::AtomicBool::new(false), queue: rig.dlq.clone() });
    let ports = WorkerPorts {
        store: rig.store.clone(),
        inbox: rig.inbox.clone(),
        inbox_dlq: Some(dlq),
        outbox: rig.outbox.clone(),
        clock: Arc::new(ManualClock::new(NOW)),
    };
    let reconciler = KataloReconciler::new(ScriptedApi::new(vec![not_found()]), DEFAULT_POLL_HORIZON);
    let worker = Worker::new(ports, vec![Arc::new(reconciler)], WorkerSettings::default());
    let report = worker.process_batch(vec![record("m1", "generation.completed", 1)]).await;
    assert_eq!((report.dead_lettered, report.retried), (1, 0), "{report:?}");
    let sent = rig.dlq.messages();
    assert_eq!(sent[0].attributes.len(), 1, "the reason alone: {:?}", sent[0].attributes);
    assert_eq!(sent[0].attributes[0].0, FAILURE_REASON_ATTRIBUTE);
    assert!(sent[0].attributes[0].1.contains("the DLQ refused the message with its attributes"));
    assert_eq!(sent[0].body, record("m1", "generation.completed", 1).body);
}

/// A queue whose first send is refused, then a plain memory queue.
struct OnceRefusing {
    refused: std::sync::atomic::AtomicBool,
    queue: Arc<MemoryQueue>,
}

#[async_trait::async_trait]
impl Queue for OnceRefusing {
    async fn send(&self, msg: OutgoingMessage) -> Result<String, QueueError> {
        if !self.refused.swap(true, std::sync::atomic::Ordering::SeqCst) {
            return Err(QueueError::Rejected("attribute too long".into()));
        }
        self.queue.send(msg).await
    }

    async fn send_batch(&self, msgs: Vec<OutgoingMessage>) -> Vec<Result<String, QueueError>> {
        let mut out = Vec::new();
        for m in msgs {
            out.push(self.send(m).await);
        }
        out
    }

    async fn delay_retries(&self, delays: Vec<(String, Duration)>) -> Result<(), QueueError> {
        self.queue.delay_retries(delays).await
    }
}

#[tokio::test]
async fn a_batch_is_processed_record_by_record() {
    let api = ScriptedApi::new(vec![Ok(succeeded())]);
    let rig = rig(api);
    let mut records: Vec<_> = (0..5).map(|i| record(&format!("m{i}"), "generation.completed", 1)).collect();
    records.push(InboxRecord {
        message_id: "bad".into(),
        receipt_handle: "rh".into(),
        body: "nope".into(),
        receive_count: 1,
        ..Default::default()
    });
    let report = rig.worker.process_batch(records).await;
    // Five deliveries of one key: one publishes, the others find it published or leased.
    assert_eq!(report.published, 1);
    assert_eq!(report.dead_lettered, 1);
    assert_eq!(report.published + report.skipped + report.retried + report.dead_lettered, 6);
    assert_eq!(rig.outbox.messages().len(), 1);
}

#[tokio::test]
async fn a_batch_publishes_with_one_send() {
    let rig = rig(ScriptedApi::new(vec![Ok(succeeded())]));
    let records: Vec<_> = (0..10).map(|i| job_record(i, 1)).collect();
    let report = rig.worker.process_batch(records).await;
    assert_eq!(report.published, 10);
    assert_eq!(rig.outbox.calls.load(std::sync::atomic::Ordering::SeqCst), 1, "one SendMessageBatch for ten events");
    assert_eq!(rig.inbox.calls.load(std::sync::atomic::Ordering::SeqCst), 0, "nothing to delay");
}

#[tokio::test]
async fn no_provider_call_starts_that_could_outlast_the_invocation() {
    // Defect 4: one slow record used to cost the whole batch a Lambda timeout.
    let api = ScriptedApi::new(vec![Ok(succeeded())]);
    let rig = rig(api.clone());
    let now_ms = NOW.unix_timestamp() * 1000;
    // 12 s left: a 10 s call plus the 5 s reserve does not fit.
    let report =
        rig.worker.process_batch_by(vec![record("m1", "generation.completed", 1)], Some(now_ms + 12_000)).await;
    assert_eq!((report.retried, report.deferred, report.published), (1, 1, 0), "{report:?}");
    assert_eq!(api.calls(), 0, "no call was started");
    let waits = waits(&rig);
    assert!(waits[0].0 <= Duration::from_secs(5), "it comes back soon: {waits:?}");
    assert_eq!(rig.store.record(JOB_KEY).map(|r| r.work_token), Some(None), "no lease left behind");
    // With time enough, the same record is published.
    let report =
        rig.worker.process_batch_by(vec![record("m1", "generation.completed", 2)], Some(now_ms + 60_000)).await;
    assert_eq!(report.published, 1, "{report:?}");
}

fn watch_record(id: &str, body: String) -> InboxRecord {
    InboxRecord {
        message_id: id.into(),
        receipt_handle: format!("rh-{id}"),
        body,
        receive_count: 1,
        ..Default::default()
    }
}

fn registration() -> String {
    let m = crate::providers::katalo::watch::registration("job_1", Duration::from_secs(3600), NOW).unwrap();
    m.outgoing(None).body
}

#[tokio::test]
async fn a_watched_job_whose_webhook_never_comes_is_published_by_its_polls() {
    let api = ScriptedApi::new(vec![Ok(job("processing", JobState::Pending, &[])), Ok(succeeded())]);
    let rig = rig(api.clone());
    let report = rig.worker.process_batch(vec![watch_record("w0", registration())]).await;
    assert_eq!((report.rescheduled, report.published), (1, 0), "{report:?}");
    let poll = rig.inbox.messages()[0].clone();
    let next: Value = serde_json::from_str(&poll.body).unwrap();
    assert_eq!((next["type"].as_str(), next["polls"].as_u64()), (Some("katalo.watch"), Some(1)));
    assert!(poll.delay.is_some_and(|d| d > Duration::ZERO));

    let report = rig.worker.process_batch(vec![watch_record("w1", poll.body)]).await;
    assert_eq!(report.published, 1, "{report:?}");
    let e = &published(&rig)[0];
    // Exactly what the webhook would have published (same type, same id).
    assert_eq!((e["type"].as_str(), e["status"].as_str()), (Some("generation.completed"), Some("succeeded")));
    assert_eq!(e["event_id"], event_id(KEY));
    assert_eq!(e["received_at"], "2026-11-23T12:00:00Z", "received_at is the registration's");
    assert_eq!(e["metadata"], json!({"from": "api"}));
    assert_eq!(rig.store.record(JOB_KEY).unwrap().status, RecordStatus::Published);
    assert_eq!(api.calls(), 2);
}

#[tokio::test]
async fn a_webhook_and_a_watch_of_one_job_publish_one_event() {
    let rig = rig(ScriptedApi::new(vec![Ok(succeeded())]));
    // Both in one batch (they race for the job's lease), then each again.
    let batch = vec![record("m1", "generation.completed", 1), watch_record("w0", registration())];
    let report = rig.worker.process_batch(batch).await;
    let later = rig.worker.process_batch(vec![watch_record("w0", registration())]).await;
    let last = rig.worker.process_batch(vec![record("m1", "generation.completed", 2)]).await;
    let total = |f: fn(&BatchReport) -> usize| f(&report) + f(&later) + f(&last);
    assert_eq!(total(|r| r.published), 1, "{report:?} {later:?} {last:?}");
    assert_eq!(published(&rig).len(), 1);
    assert_eq!(published(&rig)[0]["event_id"], event_id(KEY));
    // A failed job publishes generation.failed once, whichever path reads it.
    let rig = rig_failed();
    let report = rig.worker.process_batch(vec![watch_record("w0", registration())]).await;
    let again = rig.worker.process_batch(vec![record("m1", "generation.failed", 1)]).await;
    assert_eq!((report.published, again.published, again.skipped), (1, 0, 1));
    assert_eq!(published(&rig)[0]["event_id"], event_id("katalo#job_1#generation.failed"));
}

/// Issue 21: a failed job's event keeps the failure as sent and adds `failure_code` and
/// `retryable`, from the API's failure or, when it has none, the webhook's.
#[tokio::test]
async fn failed_events_carry_a_normalized_failure_code() {
    let mut from_api = job("failed", JobState::Failed, &[]);
    from_api.failure = Some(json!({"code": "nsfw", "message": "blocked by the safety filter"}));
    let r = rig(ScriptedApi::new(vec![Ok(from_api)]));
    r.worker.process_batch(vec![record("m1", "generation.failed", 1)]).await;
    let e = &published(&r)[0];
    assert_eq!(e["failure"], json!({"code": "nsfw", "message": "blocked by the safety filter"}));
    assert_eq!((e["failure_code"].as_str(), e["retryable"].as_bool()), (Some("content_policy"), Some(false)));

    let r = rig_failed();
    let mut rec = record("m1", "generation.failed", 1);
    rec.body = rec.body.replace(r#"{"code":"hint"}"#, r#"{"code":"server_error","message":"CUDA out of memory"}"#);
    r.worker.process_batch(vec![rec]).await;
    let e = &published(&r)[0];
    assert_eq!(e["failure"]["code"], "server_error");
    assert_eq!((e["failure_code"].as_str(), e["retryable"].as_bool()), (Some("provider_error"), Some(true)));

    // A job that succeeded has neither.
    let r = rig(ScriptedApi::new(vec![Ok(succeeded())]));
    r.worker.process_batch(vec![record("m1", "generation.completed", 1)]).await;
    let e = &published(&r)[0];
    assert!(e["failure_code"].is_null() && e["retryable"].is_null(), "{e}");
}

fn rig_failed() -> Rig {
    rig(ScriptedApi::new(vec![Ok(job("failed", JobState::Failed, &[]))]))
}

#[tokio::test]
async fn a_watch_past_its_horizon_is_dead_lettered_with_the_reason() {
    let rig = rig(ScriptedApi::new(vec![Ok(job("processing", JobState::Pending, &[]))]));
    let mut m = crate::providers::katalo::watch::registration("job_1", Duration::ZERO, NOW).unwrap();
    m.polls = 3;
    let report = rig.worker.process_batch(vec![watch_record("w3", m.outgoing(None).body)]).await;
    assert_eq!(report.dead_lettered, 1, "{report:?}");
    let dead = rig.dlq.messages();
    let reason = &dead[0].attributes.iter().find(|(k, _)| k == FAILURE_REASON_ATTRIBUTE).unwrap().1;
    assert!(reason.contains("polling horizon passed; job job_1 is still processing"), "{reason}");
}

fn refresh_record(id: &str, request_id: &str) -> InboxRecord {
    watch_record(id, crate::providers::common::refresh::message("katalo", "job_1", request_id, NOW).unwrap().body)
}

#[tokio::test]
async fn a_refresh_publishes_fresh_urls_once_per_request() {
    let rig = rig(ScriptedApi::new(vec![Ok(succeeded())]));
    let report = rig.worker.process_batch(vec![refresh_record("r1", "req-1")]).await;
    assert_eq!(report.published, 1, "{report:?}");
    let e = &published(&rig)[0];
    assert_eq!((e["type"].as_str(), e["status"].as_str()), (Some("generation.urls_refreshed"), Some("succeeded")));
    assert_eq!(e["original_event_id"], event_id(KEY), "points at the generation.completed event");
    assert_eq!(e["event_id"], event_id("katalo#job_1#refresh:req-1"));
    assert_eq!(e["outputs"][0]["url"], "https://cdn/x.png?sig=1");
    // The same request again publishes nothing; another request publishes again.
    let again = rig.worker.process_batch(vec![refresh_record("r1", "req-1")]).await;
    assert_eq!((again.published, again.skipped), (0, 1));
    let other = rig.worker.process_batch(vec![refresh_record("r2", "req-2")]).await;
    assert_eq!(other.published, 1);
    assert_ne!(published(&rig)[1]["event_id"], published(&rig)[0]["event_id"]);
}

#[tokio::test]
async fn a_refresh_that_cannot_be_served_is_dead_lettered_with_the_reason() {
    let gone = job("succeeded", JobState::Succeeded, &[("https://cdn/x.png", Some(NOW - time::Duration::hours(1)))]);
    let cases = [
        (Ok(job("processing", JobState::Pending, &[])), "it is still processing"),
        (Ok(job("failed", JobState::Failed, &[])), "it ended failed and has no outputs"),
        (Ok(job("cancelled", JobState::Canceled, &[])), "it ended canceled"),
        (Ok(gone), "the provider no longer serves its outputs"),
        (Err(JobApiError::Permanent { status: 404, reason: "job_not_found".into() }), "job_not_found"),
    ];
    for (answer, expected) in cases {
        let rig = rig(ScriptedApi::new(vec![answer]));
        let report = rig.worker.process_batch(vec![refresh_record("r1", "req-1")]).await;
        assert_eq!((report.dead_lettered, report.published), (1, 0), "{expected}: {report:?}");
        let dead = rig.dlq.messages();
        let reason = &dead[0].attributes.iter().find(|(k, _)| k == FAILURE_REASON_ATTRIBUTE).unwrap().1;
        assert!(reason.contains(expected), "{reason}");
    }
}

#[tokio::test]
async fn hand_written_watch_and_refresh_messages_with_bad_ids_are_dead_lettered() {
    let bad_refresh = json!({"type": "katalo.refresh", "dedupe_key": "k", "job_id": "job_1",
        "request_id": "a#b", "requested_at": "2026-11-23T12:00:00Z"});
    let bad_watch = json!({"type": "katalo.watch", "dedupe_key": "k", "job_id": " ",
        "registered_at": "2026-11-23T12:00:00Z", "horizon_at": 1});
    for (body, expected) in [(bad_refresh, "malformed refresh request"), (bad_watch, "malformed katalo.watch")] {
        let rig = rig(ScriptedApi::new(vec![Ok(succeeded())]));
        let report = rig.worker.process_batch(vec![watch_record("x", body.to_string())]).await;
        assert_eq!((report.dead_lettered, report.published), (1, 0), "{expected}: {report:?}");
        let dead = rig.dlq.messages();
        let reason = &dead[0].attributes.iter().find(|(k, _)| k == FAILURE_REASON_ATTRIBUTE).unwrap().1;
        assert!(reason.contains(expected), "{reason}");
    }
}

/// The clock of tokio's (paused) timer, so a test's sleeps move it.
struct TimerClock(tokio::time::Instant);

impl Clock for TimerClock {
    fn now(&self) -> OffsetDateTime {
        NOW + self.0.elapsed()
    }
}

/// A queue whose every call takes `delay`.
struct SlowQueue {
    delay: Duration,
    queue: Arc<MemoryQueue>,
}

#[async_trait]
impl Queue for SlowQueue {
    async fn send(&self, msg: OutgoingMessage) -> Result<String, QueueError> {
        tokio::time::sleep(self.delay).await;
        self.queue.send(msg).await
    }

    async fn send_batch(&self, msgs: Vec<OutgoingMessage>) -> Vec<Result<String, QueueError>> {
        tokio::time::sleep(self.delay).await;
        self.queue.send_batch(msgs).await
    }

    async fn delay_retries(&self, delays: Vec<(String, Duration)>) -> Result<(), QueueError> {
        tokio::time::sleep(self.delay).await;
        self.queue.delay_retries(delays).await
    }
}

/// A job API whose every read takes `delay` (the whole HTTP timeout, say).
struct SlowApi(Duration);

#[async_trait]
impl JobApi for SlowApi {
    async fn get_job(&self, _job_id: &str) -> Result<Job, JobApiError> {
        tokio::time::sleep(self.0).await;
        Ok(succeeded())
    }
}

/// With 16 s left, a provider read that takes its whole 10 s and an outbox that takes 8 s
/// per call cannot both finish: the batch still returns by the deadline (a Lambda past
/// it is killed, and its whole batch redelivered), the record retried, never lost.
#[tokio::test(start_paused = true)]
async fn the_finish_phase_ends_by_the_deadline_whatever_the_queues_take() {
    let clock = Arc::new(TimerClock(tokio::time::Instant::now()));
    let store = Arc::new(MemoryStore::default());
    let (inbox, outbox) = (Arc::new(MemoryQueue::default()), Arc::new(MemoryQueue::default()));
    let slow = |queue: &Arc<MemoryQueue>| Arc::new(SlowQueue { delay: Duration::from_secs(8), queue: queue.clone() });
    let ports = WorkerPorts {
        store: store.clone(),
        inbox: slow(&inbox),
        inbox_dlq: None,
        outbox: slow(&outbox),
        clock: clock.clone(),
    };
    let reconciler = KataloReconciler::new(Arc::new(SlowApi(Duration::from_secs(10))), DEFAULT_POLL_HORIZON);
    let settings = WorkerSettings { deadline_reserve: Duration::from_secs(5), ..WorkerSettings::default() };
    let worker = Worker::new(ports, vec![Arc::new(reconciler)], settings);
    let deadline = clock.now_ms() + 16_000;
    let report = worker.process_batch_by(vec![record("m1", "generation.completed", 1)], Some(deadline)).await;
    let ended = clock.now_ms();
    assert!(ended <= deadline, "the batch ended {} ms past the deadline: {report:?}", ended - deadline);
    assert_eq!((report.published, report.failed.len()), (0, 1), "retried, not lost: {report:?}");
}

/// What a re-read of the secrets gives, once; counts the re-reads.
struct Rotated {
    fresh: Mutex<Option<crate::engine::worker::WorkerKeys>>,
    reads: std::sync::atomic::AtomicU32,
}

#[async_trait]
impl crate::engine::reload::Reload<crate::engine::worker::WorkerKeys> for Rotated {
    async fn reload(&self) -> Option<crate::engine::worker::WorkerKeys> {
        self.reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.fresh.lock().unwrap().take()
    }
}

fn refused_key() -> Result<Job, JobApiError> {
    Err(JobApiError::Permanent { status: 401, reason: "unauthorized: bad API key".into() })
}

/// A key rotated (and the old one revoked at the provider) while a worker runs: the
/// refusal is retried, never dead-lettered at once, and the worker re-reads its secrets,
/// so the retry goes with the new key.
#[tokio::test]
async fn a_refused_key_is_retried_with_the_re_read_one() {
    let Rig { worker, dlq, outbox, .. } = rig(ScriptedApi::new(vec![refused_key()]));
    let fresh = KataloReconciler::new(ScriptedApi::new(vec![Ok(succeeded())]), DEFAULT_POLL_HORIZON);
    let keys = crate::engine::worker::WorkerKeys { reconcilers: vec![Arc::new(fresh)], links: None };
    let reload = Arc::new(Rotated { fresh: Mutex::new(Some(keys)), reads: Default::default() });
    let worker = worker.with_reload(reload.clone());
    let report = worker.process_batch(vec![record("m1", "generation.completed", 1)]).await;
    assert_eq!((report.retried, report.dead_lettered, report.published), (1, 0, 0), "{report:?}");
    assert_eq!(reload.reads.load(std::sync::atomic::Ordering::SeqCst), 1, "the refusal re-read the secrets");
    let report = worker.process_batch(vec![record("m1", "generation.completed", 2)]).await;
    assert_eq!(report.published, 1, "with the re-read key: {report:?}");
    assert!(dlq.messages().is_empty());
    assert_eq!(outbox.messages().len(), 1);
}

/// A key the provider keeps refusing is dead-lettered with the reason once it has been
/// refused on every attempt for the grace; the run counts across the copies the waits
/// sent anew, and waits of other kinds before it do not shorten it.
#[tokio::test]
async fn a_key_refused_past_the_grace_is_dead_lettered_with_the_reason() {
    let clock = Arc::new(ManualClock::new(NOW));
    let rig = rig_clocked(ScriptedApi::new(vec![refused_key()]), clock.clone());
    let now_ms = NOW.unix_timestamp() * 1000;
    // A record that has waited two hours (a 429 storm) before its first refusal.
    let mut first = record("m1", "generation.completed", 1);
    first.retry = RetryState { earlier_attempts: 30, waiting_since_ms: Some(now_ms - 7_200_000), ..Default::default() };
    let report = rig.worker.process_batch(vec![first]).await;
    assert_eq!((report.retried, report.dead_lettered), (1, 0), "{report:?}");
    let copy = waits(&rig)[0].1;
    assert_eq!(copy.key_refused_since_ms, Some(now_ms), "the refusals are counted from now");
    // Refused again just before the grace ends: retried.
    clock.advance(time::Duration::try_from(KEY_REFUSED_GRACE).unwrap() - time::Duration::seconds(1));
    let mut again = record("m1", "generation.completed", 1);
    again.retry = copy;
    let report = rig.worker.process_batch(vec![again.clone()]).await;
    assert_eq!((report.retried, report.dead_lettered), (1, 0), "{report:?}");
    // At the grace: dead-lettered with why.
    clock.advance(time::Duration::seconds(1));
    let report = rig.worker.process_batch(vec![again]).await;
    assert_eq!((report.retried, report.dead_lettered), (0, 1), "{report:?}");
    let reason = rig.dlq.messages()[0].attributes[0].1.clone();
    assert!(reason.contains("refused the API key (HTTP 401") && reason.contains("for 50 minutes"), "{reason}");
}

/// A record of `job` (its own key), received `receive_count` times.
fn job_record(job: usize, receive_count: u32) -> InboxRecord {
    let msg = KataloWebhookMessage {
        dedupe_key: format!("katalo#job_{job}#generation.completed"),
        job_id: format!("job_{job}"),
        event_type: "generation.completed".into(),
        received_at: "2026-11-23T11:59:00Z".into(),
        payload: json!({}),
        thin: None,
        polls: 0,
        horizon_at: None,
    };
    InboxRecord {
        message_id: format!("m{job}"),
        receipt_handle: format!("rh{job}"),
        body: msg.to_json(),
        receive_count,
        ..Default::default()
    }
}

/// Issue 20, item 5: a 429 pauses the provider for the whole instance. The other records
/// of the batch make no call of their own; each waits as a copy sent anew (no receive
/// spent), at least as long as the provider asked, spread by its backoff.
#[tokio::test]
async fn a_rate_limit_pauses_the_provider_for_the_whole_batch() {
    let api = ScriptedApi::new(vec![Err(JobApiError::RateLimited { retry_after: Some(Duration::from_secs(7)) })]);
    let rig = rig_with(api.clone(), WorkerSettings { concurrency: 1, ..WorkerSettings::default() });
    let report = rig.worker.process_batch((0..10).map(|i| job_record(i, 1)).collect()).await;
    assert_eq!(api.calls(), 1, "one 429, then no call until the pause ends");
    assert_eq!((report.retried, report.failed.len(), report.dead_lettered), (10, 0, 0), "{report:?}");
    let waits = waits(&rig);
    assert_eq!(waits.len(), 10);
    assert!(waits.iter().all(|(d, r)| *d >= Duration::from_secs(7) && r.earlier_attempts == 1), "{waits:?}");
    assert!(waits.iter().all(|(_, r)| r.key_refused_since_ms.is_none()));
    assert!(rig.inbox.delays().is_empty(), "no visibility change: the received messages are deleted");
    // The same instance calls again once the pause is over.
    let clock = Arc::new(ManualClock::new(NOW));
    let later = rig_clocked(ScriptedApi::new(vec![Ok(succeeded())]), clock.clone());
    later.worker.pause("katalo", Duration::from_secs(7));
    assert_eq!(later.worker.process_batch(vec![job_record(1, 1)]).await.retried, 1, "paused");
    clock.advance(time::Duration::seconds(7));
    assert_eq!(later.worker.process_batch(vec![job_record(1, 1)]).await.published, 1, "the pause is over");
}

/// A wait that lasts past the horizon is dead-lettered with its last reason.
#[tokio::test]
async fn a_wait_past_the_horizon_is_dead_lettered_with_the_last_reason() {
    let api = ScriptedApi::new(vec![Err(JobApiError::Transient { reason: "HTTP 503".into(), retry_after: None })]);
    let settings = WorkerSettings { wait_horizon: Duration::from_secs(3600), ..WorkerSettings::default() };
    let rig = rig_with(api, settings);
    let now_ms = NOW.unix_timestamp() * 1000;
    let mut young = job_record(1, 1);
    young.retry = RetryState { earlier_attempts: 30, waiting_since_ms: Some(now_ms - 3_599_000), ..Default::default() };
    let mut old = job_record(2, 1);
    old.retry = RetryState { earlier_attempts: 31, waiting_since_ms: Some(now_ms - 3_600_000), ..Default::default() };
    let report = rig.worker.process_batch(vec![young, old]).await;
    assert_eq!((report.retried, report.dead_lettered), (1, 1), "{report:?}");
    let reason = rig.dlq.messages()[0].attributes[0].1.clone();
    assert!(
        reason.starts_with("still waiting after 3600 s and 32 attempts") && reason.ends_with("HTTP 503"),
        "{reason}"
    );
    assert_eq!(waits(&rig)[0].1.waiting_since_ms, Some(now_ms - 3_599_000), "the wait counts from its start");
}

/// Issue 20, item 5: no message reaches the DLQ through SQS's `maxReceiveCount` without
/// a reason: at its last receive (its invocations failed) the worker moves it itself.
#[tokio::test]
async fn the_last_receive_sqs_allows_is_dead_lettered_with_a_reason() {
    let api = ScriptedApi::new(vec![Ok(succeeded())]);
    let rig = rig(api.clone());
    let max = DEFAULT_MAX_RECEIVES;
    let report = rig.worker.process_batch(vec![job_record(1, max - 1), job_record(2, max)]).await;
    assert_eq!((report.published, report.dead_lettered, report.failed.len()), (1, 1, 0), "{report:?}");
    assert_eq!(api.calls(), 1, "the last receive is not worked");
    let reason = rig.dlq.messages()[0].attributes[0].1.clone();
    assert!(reason.contains("received 20 times") && reason.contains("maxReceiveCount is 20"), "{reason}");
}

/// When the inbox does not take the copy, the record returns through its visibility
/// (one receive spent) rather than being lost.
#[tokio::test]
async fn a_retry_the_inbox_does_not_take_returns_through_its_visibility() {
    let api = ScriptedApi::new(vec![Err(JobApiError::RateLimited { retry_after: Some(Duration::from_secs(3)) })]);
    let rig = rig(api);
    rig.inbox.refuse.store(true, std::sync::atomic::Ordering::SeqCst);
    let report = rig.worker.process_batch(vec![job_record(1, 1)]).await;
    assert_eq!((report.retried, report.failed.clone()), (1, vec!["m1".to_string()]), "{report:?}");
    let delays = rig.inbox.delays();
    assert_eq!(delays.len(), 1);
    assert!(delays[0].1 >= Duration::from_secs(3), "{delays:?}");
}

/// Issue 20, item 8: an output URL that is not `https` on a host the provider serves
/// files from is never published: the job is dead-lettered with the URL's fault and the
/// variable to change.
#[tokio::test]
async fn outputs_on_hosts_the_provider_does_not_serve_are_never_published() {
    use crate::toolkit::http::output_hosts::{OutputHosts, OutputRule};
    let rule = OutputRule {
        provider: "katalo",
        variable: "KATALO_OUTPUT_HOSTS",
        hosts: OutputHosts::parse("*.cdn.example").unwrap(),
    };
    let later = Some(NOW + time::Duration::hours(1));
    for (foreign, why) in [
        ("https://evil.example/login", "its host \"evil.example\" is not one the provider serves files from"),
        ("http://files.cdn.example/b.png", "its scheme is \"http\", not https"),
    ] {
        let outputs = [("https://files.cdn.example/a.png", later), (foreign, later)];
        let mut rig = rig(ScriptedApi::new(vec![Ok(job("succeeded", JobState::Succeeded, &outputs))]));
        rig.worker = rig.worker.with_output_hosts(vec![rule.clone()]);
        let report = rig.worker.process_batch(vec![record("m1", "generation.completed", 1)]).await;
        assert_eq!((report.published, report.dead_lettered, report.abandoned), (0, 1, 1), "{report:?}");
        let reason = rig.dlq.messages()[0].attributes[0].1.clone();
        assert!(reason.starts_with(&format!("output 1 is not published: {why}")), "{reason}");
        // The app hears of it: no outputs, the same reason.
        let events = rig.outbox.messages();
        assert_eq!(events.len(), 1);
        let e: serde_json::Value = serde_json::from_str(&events[0].body).unwrap();
        assert_eq!(
            (e["type"].as_str(), e["abandon_reason"].as_str()),
            (Some("generation.abandoned"), Some("outputs_refused"))
        );
        assert_eq!(
            (e["abandon_detail"].as_str(), e["outputs"].as_array().map(Vec::len)),
            (Some(reason.as_str()), Some(0))
        );
        assert!(reason.contains("KATALO_OUTPUT_HOSTS is \"*.cdn.example\""), "{reason}");
    }
    // Every output on a listed host: published.
    let outputs = [("https://files.cdn.example/a.png", later)];
    let mut rig = rig(ScriptedApi::new(vec![Ok(job("succeeded", JobState::Succeeded, &outputs))]));
    rig.worker = rig.worker.with_output_hosts(vec![rule]);
    assert_eq!(rig.worker.process_batch(vec![record("m1", "generation.completed", 1)]).await.published, 1);
}

/// Issue 20, item 9: every published output's link is served from the links' cache, so
/// a job the cache cannot hold (over 100 outputs, or 350 KiB of URLs) is not published
/// but dead-lettered with the limit; one at the limit is published.
#[tokio::test]
async fn a_job_the_links_cache_cannot_hold_is_dead_lettered_with_the_limit() {
    use crate::domain::link_cache::MAX_CACHED_OUTPUTS;
    let later = Some(NOW + time::Duration::hours(1));
    let urls: Vec<String> = (0..=MAX_CACHED_OUTPUTS).map(|i| format!("https://cdn/{i}.png")).collect();
    let many: Vec<(&str, _)> = urls.iter().map(|u| (u.as_str(), later)).collect();
    let long = format!("https://cdn/{}.png", "a".repeat(200 * 1024));
    for outputs in [many.clone(), vec![(long.as_str(), later), (long.as_str(), later)]] {
        let rig = rig(ScriptedApi::new(vec![Ok(job("succeeded", JobState::Succeeded, &outputs))]));
        let report = rig.worker.process_batch(vec![record("m1", "generation.completed", 1)]).await;
        assert_eq!((report.published, report.dead_lettered), (0, 1), "{report:?}");
        let reason = rig.dlq.messages()[0].attributes[0].1.clone();
        assert!(reason.contains("at most 100 outputs and 358400 bytes of URLs per job"), "{reason}");
    }
    let rig = rig(ScriptedApi::new(vec![Ok(job("succeeded", JobState::Succeeded, &many[..MAX_CACHED_OUTPUTS]))]));
    assert_eq!(rig.worker.process_batch(vec![record("m1", "generation.completed", 1)]).await.published, 1);
}
