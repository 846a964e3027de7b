//! The worker: inbox batch → reconcile each record with the provider's API → publish
//! normalized events to the outbox in batches → mark them PUBLISHED.
//!
//! Each record is idempotent on its own: a worker lease on the dedupe record keeps two
//! deliveries of one message from working at once, and the PUBLISHED mark keeps a
//! redelivered message from publishing again. Records that must wait (job still running,
//! rate limit, outage, URLs about to expire) are hidden on the inbox for a backoff delay
//! and reported as batch item failures; records that can never succeed go to the DLQ
//! with the reason attached.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{StreamExt, future::join_all, stream};
use serde_json::Value;
use tracing::{info, warn};

use crate::backoff::Backoff;
use crate::clock::{Clock, rfc3339};
use crate::domain::dedupe::{LeaseOutcome, WorkLease, dedupe_key, event_id};
use crate::domain::event::{EventOutput, NormalizedEvent, SCHEMA_VERSION};
use crate::domain::inbox::{InboxMessage, KataloWebhookMessage};
use crate::domain::job::{Job, JobOutput, JobState};
use crate::domain::watch::{Watch, publish_key};
use crate::ports::{DedupeStore, JobApi, JobApiError, OutgoingMessage, Queue, TaskApi, WatchStore};
use crate::providers::katalo;
use crate::receiver::random_id;

mod apimp;

/// Message attribute carrying why a message was dead-lettered.
pub const FAILURE_REASON_ATTRIBUTE: &str = "genhook_failure_reason";

/// Worker settings.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// Never publish a URL that expires sooner than this.
    pub min_url_ttl: Duration,
    /// Records of one batch processed at once.
    pub concurrency: usize,
    /// How long a worker holds a record (longer than one invocation can run).
    pub lease: Duration,
    /// Immediate re-reads of a job whose URLs expire too soon, before backing off.
    pub max_url_refreshes: u32,
    /// Delays between attempts.
    pub backoff: Backoff,
    /// How long a recreated dedupe record lives.
    pub dedupe_ttl: Duration,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        Self {
            min_url_ttl: Duration::from_secs(600),
            concurrency: 8,
            lease: Duration::from_secs(120),
            max_url_refreshes: 2,
            backoff: Backoff::default(),
            dedupe_ttl: Duration::from_secs(7 * 24 * 60 * 60),
        }
    }
}

/// One inbox message as delivered to the worker.
#[derive(Debug, Clone, PartialEq)]
pub struct InboxRecord {
    /// SQS message id (what a batch item failure names).
    pub message_id: String,
    /// Receipt handle (to change the message's visibility).
    pub receipt_handle: String,
    /// Message body.
    pub body: String,
    /// How many times the message has been received, this time included.
    pub receive_count: u32,
}

/// What became of a batch.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BatchReport {
    /// Message ids to report as batch item failures (they will be delivered again).
    pub failed: Vec<String>,
    /// Events published to the outbox.
    pub published: usize,
    /// Records with nothing to do (already published).
    pub skipped: usize,
    /// Records scheduled for a later attempt.
    pub retried: usize,
    /// Records moved to the dead-letter queue.
    pub dead_lettered: usize,
    /// Watched tasks still running, whose next poll was scheduled.
    pub rescheduled: usize,
}

/// The worker's ports.
pub struct WorkerPorts {
    /// The dedupe store shared with the receiver.
    pub store: Arc<dyn DedupeStore>,
    /// The inbox (for retry delays).
    pub inbox: Arc<dyn Queue>,
    /// The inbox's dead-letter queue, for records that can never succeed. Without it such
    /// records are retried until the queue's redrive policy moves them.
    pub inbox_dlq: Option<Arc<dyn Queue>>,
    /// Where normalized events go.
    pub outbox: Arc<dyn Queue>,
    /// Katalo's job API.
    pub katalo: Arc<dyn JobApi>,
    /// APIMP's task-status API; without it APIMP messages are dead-lettered with a reason.
    pub apimp: Option<Arc<dyn TaskApi>>,
    /// APIMP task watches (in the dedupe table).
    pub watches: Arc<dyn WatchStore>,
    /// Time.
    pub clock: Arc<dyn Clock>,
}

