//! The pipeline's ports wrapped in the fault injector, and a simulated Katalo API.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use genhook::adapters::memory::{MemoryQueue, MemoryStore};
use genhook::domain::clock::Clock;
use genhook::domain::dedupe::{Claim, ClaimOutcome, DedupeRecord, LeaseOutcome, RecordStatus, WorkLease};
use genhook::domain::job::{Job, JobOutput, JobState};
use genhook::domain::watch::Watch;
use genhook::ports::{DedupeStore, JobApi, JobApiError, OutgoingMessage, Queue, QueueError, StoreError, WatchStore};
use rand::Rng;

use super::chaos::Chaos;

/// The dedupe store under the injector.
pub struct FaultyStore {
    /// The real (in-memory) store.
    pub inner: Arc<MemoryStore>,
    /// The injector.
    pub chaos: Arc<Chaos>,
}

fn store_err(why: String) -> StoreError {
    StoreError(why)
}

#[async_trait]
impl DedupeStore for FaultyStore {
    async fn claim(&self, claim: &Claim, now_ms: i64) -> Result<ClaimOutcome, StoreError> {
        self.chaos.call("store.claim", self.inner.claim(claim, now_ms), store_err).await
    }
    async fn mark_enqueued(&self, key: &str, claim_id: &str) -> Result<bool, StoreError> {
        self.chaos.call("store.mark_enqueued", self.inner.mark_enqueued(key, claim_id), store_err).await
    }
    async fn release(&self, key: &str, claim_id: &str) -> Result<(), StoreError> {
        self.chaos.call("store.release", self.inner.release(key, claim_id), store_err).await
    }
    async fn note_conflict(&self, key: &str) -> Result<(), StoreError> {
        self.chaos.call("store.note_conflict", self.inner.note_conflict(key), store_err).await
    }
    async fn get(&self, key: &str) -> Result<Option<DedupeRecord>, StoreError> {
        self.chaos.call("store.get", self.inner.get(key), store_err).await
    }
    async fn acquire_work(&self, lease: &WorkLease, now_ms: i64) -> Result<LeaseOutcome, StoreError> {
        // The store's own notion of now: the call may have been delayed.
        let now = self.chaos.clock.now_ms().max(now_ms);
        self.chaos.call("store.acquire_work", self.inner.acquire_work(lease, now), store_err).await
    }
    async fn release_work(&self, key: &str, token: &str, reason: &str) -> Result<(), StoreError> {
        self.chaos.call("store.release_work", self.inner.release_work(key, token, reason), store_err).await
    }
    async fn mark_published(&self, key: &str, token: &str, event_id: &str, at: &str) -> Result<bool, StoreError> {
        let mark = async {
            let marked = self.inner.mark_published(key, token, event_id, at).await;
            // A publisher never loses its record or lease (its lease outlives its
            // invocation): a refused mark means another writer took the record from under
            // it, and another copy of the event may follow. A retry of a mark that had
            // already taken effect finds the record PUBLISHED with this event: fine.
            let already = self
                .inner
                .record(key)
                .is_some_and(|r| r.status == RecordStatus::Published && r.event_id.as_deref() == Some(event_id));
            if matches!(marked, Ok(false)) && !already {
                self.chaos.violation(format!(
                    "{key}: the publisher's PUBLISHED mark was refused ({:?})",
                    self.inner.record(key)
                ));
            }
            marked
        };
        self.chaos.call("store.mark_published", mark, store_err).await
    }
    async fn advance_polls(&self, key: &str, token: &str, from: u32) -> Result<bool, StoreError> {
        self.chaos.call("store.advance_polls", self.inner.advance_polls(key, token, from), store_err).await
    }
}

#[async_trait]
impl WatchStore for FaultyStore {
    async fn put_watch(&self, watch: &Watch) -> Result<Watch, StoreError> {
        self.chaos.call("store.put_watch", self.inner.put_watch(watch), store_err).await
    }
    async fn get_watch(&self, reference: &str) -> Result<Option<Watch>, StoreError> {
        self.chaos.call("store.get_watch", self.inner.get_watch(reference), store_err).await
    }
}

/// A published event as the outbox saw it arrive, with the record's state at that moment.
#[derive(Debug, Clone)]
pub struct Publication {
    /// The event's `event_id`.
    pub event_id: String,
    /// The event's `job_id`.
    pub job_id: String,
    /// The event's `event_type`.
    pub event_type: String,
    /// Whether the dedupe record was already PUBLISHED when this copy was sent (a
    /// double publish no at-least-once window explains).
    pub after_published: bool,
}

/// Every publication, in order.
pub type PublicationLog = Arc<Mutex<Vec<Publication>>>;

