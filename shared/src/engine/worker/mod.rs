//! The worker: inbox batch → reconcile each record with the provider's API → publish
//! normalized events to the outbox in batches → mark them PUBLISHED.
//!
//! Provider-agnostic: each message goes to the [`Reconciler`] of the provider its `type`
//! names, which says what key to publish under, reads the job, judges it and maps it to
//! the event; this engine does the rest. [`finish`] holds the batch's second half
//! (publishing, polls, dead letters, retry delays).
//!
//! Each record is idempotent on its own: a worker lease on the dedupe record keeps two
//! deliveries of one message from working at once, and the PUBLISHED mark keeps a
//! redelivered message from publishing again. Records that must wait (rate limit,
//! outage, URLs about to expire, a lease held elsewhere) are sent anew with a backoff
//! delay and their attempt count ([`crate::domain::retry`]), and the received message is
//! deleted, so waiting never spends the queue's receive count; a record that waits past
//! [`WorkerSettings::wait_horizon`], or is received [`WorkerSettings::max_receives`]
//! times (its invocations failed), goes to the DLQ with the reason, as does a record that
//! can never succeed. When a provider asks to slow down, the instance pauses all its
//! calls to that provider ([`gate`]) instead of each record taking its own 429.
//!
//! A batch runs against its invocation deadline: no provider call starts unless it can
//! finish, with time left to publish and report, before the deadline; records that do not
//! get their turn wait a short delay.
//!
//! A job or task still running is not retried through the message's visibility (which
//! counts receives toward the DLQ) but rescheduled: the message is sent anew with a delay
//! and its poll number, until a horizon. The record's poll chain position
//! ([`crate::domain::dedupe::DedupeRecord::poll_seq`]) lets exactly one message of a
//! chain schedule the next poll, so a crash after a reschedule cannot fork the chain.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::{StreamExt, stream};
use tracing::info;

use crate::domain::abandon::{Abandonment, GiveUp};
use crate::domain::clock::{millis, rfc3339, secs};
use crate::domain::dedupe::{LeaseOutcome, WorkLease, random_id};
use crate::domain::event::NormalizedEvent;
use crate::domain::inbox::Envelope;
use crate::domain::job::{JobOutput, JobState};
use crate::domain::link_cache::{CachedOutputs, MAX_CACHED_BYTES, MAX_CACHED_OUTPUTS};
use crate::engine::reload::{Reload, Reloading};
use crate::ports::provider::{Provider, Reconciler, Reconciliation, Step, WorkContext};
use crate::ports::{JobApiError, MAX_DELAY};
use crate::toolkit::auth::link_token::LinkMinter;
use crate::toolkit::http::output_hosts::OutputRule;
use crate::toolkit::telemetry::{Origin, UNKNOWN_PROVIDER, name};

mod finish;
mod gate;
mod types;

pub use finish::FAILURE_REASON_ATTRIBUTE;
use finish::Finish;
use gate::Gates;
pub use types::{BatchReport, DEFAULT_MAX_RECEIVES, DEFAULT_WAIT_HORIZON, InboxRecord, WorkerPorts, WorkerSettings};

/// Tries of the PUBLISHED mark after an event went out.
const MARK_ATTEMPTS: u32 = 3;

/// How long a provider may refuse the API key (401/403) on every attempt at a record
/// before it is dead-lettered: the key may be rotating, and the refusal is retried with
/// the backoff while the worker re-reads its secrets.
pub const KEY_REFUSED_GRACE: Duration = Duration::from_secs(50 * 60);

/// The providers' reconciling sides, as one list.
pub type Reconcilers = Vec<Arc<dyn Reconciler>>;

/// What the worker builds from its secrets: the reconcilers (with the providers' API
/// keys) and what mints the published outputs' links (with the links' key), when the
/// stack serves them.
pub struct WorkerKeys {
    /// Every provider's reconciling side.
    pub reconcilers: Reconcilers,
    /// Mints the `link` of each published output.
    pub links: Option<LinkMinter>,
}

/// The worker service. Build it once per cold start.
pub struct Worker {
    ports: WorkerPorts,
    keys: Reloading<WorkerKeys>,
    settings: WorkerSettings,
    gates: Gates,
    output_hosts: Vec<OutputRule>,
}