/// The worker service. Build it once per cold start.
pub struct Worker {
    ports: WorkerPorts,
    settings: WorkerSettings,
}

/// What to do with one record.
#[derive(Debug)]
enum Outcome {
    Publish(Box<NormalizedEvent>),
    Skip,
    Retry {
        delay: Duration,
        reason: String,
    },
    Dead {
        reason: String,
    },
    /// Done with this message; a follow-up (the next poll) goes to the inbox, delayed.
    Reschedule {
        message: OutgoingMessage,
        reason: String,
    },
}

/// One record's attempt: the record and its lease, and the outcome.
struct Attempt {
    work: Work,
    outcome: Outcome,
}

/// A record being finished: its key and the lease token if taken.
struct Work {
    record: InboxRecord,
    key: Option<String>,
    token: Option<String>,
}

/// A record to retry later, and why.
struct Retry {
    work: Work,
    delay: Duration,
    reason: String,
}

impl Worker {
    /// A worker over the given ports.
    pub fn new(ports: WorkerPorts, settings: WorkerSettings) -> Self {
        Self { ports, settings }
    }

    /// Processes one inbox batch; the report's `failed` ids go back to SQS as
    /// `batchItemFailures`.
    pub async fn process_batch(&self, records: Vec<InboxRecord>) -> BatchReport {
        let attempts: Vec<Attempt> = stream::iter(records)
            .map(|r| self.attempt(r))
            .buffer_unordered(self.settings.concurrency.max(1))
            .collect()
            .await;

        let mut report = BatchReport::default();
        let (mut publish, mut retry, mut dead, mut later) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for Attempt { work, outcome } in attempts {
            match outcome {
                Outcome::Publish(event) => publish.push((work, event)),
                Outcome::Skip => report.skipped += 1,
                Outcome::Retry { delay, reason } => retry.push(Retry { work, delay, reason }),
                Outcome::Dead { reason } => dead.push((work, reason)),
                Outcome::Reschedule { message, reason } => later.push((work, message, reason)),
            }
        }

        self.reschedule(later, &mut retry, &mut report).await;
        self.publish(publish, &mut retry, &mut report).await;
        self.dead_letter(dead, &mut retry, &mut report).await;
        self.schedule_retries(retry, &mut report).await;
        report
    }

    /// A retry after a failed send, with the record's backoff.
    fn retry_after_send_failure(&self, work: Work, what: &str, e: impl std::fmt::Display) -> Retry {
        let delay = self.settings.backoff.delay(work.record.receive_count);
        Retry { work, delay, reason: format!("{what}: {e}") }
    }

    /// Sends all publishable events in batches, then marks each sent one PUBLISHED.
    async fn publish(
        &self,
        publish: Vec<(Work, Box<NormalizedEvent>)>,
        retry: &mut Vec<Retry>,
        report: &mut BatchReport,
    ) {
        if publish.is_empty() {
            return;
        }
        let messages = publish.iter().map(|(_, e)| event_message(e)).collect();
        let results = self.ports.outbox.send_batch(messages).await;
        let published_at = rfc3339(self.ports.clock.now());
        let mut marks = Vec::new();
        for ((work, event), result) in publish.into_iter().zip(results) {
            let key = work.key.clone().unwrap_or_default();
            match result {
                Ok(_) => {
                    info!(key = %key, event_id = %event.event_id, event_type = %event.event_type, status = %event.status, "published");
                    report.published += 1;
                    let store = self.ports.store.clone();
                    let at = published_at.clone();
                    marks.push(async move {
                        // The event is out; if the mark fails, a redelivery republishes the
                        // same event_id, which consumers dedupe on.
                        if let Err(e) = store.mark_published(&key, &event.event_id, &at).await {
                            warn!(key = %key, error = %e, "could not mark PUBLISHED");
                        }
                    });
                }
                Err(e) => {
                    warn!(key = %key, error = %e, "outbox send failed");
                    retry.push(self.retry_after_send_failure(work, "outbox", e));
                }
            }
        }
        join_all(marks).await;
    }