/// A queue under the injector. The outbox one also records each publication with the
/// state of its dedupe record at that instant.
pub struct FaultyQueue {
    /// The real (in-memory) queue.
    pub inner: Arc<MemoryQueue>,
    /// The injector.
    pub chaos: Arc<Chaos>,
    /// Its name in traces.
    pub name: &'static str,
    /// For the outbox: the store to check publications against, and the log.
    pub publications: Option<(Arc<MemoryStore>, PublicationLog)>,
}

impl FaultyQueue {
    fn observe(&self, msgs: &[OutgoingMessage]) {
        let Some((store, log)) = &self.publications else { return };
        for m in msgs {
            let e = crate::schema::parse_event(&m.body);
            let job_id = e["job_id"].as_str().unwrap_or_default().to_string();
            let event_type = e["type"].as_str().unwrap_or_default().to_string();
            // Recorded under the job's key (its webhooks and watch alike), or the job's
            // abandon key for a generation.abandoned.
            let provider = e["provider"].as_str().unwrap_or_default();
            let key = if event_type == "generation.abandoned" {
                genhook::domain::dedupe::abandon_key(provider, &job_id)
            } else {
                publish_key_of(provider, &job_id)
            };
            let after_published = store.record(&key).is_some_and(|r| r.status == RecordStatus::Published);
            self.chaos.note(format!("outbox <- {key}{}", if after_published { " (ALREADY PUBLISHED)" } else { "" }));
            log.lock().unwrap_or_else(|p| p.into_inner()).push(Publication {
                event_id: e["event_id"].as_str().unwrap_or_default().to_string(),
                job_id,
                event_type,
                after_published,
            });
        }
    }
}

#[async_trait]
impl Queue for FaultyQueue {
    async fn send(&self, msg: OutgoingMessage) -> Result<String, QueueError> {
        let op = format!("{}.send", self.name);
        let effect = async {
            self.observe(std::slice::from_ref(&msg));
            self.inner.send(msg).await
        };
        self.chaos.call(&op, effect, QueueError::Unavailable).await
    }

    async fn send_batch(&self, msgs: Vec<OutgoingMessage>) -> Vec<Result<String, QueueError>> {
        let op = format!("{}.send_batch", self.name);
        let n = msgs.len();
        let copy = msgs.clone();
        let effect = async {
            self.observe(&copy);
            Ok::<_, QueueError>(self.inner.send_batch(msgs).await)
        };
        match self.chaos.call(&op, effect, QueueError::Unavailable).await {
            Ok(results) => results,
            Err(e) => (0..n).map(|_| Err(QueueError::Unavailable(e.to_string()))).collect(),
        }
    }

    async fn delay_retries(&self, retries: Vec<(String, Duration)>) -> Result<(), QueueError> {
        let op = format!("{}.delay_retries", self.name);
        self.chaos.call(&op, self.inner.delay_retries(retries), QueueError::Unavailable).await
    }
}

/// The key a job of `provider` is published under.
pub fn publish_key_of(provider: &str, job_id: &str) -> String {
    match provider {
        "replicate" => genhook::providers::replicate::message::publish_key(job_id),
        "apimp" => genhook::providers::apimp::message::publish_key(job_id),
        _ => genhook::providers::katalo::message::publish_key(job_id),
    }
}

/// One simulated job (a Katalo job, or a Replicate prediction: the same API answers both).
#[derive(Debug, Clone)]
pub struct SimJob {
    /// Its id.
    pub job_id: String,
    /// When it turns terminal (epoch ms).
    pub done_at_ms: i64,
    /// Whether it succeeds.
    pub succeeds: bool,
    /// Whether its output URL is on a host Katalo does not serve files from (a
    /// compromised or confused provider): it must never be published.
    pub foreign: bool,
    /// A Replicate prediction.
    pub replicate: bool,
    /// An APIMP task (else, and unless a prediction, a Katalo job).
    pub apimp: bool,
}

impl SimJob {
    /// The provider's name.
    pub fn provider(&self) -> &'static str {
        match (self.replicate, self.apimp) {
            (true, _) => "replicate",
            (_, true) => "apimp",
            _ => "katalo",
        }
    }
}

/// A spell during which Katalo answers every read the same way.
#[derive(Debug, Clone, Copy)]
pub struct Spell {
    /// From (epoch ms).
    pub from_ms: i64,
    /// Until (epoch ms, excluded).
    pub until_ms: i64,
    /// What every read gets meanwhile.
    pub answer: SpellAnswer,
}

/// What a [`Spell`] answers.
#[derive(Debug, Clone, Copy)]
pub enum SpellAnswer {
    /// 429 with this `retry_after` (seconds): the account's budget is spent elsewhere.
    RateLimited(u64),
    /// 401: the key is being rotated and the worker's one is refused.
    KeyRefused,
}