/// What to do with one record: publish, what a reconciler (or the engine) decided
/// instead, or nothing yet because the invocation deadline is too near.
#[derive(Debug)]
enum Outcome {
    Publish(Box<NormalizedEvent>),
    Step(Step),
    Deferred,
    /// The provider refused the API key: retried (the secrets are re-read meanwhile).
    KeyRefused {
        delay: Duration,
        reason: String,
    },
    /// Given up on the job: publish its `generation.abandoned` event, then dead-letter
    /// the record with the reason.
    Abandon(Abandoned),
}

/// A job given up on: its `generation.abandoned` event, why, and the dead letter's reason.
#[derive(Debug)]
struct Abandoned {
    event: Box<NormalizedEvent>,
    why: GiveUp,
    reason: String,
}

impl From<Step> for Outcome {
    fn from(step: Step) -> Self {
        Self::Step(step)
    }
}

fn retry(delay: Duration, reason: impl Into<String>) -> Outcome {
    Outcome::Step(Step::Retry { delay, reason: reason.into() })
}

fn dead(reason: impl Into<String>) -> Outcome {
    Outcome::Step(Step::Dead { reason: reason.into() })
}

fn give_up(why: GiveUp, detail: impl Into<String>) -> Outcome {
    Outcome::Step(Step::GiveUp(Abandonment::new(why, detail)))
}

/// One record's attempt: the record and its lease, and the outcome.
struct Attempt {
    work: Work,
    outcome: Outcome,
}

/// A record being finished: its provider (for the metrics), its key, and the lease if
/// taken.
struct Work {
    record: InboxRecord,
    provider: &'static str,
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
    /// The provider refused the API key (the copy carries since when).
    key_refused: bool,
}

impl Worker {
    /// A worker over the given ports, handing each message to the reconciler of the
    /// provider its type names.
    pub fn new(ports: WorkerPorts, reconcilers: Vec<Arc<dyn Reconciler>>, settings: WorkerSettings) -> Self {
        let keys = WorkerKeys { reconcilers, links: None };
        Self {
            ports,
            keys: Reloading::new(keys, "API keys"),
            settings,
            gates: Gates::default(),
            output_hosts: Vec::new(),
        }
    }

    /// Puts a `link` on each published output, minted by `links`.
    pub fn with_links(self, links: Option<LinkMinter>) -> Self {
        let reconcilers = self.keys().reconcilers.clone();
        self.keys.set(WorkerKeys { reconcilers, links });
        self
    }

    /// Publishes only outputs whose URLs pass their provider's rule (a provider without
    /// one: any URL); a job with another output is dead-lettered with why.
    pub fn with_output_hosts(self, rules: Vec<OutputRule>) -> Self {
        Self { output_hosts: rules, ..self }
    }

    /// Re-reads the secrets through `reload` on its period and when a provider refuses
    /// the API key, and works the next records with the rebuilt reconcilers.
    pub fn with_reload(self, reload: Arc<dyn Reload<WorkerKeys>>) -> Self {
        Self { keys: self.keys.with_reload(Some(reload)), ..self }
    }

    /// The same worker with other reconcilers (tests of an unconfigured provider).
    #[cfg(test)]
    pub(crate) fn with_reconcilers(self, reconcilers: Vec<Arc<dyn Reconciler>>) -> Self {
        let links = self.keys().links.clone();
        self.keys.set(WorkerKeys { reconcilers, links });
        self
    }