    /// Sends each follow-up message (delayed) and lets the current one go.
    async fn reschedule(
        &self,
        later: Vec<(Work, OutgoingMessage, String)>,
        retry: &mut Vec<Retry>,
        report: &mut BatchReport,
    ) {
        if later.is_empty() {
            return;
        }
        let (works, messages): (Vec<_>, Vec<_>) = later.into_iter().map(|(w, m, r)| ((w, r), m)).unzip();
        let results = self.ports.inbox.send_batch(messages).await;
        for ((work, reason), result) in works.into_iter().zip(results) {
            match result {
                Ok(_) => {
                    info!(key = work.key.as_deref().unwrap_or("-"), reason = %reason, "next poll scheduled");
                    self.release(&work, &reason).await;
                    report.rescheduled += 1;
                }
                Err(e) => retry.push(self.retry_after_send_failure(work, "inbox", e)),
            }
        }
    }

    /// Moves records that can never succeed to the DLQ with the reason attached.
    async fn dead_letter(&self, dead: Vec<(Work, String)>, retry: &mut Vec<Retry>, report: &mut BatchReport) {
        for (work, reason) in dead {
            warn!(message_id = %work.record.message_id, key = work.key.as_deref().unwrap_or("-"), reason = %reason, "dead-lettering");
            self.release(&work, &reason).await;
            let Some(dlq) = &self.ports.inbox_dlq else {
                // No DLQ configured: keep failing; the queue's redrive policy moves it.
                report.failed.push(work.record.message_id.clone());
                continue;
            };
            let msg = OutgoingMessage {
                body: work.record.body.clone(),
                attributes: vec![
                    (FAILURE_REASON_ATTRIBUTE.into(), truncate(&reason, 1024)),
                    ("genhook_source_message_id".into(), work.record.message_id.clone()),
                ],
                group_id: work.key.clone(),
                dedup_id: Some(work.record.message_id.clone()),
                delay: None,
            };
            match dlq.send(msg).await {
                Ok(_) => report.dead_lettered += 1,
                Err(e) => {
                    warn!(error = %e, "DLQ send failed; retrying the record later");
                    retry.push(self.retry_after_send_failure(work, "dlq", e));
                }
            }
        }
    }

    /// Releases leases, hides the records for their delays, and reports them failed.
    async fn schedule_retries(&self, retry: Vec<Retry>, report: &mut BatchReport) {
        if retry.is_empty() {
            return;
        }
        let mut delays = Vec::with_capacity(retry.len());
        for r in &retry {
            info!(message_id = %r.work.record.message_id, key = r.work.key.as_deref().unwrap_or("-"), delay_s = r.delay.as_secs(), reason = %r.reason, "retrying later");
            delays.push((r.work.record.receipt_handle.clone(), r.delay));
            report.failed.push(r.work.record.message_id.clone());
        }
        join_all(retry.iter().map(|r| self.release(&r.work, &r.reason))).await;
        report.retried += retry.len();
        if let Err(e) = self.ports.inbox.delay_retries(delays).await {
            // The messages still come back, after the queue's default visibility timeout.
            warn!(error = %e, "could not set retry delays");
        }
    }

    async fn release(&self, work: &Work, reason: &str) {
        if let (Some(key), Some(token)) = (&work.key, &work.token)
            && let Err(e) = self.ports.store.release_work(key, token, &truncate(reason, 1024)).await
        {
            warn!(key = %key, error = %e, "could not release the worker lease; it expires");
        }
    }

