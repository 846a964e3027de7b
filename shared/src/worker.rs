//! The worker: inbox batch → reconcile each record with the provider's API → publish
//! normalized events to the outbox in batches → mark them PUBLISHED.
//!
//! Each record is idempotent on its own: a worker lease on the dedupe record keeps two
//! deliveries of one message from working at once, and the PUBLISHED mark keeps a
//! redelivered message from publishing again. Records that must wait (job still running,
//! rate limit, outage, URLs about to expire) are hidden on the inbox for a backoff delay
//! and reported as batch item failures; records that can never succeed go to the DLQ
//! with the reason attached.
//!
//! A batch runs against its invocation deadline: no provider call starts unless it can
//! finish, with time left to publish and report, before the deadline; records that do not
//! get their turn are reported as batch item failures with a short delay.
//!
//! A job or task still running is not retried through the message's visibility (which
//! counts receives toward the DLQ) but rescheduled: the message is sent anew with a delay
//! and its poll number, until a horizon. The record's poll chain position
//! ([`crate::domain::dedupe::DedupeRecord::poll_seq`]) lets exactly one message of a
//! chain schedule the next poll, so a crash after a reschedule cannot fork the chain.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{StreamExt, future::join_all, stream};
use serde_json::Value;
use tracing::{info, warn};

use crate::domain::backoff::Backoff;
use crate::domain::clock::{Clock, rfc3339};
use crate::domain::carry::{attribute_value, clean_text};
use crate::domain::dedupe::{LeaseOutcome, MIN_DEDUPE_TTL, WorkLease, body_sha256, dedupe_key, event_id};
use crate::domain::event::{EventOutput, NormalizedEvent, SCHEMA_VERSION};
use crate::domain::inbox::{ApimpCallbackMessage, ApimpWatchMessage, InboxMessage, KataloWebhookMessage};
use crate::domain::job::{Job, JobOutput, JobState};
use crate::domain::watch::{Watch, publish_key};
use crate::ports::{
    DedupeStore, JobApi, JobApiError, MAX_DELAY, MAX_VISIBILITY, OutgoingMessage, Queue, QueueError, TaskApi,
    WatchStore,
};
use crate::providers::katalo;
use crate::domain::dedupe::random_id;

mod apimp;

/// Tries of the PUBLISHED mark after an event went out.
const MARK_ATTEMPTS: u32 = 3;

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
    /// How long a dedupe record lives after each lease (at least [`MIN_DEDUPE_TTL`]).
    pub dedupe_ttl: Duration,
    /// The longest one provider API call can take (the HTTP timeout).
    pub provider_call_timeout: Duration,
    /// Time kept before the invocation deadline to publish, mark and report.
    pub deadline_reserve: Duration,
    /// How long a Katalo job still running is polled (from its first reschedule) before
    /// its message is dead-lettered with the reason.
    pub katalo_poll_horizon: Duration,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        Self {
            min_url_ttl: Duration::from_secs(600),
            concurrency: 8,
            lease: Duration::from_secs(120),
            max_url_refreshes: 2,
            backoff: Backoff::default(),
            dedupe_ttl: MIN_DEDUPE_TTL,
            provider_call_timeout: Duration::from_secs(10),
            deadline_reserve: Duration::from_secs(5),
            katalo_poll_horizon: Duration::from_secs(24 * 60 * 60),
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
    /// Jobs and watched tasks still running, whose next poll was scheduled.
    pub rescheduled: usize,
    /// Records left for a later invocation because the deadline was near.
    pub deferred: usize,
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
    /// Done with this message; a follow-up (the next poll) goes to the inbox, delayed,
    /// if this message (poll number `from`) is where the record's poll chain stands.
    Reschedule {
        message: OutgoingMessage,
        from: u32,
        reason: String,
    },
    /// Not started: the invocation deadline is too near.
    Deferred,
}

/// One record's attempt: the record and its lease, and the outcome.
struct Attempt {
    work: Work,
    outcome: Outcome,
}

/// A record being finished: its key, and the lease if taken.
struct Work {
    record: InboxRecord,
    key: Option<String>,
    lease: Option<Held>,
}

/// A worker lease held on a record.
struct Held {
    token: String,
    until_ms: i64,
    poll_seq: u32,
}

/// The time an invocation has: provider calls start only while they can finish before it.
#[derive(Debug, Clone, Copy)]
struct Budget {
    deadline_ms: Option<i64>,
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

    /// Processes one inbox batch with no deadline; the report's `failed` ids go back to
    /// SQS as `batchItemFailures`.
    pub async fn process_batch(&self, records: Vec<InboxRecord>) -> BatchReport {
        self.process_batch_by(records, None).await
    }