    fn keys(&self) -> Arc<WorkerKeys> {
        self.keys.current()
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
        if self.keys.due(|| self.ports.clock.now_ms()) {
            self.keys.reload().await;
        }
        let attempts: Vec<Attempt> = stream::iter(records)
            .map(|r| self.attempt(r, budget))
            .buffer_unordered(self.settings.concurrency.max(1))
            .collect()
            .await;

        let mut report = BatchReport::default();
        let (mut publish, mut retry, mut dead, mut later) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let (mut abandon, mut fanout) = (Vec::new(), Vec::new());
        let mut key_refused = false;
        let now_ms = self.ports.clock.now_ms();
        for Attempt { work, outcome } in attempts {
            let outcome = self.within_horizon(&work.record, outcome, now_ms);
            match outcome {
                Outcome::KeyRefused { delay, reason } => {
                    key_refused = true;
                    retry.push(Retry { work, delay, reason, key_refused: true });
                }
                Outcome::Publish(event) => publish.push((work, event)),
                Outcome::Step(Step::Skip { reason }) => {
                    info!(key = work.key.as_deref().unwrap_or("-"), reason = %reason, "nothing to publish");
                    report.skipped += 1;
                }
                Outcome::Step(Step::Retry { delay, reason }) => {
                    retry.push(Retry { work, delay, reason, key_refused: false });
                }
                Outcome::Step(Step::Dead { reason }) => dead.push((work, reason)),
                // Given up on before the job was known (no lease): the dead letter only.
                Outcome::Step(Step::GiveUp(a)) => dead.push((work, a.detail)),
                Outcome::Abandon(abandoned) => abandon.push((work, abandoned)),
                Outcome::Step(Step::Fanout { messages, reason }) => fanout.push((work, messages, reason)),
                Outcome::Step(Step::Reschedule { message, from, reason }) => later.push((work, *message, from, reason)),
                Outcome::Deferred => {
                    report.deferred += 1;
                    let delay = self.settings.deadline_reserve.max(Duration::from_secs(1));
                    let reason = "invocation deadline near: not started".into();
                    retry.push(Retry { work, delay, reason, key_refused: false });
                }
            }
        }

        if key_refused {
            // The key may have been rotated: the next records go with the stored one.
            self.keys.reload().await;
        }
        let keys = self.keys();
        let finish = Finish {
            ports: &self.ports,
            settings: &self.settings,
            reconcilers: &keys.reconcilers,
            deadline_ms: budget.deadline_ms,
        };
        finish.reschedule(later, &mut retry, &mut dead, &mut report).await;
        finish.fan_out(fanout, &mut retry, &mut dead, &mut report).await;
        finish.publish(publish, &mut retry, &mut dead, &mut report).await;
        finish.abandon(abandon, &mut retry, &mut dead, &mut report).await;
        finish.dead_letter(dead, &mut retry, &mut report).await;
        finish.schedule_retries(retry, &mut report).await;
        report
    }

    fn context(&self, attempt: u32, poll_seq: u32) -> WorkContext {
        WorkContext { attempt, now: self.ports.clock.now(), backoff: self.settings.backoff, poll_seq }
    }

    /// A wait that has lasted past the horizon is given up on with its last reason.
    fn within_horizon(&self, record: &InboxRecord, outcome: Outcome, now_ms: i64) -> Outcome {
        let reason = match &outcome {
            Outcome::Step(Step::Retry { reason, .. }) | Outcome::KeyRefused { reason, .. } => reason,
            _ => return outcome,
        };
        let since = record.retry.waiting_since(now_ms);
        if now_ms.saturating_sub(since) < millis(self.settings.wait_horizon) {
            return outcome;
        }
        give_up(
            GiveUp::RetriesExhausted,
            format!(
                "still waiting after {} s and {} attempts (GENHOOK_RETRY_HORIZON_SECS is {}): {reason}",
                now_ms.saturating_sub(since) / 1000,
                record.attempt(),
                self.settings.wait_horizon.as_secs()
            ),
        )
    }

    /// Why a record is dead-lettered before it is worked: SQS has received it as often
    /// as its redrive policy allows (its waits are sent anew and do not count, so its
    /// invocations failed or timed out), and would move it next time without a reason.
    fn out_of_receives(&self, record: &InboxRecord) -> Option<String> {
        let max = self.settings.max_receives?;
        (record.receive_count >= max).then(|| {
            format!(
                "received {} times without the worker finishing it (the inbox's maxReceiveCount is {max}): its invocations failed or timed out; see the worker's logs",
                record.receive_count
            )
        })
    }

    /// The wait of a record for a paused provider: until the pause ends, or the record's
    /// backoff if longer (so a backlog spreads out instead of returning at once).
    fn paused(&self, paused_for: Duration, attempt: u32) -> Outcome {
        retry(paused_for.max(self.settings.backoff.delay(attempt)), "the provider asked to slow down: calls paused")
    }