    /// Parses, leases and reconciles one record.
    async fn attempt(&self, record: InboxRecord) -> Attempt {
        let message: InboxMessage = match serde_json::from_str(&record.body) {
            Ok(m) => m,
            Err(e) => {
                let reason = format!("malformed inbox message: {e}");
                return Attempt { work: Work { record, key: None, token: None }, outcome: Outcome::Dead { reason } };
            }
        };
        let backoff = self.settings.backoff.delay(record.receive_count);
        // The key the publishing work is leased under (for APIMP: the task's, shared by
        // its callbacks and polls), and what the callback's reference resolved to.
        let (key, watch) = match self.work_key(&message, record.receive_count).await {
            Ok(found) => found,
            Err(outcome) => {
                let key = Some(message.dedupe_key().to_string());
                return Attempt { work: Work { record, key, token: None }, outcome };
            }
        };
        let now = self.ports.clock.now();
        let now_ms = self.ports.clock.now_ms();
        let lease = WorkLease {
            key: key.clone(),
            token: random_id(),
            until_ms: now_ms + self.settings.lease.as_millis() as i64,
            expires_at: now.unix_timestamp() + self.settings.dedupe_ttl.as_secs() as i64,
            received_at: rfc3339(now),
        };
        let outcome = match self.ports.store.acquire_work(&lease, now_ms).await {
            Err(e) => Outcome::Retry { delay: backoff, reason: e.to_string() },
            Ok(LeaseOutcome::AlreadyPublished) => Outcome::Skip,
            Ok(LeaseOutcome::Busy { until_ms }) => {
                let wait = Duration::from_millis((until_ms - now_ms).max(1000) as u64);
                Outcome::Retry { delay: wait, reason: "another worker holds this record".into() }
            }
            Ok(LeaseOutcome::Acquired) => {
                let outcome = match (&message, watch) {
                    (InboxMessage::KataloWebhook(m), _) => self.reconcile_katalo(m, record.receive_count).await,
                    (InboxMessage::ApimpWatch(m), _) => self.poll_apimp(m, record.receive_count).await,
                    (InboxMessage::ApimpCallback(m), Some(w)) => {
                        self.confirm_apimp_callback(m, &w, record.receive_count).await
                    }
                    (InboxMessage::ApimpCallback(_), None) => unreachable!("work_key resolves the watch"),
                };
                return Attempt { work: Work { record, key: Some(key), token: Some(lease.token) }, outcome };
            }
        };
        if matches!(outcome, Outcome::Skip) {
            info!(key = %key, "already published");
        }
        Attempt { work: Work { record, key: Some(key), token: None }, outcome }
    }

    /// The key to lease for a message, with the watch a callback resolved to; or the
    /// outcome when there is nothing to lease yet.
    async fn work_key(&self, message: &InboxMessage, receive_count: u32) -> Result<(String, Option<Watch>), Outcome> {
        match message {
            InboxMessage::KataloWebhook(m) => Ok((m.dedupe_key.clone(), None)),
            InboxMessage::ApimpWatch(m) => {
                self.register_watch(m).await?;
                Ok((publish_key(&m.watch.task_id), None))
            }
            InboxMessage::ApimpCallback(m) => {
                self.resolve_callback(m, receive_count).await.map(|w| (publish_key(&w.task_id), Some(w)))
            }
        }
    }

    /// Reads the job until it is terminal and its URLs live long enough, then builds the
    /// event. The API is the truth; the webhook is a hint.
    async fn reconcile_katalo(&self, msg: &KataloWebhookMessage, receive_count: u32) -> Outcome {
        let known = msg.event_type == katalo::COMPLETED || msg.event_type == katalo::FAILED;
        let mut refreshes = 0;
        loop {
            let job = match self.ports.katalo.get_job(&msg.job_id).await {
                Ok(job) => job,
                Err(e) => return self.api_error_outcome(e, receive_count),
            };
            // Unknown event types are forwarded with the job as it is now; known ones
            // wait for a terminal state.
            if known && !job.state.is_terminal() {
                let reason = format!("job is still {}", job.status);
                return Outcome::Retry { delay: self.settings.backoff.delay(receive_count), reason };
            }
            let now = self.ports.clock.now();
            if !self.urls_live_long_enough(&job.outputs, now) {
                if refreshes < self.settings.max_url_refreshes {
                    refreshes += 1;
                    continue;
                }
                let reason = format!(
                    "output URLs expire within {} s even after re-reading the job",
                    self.settings.min_url_ttl.as_secs()
                );
                return Outcome::Retry { delay: self.settings.backoff.delay(receive_count), reason };
            }
            return Outcome::Publish(Box::new(katalo_event(msg, job, known, now)));
        }
    }