/// Katalo's job API over the simulated jobs: running until `done_at_ms`, then terminal
/// with freshly signed URLs; with injected 5xx, 429s, slowness and near-expiry URLs, and
/// spells of 429 storms and refused keys. As Replicate's, it also lists the predictions
/// (all created when the schedule starts), [`LIST_PAGE`] a page.
pub struct SimKatalo {
    /// The jobs.
    pub jobs: Vec<SimJob>,
    /// The injector.
    pub chaos: Arc<Chaos>,
    /// Spells of uniform answers.
    pub spells: Vec<Spell>,
    /// When every job was created (epoch ms).
    pub created_ms: i64,
}

/// Predictions on one page of the simulated list (small, so sweeps page).
pub const LIST_PAGE: usize = 2;

#[async_trait]
impl JobApi for SimKatalo {
    async fn get_job(&self, job_id: &str) -> Result<Job, JobApiError> {
        let transient = |reason: String| JobApiError::Transient { reason, retry_after: None };
        let read = async {
            let Some(job) = self.jobs.iter().find(|j| j.job_id == job_id) else {
                return Err(JobApiError::Permanent { status: 404, reason: "job_not_found".into() });
            };
            let now_ms = self.chaos.clock.now_ms();
            if let Some(spell) = self.spells.iter().find(|s| (s.from_ms..s.until_ms).contains(&now_ms)) {
                return Err(match spell.answer {
                    SpellAnswer::RateLimited(secs) => {
                        JobApiError::RateLimited { retry_after: Some(Duration::from_secs(secs)) }
                    }
                    SpellAnswer::KeyRefused => {
                        JobApiError::Permanent { status: 401, reason: "unauthorized: invalid API key".into() }
                    }
                });
            }
            let on = self.chaos.enabled.load(std::sync::atomic::Ordering::SeqCst);
            let (limited, short_urls) = self.chaos.with_rng(|r| (on && r.random_bool(0.03), on && r.random_bool(0.1)));
            if limited {
                return Err(JobApiError::RateLimited { retry_after: Some(Duration::from_secs(2)) });
            }
            let now = self.chaos.clock.now();
            let done = self.chaos.clock.now_ms() >= job.done_at_ms;
            let (state, status) = match (done, job.succeeds) {
                (false, _) => (JobState::Pending, "processing"),
                (true, true) => (JobState::Succeeded, "succeeded"),
                (true, false) => (JobState::Failed, "failed"),
            };
            let ttl = if short_urls { time::Duration::seconds(60) } else { time::Duration::hours(1) };
            let (succeeded, failed) = (state == JobState::Succeeded, state == JobState::Failed);
            let outputs = if succeeded {
                let host = if job.foreign { "evil.example" } else { "cdn.example" };
                vec![JobOutput { url: format!("https://{host}/{job_id}.png?sig=x"), expires_at: Some(now + ttl) }]
            } else {
                vec![]
            };
            Ok(Job {
                job_id: job_id.into(),
                state,
                status: status.into(),
                outputs,
                failure: failed.then(|| serde_json::json!({"code": "nsfw"})),
                reference: None,
                progress: None,
                metadata: None,
                source_asset_id: None,
                outputs_removed: false,
            })
        };
        self.chaos.call("katalo.get_job", read, transient).await
    }

    async fn list_jobs(
        &self,
        from: time::OffsetDateTime,
        until: time::OffsetDateTime,
        cursor: Option<&str>,
    ) -> Result<genhook::ports::JobPage, JobApiError> {
        let transient = |reason: String| JobApiError::Transient { reason, retry_after: None };
        let list = async {
            let created = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.created_ms) * 1_000_000)
                .map_err(|e| JobApiError::Permanent { status: 500, reason: e.to_string() })?;
            let offset = match cursor {
                None => 0,
                Some(c) => c
                    .strip_prefix("sim:")
                    .and_then(|n| n.parse::<usize>().ok())
                    .ok_or_else(|| JobApiError::Permanent { status: 400, reason: format!("not a cursor: {c}") })?,
            };
            let now_ms = self.chaos.clock.now_ms();
            let listed: Vec<&SimJob> =
                self.jobs.iter().filter(|j| j.replicate && (from..until).contains(&created)).collect();
            let jobs = listed
                .iter()
                .skip(offset)
                .take(LIST_PAGE)
                .map(|j| genhook::ports::ListedJob {
                    id: j.job_id.clone(),
                    state: match (now_ms >= j.done_at_ms, j.succeeds) {
                        (false, _) => JobState::Pending,
                        (true, true) => JobState::Succeeded,
                        (true, false) => JobState::Failed,
                    },
                })
                .collect();
            let end = offset + LIST_PAGE;
            Ok(genhook::ports::JobPage { jobs, next: (end < listed.len()).then(|| format!("sim:{end}")) })
        };
        self.chaos.call("replicate.list_jobs", list, transient).await
    }
}