    /// Parses, leases and reconciles one record.
    async fn attempt(&self, record: InboxRecord, budget: Budget) -> Attempt {
        let envelope = match Envelope::parse(&record.body) {
            Ok(m) => m,
            Err(e) => {
                let reason = format!("malformed inbox message: {e}");
                let work = Work { record, provider: UNKNOWN_PROVIDER, key: None, lease: None };
                return Attempt { work, outcome: dead(reason) };
            }
        };
        let key = Some(envelope.dedupe_key.clone());
        let keys = self.keys();
        let reconciler = keys.reconcilers.iter().find(|r| r.provider() == envelope.provider());
        // The registered name, never the message's own word (the metrics' dimension).
        let provider = reconciler.map_or(UNKNOWN_PROVIDER, |r| r.provider());
        if let Some(reason) = self.out_of_receives(&record) {
            return Attempt { work: Work { record, provider, key, lease: None }, outcome: dead(reason) };
        }
        if !self.has_time(budget, Duration::ZERO) {
            return Attempt { work: Work { record, provider, key, lease: None }, outcome: Outcome::Deferred };
        }
        let Some(reconciler) = reconciler else {
            let reason = format!("no provider handles inbox messages of type {:?}", envelope.kind);
            return Attempt { work: Work { record, provider, key, lease: None }, outcome: dead(reason) };
        };
        // What the message resolved to, under the key the event is published under (for
        // APIMP: the task's, shared by its callbacks and polls).
        let attempt = record.attempt();
        let task = match reconciler.prepare(&record.body, &self.context(attempt, 0)).await {
            Ok(task) => task,
            Err(step) => return Attempt { work: Work { record, provider, key, lease: None }, outcome: step.into() },
        };
        let key = task.key().to_string();
        let now = self.ports.clock.now();
        let now_ms = self.ports.clock.now_ms();
        // A paused provider: wait without taking the lease.
        if let Some(left) = self.gates.closed_for(provider, now_ms) {
            let outcome = self.paused(left, attempt);
            return Attempt { work: Work { record, provider, key: Some(key), lease: None }, outcome };
        }
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
            Err(e) => retry(self.settings.backoff.delay(attempt), e.to_string()),
            Ok(LeaseOutcome::AlreadyPublished) => Step::Skip { reason: "already published".into() }.into(),
            Ok(LeaseOutcome::Busy { until_ms }) => {
                let wait = Duration::from_millis(u64::try_from(until_ms.saturating_sub(now_ms)).unwrap_or(0).max(1000));
                retry(wait, "another worker holds this record")
            }
            Ok(LeaseOutcome::Acquired { poll_seq }) => {
                let outcome = self.reconcile(task.as_ref(), provider, &record, poll_seq, budget).await;
                // Giving up on the job tells the app, with the reason the DLQ gets.
                let mut outcome = match self.within_horizon(&record, outcome, self.ports.clock.now_ms()) {
                    Outcome::Step(Step::GiveUp(a)) => match task.abandoned(&a, self.ports.clock.now()) {
                        Some(event) => {
                            Outcome::Abandon(Abandoned { event: Box::new(event), why: a.why, reason: a.detail })
                        }
                        None => dead(a.detail),
                    },
                    other => other,
                };
                // The event says which delivery (or message) it was published for.
                if let Outcome::Publish(event) = &mut outcome
                    && !record.trace.is_empty()
                {
                    event.trace = Some(record.trace.clone());
                }
                let held = Held { token: lease.token, until_ms: lease.until_ms, poll_seq };
                return Attempt { work: Work { record, provider, key: Some(key), lease: Some(held) }, outcome };
            }
        };
        Attempt { work: Work { record, provider, key: Some(key), lease: None }, outcome }
    }

    /// Reads the job until the provider's reconciliation accepts it and its URLs live
    /// long enough, then builds the event. The API is the truth; the message is a hint.
    async fn reconcile(
        &self,
        task: &dyn Reconciliation,
        provider: &'static str,
        record: &InboxRecord,
        poll_seq: u32,
        budget: Budget,
    ) -> Outcome {
        let attempt = record.attempt();
        let mut refreshes = 0;
        loop {
            if !self.has_time(budget, self.settings.provider_call_timeout) {
                return Outcome::Deferred;
            }
            if let Some(left) = self.gates.closed_for(provider, self.ports.clock.now_ms()) {
                return self.paused(left, attempt);
            }
            let job = match task.read().await {
                Ok(job) => job,
                Err(e) => return self.api_error_outcome(e, provider, record),
            };
            if let Some(step) = task.assess(&job, &self.context(attempt, poll_seq)) {
                return step.into();
            }
            // Succeeded, but too late: no read will bring its files back.
            if job.state == JobState::Succeeded && job.outputs_removed {
                return give_up(
                    GiveUp::OutputsRemoved,
                    format!(
                        "job {} succeeded, but the provider had already removed its output files: nothing to publish",
                        job.job_id
                    ),
                );
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
                return retry(self.settings.backoff.delay(attempt), reason);
            }
            if let Some(rule) = OutputRule::of(&self.output_hosts, provider) {
                let refused = job.outputs.iter().enumerate().find_map(|(i, o)| Some((i, rule.refusal(&o.url)?)));
                if let Some((index, why)) = refused {
                    Origin::provider(provider).count(name::OUTPUTS_REFUSED, &[]);
                    return give_up(
                        GiveUp::OutputsRefused,
                        format!("output {index} is not published: {why}; then redrive"),
                    );
                }
            }
            // Every output's link must be served from the links' cache: a job the cache
            // cannot hold is not published.
            if let Err(e) = CachedOutputs::of_job(&job, now.unix_timestamp()).encode_outputs() {
                return give_up(
                    GiveUp::OutputsRefused,
                    format!(
                        "the job's outputs are not published: {e}; genhook publishes at most {MAX_CACHED_OUTPUTS} outputs and {MAX_CACHED_BYTES} bytes of URLs per job, so that every output's link is served from its cache"
                    ),
                );
            }
            let mut event = task.event(job, now);
            if let Some(links) = &self.keys().links {
                links.add_links(&mut event, now);
            }
            return Outcome::Publish(Box::new(event));
        }
    }

    /// Pauses this instance's calls to `provider` for `pause`.
    fn pause(&self, provider: &'static str, pause: Duration) {
        let until = self.ports.clock.now_ms().saturating_add(millis(pause));
        self.gates.close(provider, until);
    }

    /// Whether a step that takes `step` (plus the reserve for publishing) still fits
    /// before the invocation deadline.
    fn has_time(&self, budget: Budget, step: Duration) -> bool {
        let Some(deadline) = budget.deadline_ms else { return true };
        let needed = millis(step.saturating_add(self.settings.deadline_reserve));
        self.ports.clock.now_ms().saturating_add(needed) <= deadline
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

    fn api_error_outcome(&self, e: JobApiError, provider: &'static str, record: &InboxRecord) -> Outcome {
        let backoff = self.settings.backoff.delay(record.attempt());
        let now_ms = self.ports.clock.now_ms();
        let refused_for = Duration::from_millis(
            u64::try_from(now_ms.saturating_sub(record.retry.key_refused_since(now_ms))).unwrap_or(0),
        );
        match e {
            // The whole instance pauses this provider for what it asked (a second if it
            // did not say), and the record waits its backoff, at least that long.
            JobApiError::RateLimited { retry_after } => {
                let pause = retry_after.unwrap_or(Duration::from_secs(1)).clamp(Duration::from_secs(1), MAX_DELAY);
                self.pause(provider, pause);
                retry(backoff.max(pause), "rate limited by the provider API")
            }
            JobApiError::Transient { reason, retry_after: Some(after) } => {
                let pause = after.clamp(Duration::from_secs(1), MAX_DELAY);
                self.pause(provider, pause);
                retry(backoff.max(pause), reason)
            }
            JobApiError::Transient { reason, retry_after: None } => retry(backoff, reason),
            JobApiError::Permanent { status: status @ (401 | 403), reason } if refused_for < KEY_REFUSED_GRACE => {
                Outcome::KeyRefused {
                    delay: backoff,
                    reason: format!(
                        "the provider refused the API key (HTTP {status}: {reason}); retried while it may be rotating"
                    ),
                }
            }
            JobApiError::Permanent { status: status @ (401 | 403), reason } => give_up(
                GiveUp::KeyRefused,
                format!(
                    "the provider refused the API key (HTTP {status}: {reason}) on every attempt for {} minutes: set a valid key, then redrive",
                    refused_for.as_secs() / 60
                ),
            ),
            e @ JobApiError::Permanent { status: 404 | 410, .. } => give_up(GiveUp::NotFound, e.to_string()),
            e @ JobApiError::Permanent { .. } => dead(e.to_string()),
        }
    }
}

/// The messages of a provider whose API is not configured: dead-lettered with the
/// variable to set (then redriven).
pub struct UnconfiguredReconciler(pub &'static dyn Provider);

#[async_trait]
impl Reconciler for UnconfiguredReconciler {
    fn provider(&self) -> &'static str {
        self.0.name()
    }

    async fn prepare(&self, _body: &str, _cx: &WorkContext) -> Result<Box<dyn Reconciliation>, Step> {
        Err(Step::Dead { reason: self.0.reconcile_hint().into() })
    }
}

#[cfg(test)]
mod tests;