    /// Processes one inbox batch that must be done by `deadline_ms` (epoch ms, the
    /// Lambda invocation's deadline).
    pub async fn process_batch_by(&self, records: Vec<InboxRecord>, deadline_ms: Option<i64>) -> BatchReport {
        let budget = Budget { deadline_ms };
        let attempts: Vec<Attempt> = stream::iter(records)
            .map(|r| self.attempt(r, budget))
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
                Outcome::Reschedule { message, from, reason } => later.push((work, message, from, reason)),
                Outcome::Deferred => {
                    report.deferred += 1;
                    let delay = self.settings.deadline_reserve.max(Duration::from_secs(1));
                    retry.push(Retry { work, delay, reason: "invocation deadline near: not started".into() });
                }
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
        // Only under a live lease: past it another worker may hold the record.
        let now_ms = self.ports.clock.now_ms();
        let (publish, expired): (Vec<_>, Vec<_>) =
            publish.into_iter().partition(|(w, _)| w.lease.as_ref().is_some_and(|l| l.until_ms > now_ms));
        for (work, _) in expired {
            let delay = self.settings.backoff.delay(work.record.receive_count);
            retry.push(Retry { work, delay, reason: "the worker lease ran out before publishing".into() });
        }
        if publish.is_empty() {
            return;
        }
        let messages = publish.iter().map(|(_, e)| event_message(e)).collect();
        let mut results = self.ports.outbox.send_batch(messages).await.into_iter();
        let published_at = rfc3339(self.ports.clock.now());
        let mut marks = Vec::new();
        for (work, event) in publish {
            let key = work.key.clone().unwrap_or_default();
            let token = work.lease.as_ref().map(|l| l.token.clone()).unwrap_or_default();
            let result = results.next().unwrap_or_else(|| Err(QueueError::Unavailable("no result for message".into())));
            match result {
                Ok(_) => {
                    info!(key = %key, event_id = %event.event_id, event_type = %event.event_type, status = %event.status, "published");
                    report.published += 1;
                    let store = self.ports.store.clone();
                    let at = published_at.clone();
                    marks.push(async move {
                        // The event is out. A failed mark is tried twice more; if it still
                        // fails, the record stays ENQUEUED (later deliveries of the key are
                        // still acknowledged as duplicates) and only a redelivery of this
                        // message republishes, with the same event_id consumers dedupe on.
                        for attempt in 1..=MARK_ATTEMPTS {
                            match store.mark_published(&key, &token, &event.event_id, &at).await {
                                Ok(true) => return,
                                Ok(false) => return warn!(key = %key, "could not mark PUBLISHED: the lease was lost"),
                                Err(e) => warn!(key = %key, attempt, error = %e, "could not mark PUBLISHED"),
                            }
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

    /// Sends each follow-up message (delayed), moves the poll chain on, and lets the
    /// current message go. A message the chain has moved past (a duplicate, or the
    /// redelivery of one whose follow-up was sent) schedules nothing: it is dropped.
    async fn reschedule(
        &self,
        later: Vec<(Work, OutgoingMessage, u32, String)>,
        retry: &mut Vec<Retry>,
        report: &mut BatchReport,
    ) {
        let mut due = Vec::new();
        for (work, message, from, reason) in later {
            if work.lease.as_ref().is_some_and(|l| l.poll_seq == from) {
                due.push((work, message, from, reason));
            } else {
                info!(
                    key = work.key.as_deref().unwrap_or("-"),
                    poll = from,
                    "stale poll: the chain has moved on; dropped"
                );
                self.release(&work, "stale poll dropped").await;
                report.skipped += 1;
            }
        }
        if due.is_empty() {
            return;
        }
        let (works, messages): (Vec<_>, Vec<_>) = due.into_iter().map(|(w, m, f, r)| ((w, f, r), m)).unzip();
        let mut results = self.ports.inbox.send_batch(messages).await.into_iter();
        for (work, from, reason) in works {
            match results.next().unwrap_or_else(|| Err(QueueError::Unavailable("no result for message".into()))) {
                Ok(_) => {
                    info!(key = work.key.as_deref().unwrap_or("-"), reason = %reason, "next poll scheduled");
                    let advanced = match (&work.key, &work.lease) {
                        (Some(key), Some(lease)) => self.ports.store.advance_polls(key, &lease.token, from).await,
                        _ => Ok(false),
                    };
                    match advanced {
                        Ok(true) => {
                            self.release(&work, &reason).await;
                            report.rescheduled += 1;
                        }
                        // The follow-up is out but the chain still points here, so the
                        // follow-up would be dropped as stale: keep this message, whose
                        // redelivery sends another and moves the chain on (the chain then
                        // drops whichever follow-up comes second).
                        Ok(false) => retry.push(self.retry_after_send_failure(work, "poll chain", "lease lost")),
                        Err(e) => retry.push(self.retry_after_send_failure(work, "poll chain", e)),
                    }
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
                    (FAILURE_REASON_ATTRIBUTE.into(), clean_text(&reason, 1024)),
                    ("genhook_source_message_id".into(), attribute_value(&work.record.message_id)),
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
            delays.push((r.work.record.receipt_handle.clone(), r.delay.min(MAX_VISIBILITY)));
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
        if let (Some(key), Some(lease)) = (&work.key, &work.lease)
            && let Err(e) = self.ports.store.release_work(key, &lease.token, &truncate(reason, 1024)).await
        {
            warn!(key = %key, error = %e, "could not release the worker lease; it expires");
        }
    }

    /// Parses, leases and reconciles one record.
    async fn attempt(&self, record: InboxRecord, budget: Budget) -> Attempt {
        let message: InboxMessage = match serde_json::from_str(&record.body) {
            Ok(m) => m,
            Err(e) => {
                let reason = format!("malformed inbox message: {e}");
                return Attempt { work: Work { record, key: None, lease: None }, outcome: Outcome::Dead { reason } };
            }
        };
        if !self.has_time(budget, Duration::ZERO) {
            let key = Some(message.dedupe_key().to_string());
            return Attempt { work: Work { record, key, lease: None }, outcome: Outcome::Deferred };
        }
        let backoff = self.settings.backoff.delay(record.receive_count);
        // The key the publishing work is leased under (for APIMP: the task's, shared by
        // its callbacks and polls), and what the message resolved to.
        let (key, target) = match self.work_target(&message, record.receive_count).await {
            Ok(found) => found,
            Err(outcome) => {
                let key = Some(message.dedupe_key().to_string());
                return Attempt { work: Work { record, key, lease: None }, outcome };
            }
        };
        let now = self.ports.clock.now();
        let now_ms = self.ports.clock.now_ms();
        // The lease outlives the invocation, so no other worker can take the record while
        // this one may still act on it.
        let mut until_ms = now_ms.saturating_add(millis(self.settings.lease));
        if let Some(deadline) = budget.deadline_ms {
            until_ms = until_ms.max(deadline.saturating_add(1_000));
        }
        let lease = WorkLease {
            key: key.clone(),
            token: random_id(),
            until_ms,
            expires_at: now.unix_timestamp().saturating_add(secs(self.settings.dedupe_ttl)),
            received_at: rfc3339(now),
        };
        let outcome = match self.ports.store.acquire_work(&lease, now_ms).await {
            Err(e) => Outcome::Retry { delay: backoff, reason: e.to_string() },
            Ok(LeaseOutcome::AlreadyPublished) => Outcome::Skip,
            Ok(LeaseOutcome::Busy { until_ms }) => {
                let wait = Duration::from_millis(u64::try_from(until_ms.saturating_sub(now_ms)).unwrap_or(0).max(1000));
                Outcome::Retry { delay: wait, reason: "another worker holds this record".into() }
            }
            Ok(LeaseOutcome::Acquired { poll_seq }) => {
                let receive_count = record.receive_count;
                let outcome = match &target {
                    Target::Katalo(m) => self.reconcile_katalo(m, receive_count, budget).await,
                    Target::Watch(m) => self.poll_apimp(m, receive_count, budget).await,
                    Target::Callback(m, w) => self.confirm_apimp_callback(m, w, receive_count, budget).await,
                };
                let held = Held { token: lease.token, until_ms: lease.until_ms, poll_seq };
                return Attempt { work: Work { record, key: Some(key), lease: Some(held) }, outcome };
            }
        };
        if matches!(outcome, Outcome::Skip) {
            info!(key = %key, "already published");
        }
        Attempt { work: Work { record, key: Some(key), lease: None }, outcome }
    }

    /// The key to lease for a message and what to do under the lease; or the outcome
    /// when there is nothing to lease yet.
    async fn work_target<'m>(
        &self,
        message: &'m InboxMessage,
        receive_count: u32,
    ) -> Result<(String, Target<'m>), Outcome> {
        match message {
            InboxMessage::KataloWebhook(m) => Ok((m.dedupe_key.clone(), Target::Katalo(m))),
            InboxMessage::ApimpWatch(m) => {
                self.register_watch(m).await?;
                Ok((publish_key(&m.watch.task_id), Target::Watch(m)))
            }
            InboxMessage::ApimpCallback(m) => {
                let w = self.resolve_callback(m, receive_count).await?;
                Ok((publish_key(&w.task_id), Target::Callback(m, w)))
            }
        }
    }

    /// Whether a step that takes `step` (plus the reserve for publishing) still fits
    /// before the invocation deadline.
    fn has_time(&self, budget: Budget, step: Duration) -> bool {
        let Some(deadline) = budget.deadline_ms else { return true };
        let needed = millis(step.saturating_add(self.settings.deadline_reserve));
        self.ports.clock.now_ms().saturating_add(needed) <= deadline
    }

    /// Whether a provider API call can start (and finish) within the budget.
    fn can_call_provider(&self, budget: Budget) -> bool {
        self.has_time(budget, self.settings.provider_call_timeout)
    }

    /// Reads the job until it is terminal and its URLs live long enough, then builds the
    /// event. The API is the truth; the webhook is a hint. A job still running is polled
    /// again later (rescheduled) until the horizon.
    async fn reconcile_katalo(&self, msg: &KataloWebhookMessage, receive_count: u32, budget: Budget) -> Outcome {
        let known = msg.event_type == katalo::COMPLETED || msg.event_type == katalo::FAILED;
        let mut refreshes = 0;
        loop {
            if !self.can_call_provider(budget) {
                return Outcome::Deferred;
            }
            let job = match self.ports.katalo.get_job(&msg.job_id).await {
                Ok(job) => job,
                Err(e) => return self.api_error_outcome(e, receive_count),
            };
            // Unknown event types are forwarded with the job as it is now; known ones
            // wait for a terminal state.
            if known && !job.state.is_terminal() {
                return self.reschedule_katalo(msg, &job.status);
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

    /// The next poll of a Katalo job still running, or the dead letter past the horizon.
    fn reschedule_katalo(&self, msg: &KataloWebhookMessage, status: &str) -> Outcome {
        let now = self.ports.clock.now().unix_timestamp();
        let horizon_at = msg.horizon_at.unwrap_or_else(|| now.saturating_add(secs(self.settings.katalo_poll_horizon)));
        if now >= horizon_at {
            return Outcome::Dead { reason: format!("polling horizon passed; job {} is still {status}", msg.job_id) };
        }
        let polls = msg.polls.saturating_add(1);
        let delay = self.settings.backoff.delay(polls).min(MAX_DELAY);
        let next = KataloWebhookMessage { polls, horizon_at: Some(horizon_at), ..msg.clone() };
        Outcome::Reschedule {
            message: katalo_poll_message(&next, delay),
            from: msg.polls,
            reason: format!("job is still {status}; poll {} in {} s", polls.saturating_add(1), delay.as_secs()),
        }
    }

    /// Whether every output URL lives at least `min_url_ttl` from `now` (unknown expiries pass).
    fn urls_live_long_enough(&self, outputs: &[JobOutput], now: time::OffsetDateTime) -> bool {
        let Some(min_expiry) =
            time::Duration::try_from(self.settings.min_url_ttl).ok().and_then(|d| now.checked_add(d))
        else {
            return outputs.iter().all(|o| o.expires_at.is_none());
        };
        outputs.iter().all(|o| o.expires_at.is_none_or(|t| t >= min_expiry))
    }

    fn api_error_outcome(&self, e: JobApiError, receive_count: u32) -> Outcome {
        let backoff = self.settings.backoff.delay(receive_count);
        match e {
            JobApiError::RateLimited { retry_after } => Outcome::Retry {
                delay: retry_after.map_or(backoff, |d| d.clamp(Duration::from_secs(1), MAX_VISIBILITY)),
                reason: "rate limited by the provider API".into(),
            },
            JobApiError::Transient { reason, retry_after } => Outcome::Retry {
                delay: retry_after.map_or(backoff, |d| d.clamp(Duration::from_secs(1), MAX_VISIBILITY)),
                reason,
            },
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

/// What a leased message asks the worker to do.
enum Target<'m> {
    Katalo(&'m KataloWebhookMessage),
    Watch(&'m ApimpWatchMessage),
    Callback(&'m ApimpCallbackMessage, Watch),
}

/// A scheduled poll of a Katalo job: the webhook message again, with its poll number.
fn katalo_poll_message(m: &KataloWebhookMessage, delay: Duration) -> OutgoingMessage {
    OutgoingMessage {
        body: InboxMessage::KataloWebhook(m.clone()).to_json(),
        attributes: vec![("provider".into(), katalo::PROVIDER.into()), ("message_type".into(), "katalo.poll".into())],
        group_id: Some(m.dedupe_key.clone()),
        dedup_id: Some(body_sha256(format!("{}#poll{}", m.dedupe_key, m.polls).as_bytes())),
        delay: Some(delay),
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

fn event_message(e: &NormalizedEvent) -> OutgoingMessage {
    OutgoingMessage {
        body: e.to_json(),
        attributes: vec![
            ("event_type".into(), attribute_value(&e.event_type)),
            ("provider".into(), attribute_value(&e.provider)),
            ("event_id".into(), attribute_value(&e.event_id)),
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