    /// Whether every output URL lives at least `min_url_ttl` from `now` (unknown expiries pass).
    fn urls_live_long_enough(&self, outputs: &[JobOutput], now: time::OffsetDateTime) -> bool {
        let min_expiry = now + self.settings.min_url_ttl;
        outputs.iter().all(|o| o.expires_at.is_none_or(|t| t >= min_expiry))
    }

    fn api_error_outcome(&self, e: JobApiError, receive_count: u32) -> Outcome {
        let backoff = self.settings.backoff.delay(receive_count);
        match e {
            JobApiError::RateLimited { retry_after } => Outcome::Retry {
                delay: retry_after.map_or(backoff, |d| d.max(Duration::from_secs(1))),
                reason: "rate limited by the provider API".into(),
            },
            JobApiError::Transient { reason, retry_after } => {
                Outcome::Retry { delay: retry_after.map_or(backoff, |d| d.max(Duration::from_secs(1))), reason }
            }
            e @ (JobApiError::Permanent { .. } | JobApiError::NotConfigured(_)) => {
                Outcome::Dead { reason: e.to_string() }
            }
        }
    }
}

/// Builds the normalized event from the job (truth) and the webhook (fallbacks).
fn katalo_event(msg: &KataloWebhookMessage, job: Job, known: bool, now: time::OffsetDateTime) -> NormalizedEvent {
    let event_type = match (known, &job.state) {
        (true, JobState::Succeeded) => katalo::COMPLETED.to_string(),
        (true, JobState::Failed) => katalo::FAILED.to_string(),
        _ => msg.event_type.clone(),
    };
    let hint = |k: &str| msg.payload.get(k).filter(|v| !v.is_null()).cloned();
    // Keyed by what is published, so contradicting hints for one job converge on one id.
    let id = event_id(&dedupe_key(katalo::PROVIDER, &msg.job_id, &event_type));
    NormalizedEvent {
        schema_version: SCHEMA_VERSION.into(),
        event_id: id,
        event_type,
        provider: katalo::PROVIDER.into(),
        job_id: msg.job_id.clone(),
        status: job.status,
        outputs: job
            .outputs
            .into_iter()
            .map(|o| EventOutput { url: o.url, expires_at: o.expires_at.map(rfc3339), media: None })
            .collect(),
        failure: job.failure.or_else(|| if job.state == JobState::Failed { hint("failure") } else { None }),
        reference: job.reference.or_else(|| hint("reference")),
        metadata: job.metadata.or_else(|| hint("metadata")),
        source_asset_id: job
            .source_asset_id
            .or_else(|| msg.payload.get("source_asset_id").and_then(Value::as_str).map(str::to_string)),
        received_at: msg.received_at.clone(),
        reconciled_at: rfc3339(now),
        upstream: None,
        upstream_task_id: None,
    }
}

fn event_message(e: &NormalizedEvent) -> OutgoingMessage {
    OutgoingMessage {
        body: e.to_json(),
        attributes: vec![
            ("event_type".into(), e.event_type.clone()),
            ("provider".into(), e.provider.clone()),
            ("event_id".into(), e.event_id.clone()),
        ],
        group_id: Some(format!("{}#{}", e.provider, e.job_id)),
        dedup_id: Some(e.event_id.clone()),
        delay: None,
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

#[cfg(test)]
mod apimp_tests;
#[cfg(test)]
mod tests;
