//! Ports: what the receiver and worker need from the outside world, as traits over
//! [`crate::domain`] types (and nothing else in the crate). One adapter per real service
//! lives in [`crate::adapters`]; each provider implements [`provider`]'s traits in its
//! folder under [`crate::providers`].

pub mod budget;
pub mod env;
pub mod link_cache;
pub mod provider;
pub mod secrets;

use std::time::Duration;

use async_trait::async_trait;

use crate::domain::dedupe::{Claim, ClaimOutcome, DedupeRecord, LeaseOutcome, WorkLease};
use crate::domain::job::Job;
use crate::domain::watch::Watch;

/// A dedupe-store failure (the store could not be reached or answered oddly).
#[derive(Debug, thiserror::Error)]
#[error("dedupe store: {0}")]
pub struct StoreError(pub String);

/// The dedupe store: conditional writes over [`DedupeRecord`]s.
#[async_trait]
pub trait DedupeStore: Send + Sync {
    /// Writes `claim` if the key is free or its record is dead at `now_ms`
    /// ([`DedupeRecord::is_claimable`]); otherwise returns the live record.
    async fn claim(&self, claim: &Claim, now_ms: i64) -> Result<ClaimOutcome, StoreError>;

    /// Moves the claim from IN_PROGRESS to ENQUEUED. `false` if the record is no longer
    /// this claim's IN_PROGRESS record (it moved on, which is fine).
    async fn mark_enqueued(&self, key: &str, claim_id: &str) -> Result<bool, StoreError>;

    /// Deletes the claim if it is still this claim's IN_PROGRESS record and no worker has
    /// leased it ([`DedupeRecord::is_releasable_by`]): a worker's lease proves the
    /// message is in the inbox, and deleting the record then would let a retry enqueue
    /// and publish again.
    async fn release(&self, key: &str, claim_id: &str) -> Result<(), StoreError>;

    /// Counts a delivery that had the record's key but a different body.
    async fn note_conflict(&self, key: &str) -> Result<(), StoreError>;

    /// Reads a record (strongly consistent).
    async fn get(&self, key: &str) -> Result<Option<DedupeRecord>, StoreError>;

    /// Takes the worker lease on a record (creating the record if it is gone) unless it
    /// is published or another worker's lease is live at `now_ms`. An IN_PROGRESS record
    /// becomes ENQUEUED (the message has reached the inbox), and `expires_at` moves out
    /// to the lease's.
    async fn acquire_work(&self, lease: &WorkLease, now_ms: i64) -> Result<LeaseOutcome, StoreError>;

    /// Gives the lease back after an attempt that did not publish, recording why. A no-op
    /// unless `token` holds the lease.
    async fn release_work(&self, key: &str, token: &str, reason: &str) -> Result<(), StoreError>;

    /// Marks the record PUBLISHED with the event id, ending the lease. Only the holder of
    /// the lease (`token`) can, and only on an existing record; `false` when the lease
    /// was lost (the record is left as it is).
    async fn mark_published(
        &self,
        key: &str,
        token: &str,
        event_id: &str,
        published_at: &str,
    ) -> Result<bool, StoreError>;

    /// Moves the record's poll chain from `from` to `from + 1`, for the holder of the
    /// lease; `false` when the chain is elsewhere or the lease was lost.
    async fn advance_polls(&self, key: &str, token: &str, from: u32) -> Result<bool, StoreError>;
}

/// The largest message body a queue takes (SQS's limit).
pub const MAX_MESSAGE_BYTES: usize = 1024 * 1024;
/// The longest a message can be delayed when sent (SQS's `DelaySeconds` limit).
pub const MAX_DELAY: Duration = Duration::from_secs(900);
/// The longest a received message can be hidden (SQS's visibility limit).
pub const MAX_VISIBILITY: Duration = Duration::from_secs(12 * 60 * 60);

/// A message to put on a queue.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OutgoingMessage {
    /// The body (JSON text).
    pub body: String,
    /// String message attributes (for filtering and for operators).
    pub attributes: Vec<(String, String)>,
    /// FIFO queues: the message group (ordering scope).
    pub group_id: Option<String>,
    /// FIFO queues: the deduplication id.
    pub dedup_id: Option<String>,
    /// Keep the message invisible this long after sending (SQS `DelaySeconds`, at most
    /// 15 minutes): the timer of scheduled polls.
    pub delay: Option<Duration>,
}

/// A queue failure.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// The queue could not be reached or refused the call.
    #[error("queue unavailable: {0}")]
    Unavailable(String),
    /// The queue rejected this one message (size, attributes...).
    #[error("message rejected: {0}")]
    Rejected(String),
}

/// A message queue (one adapter instance per queue).
#[async_trait]
pub trait Queue: Send + Sync {
    /// Sends one message; returns its message id.
    async fn send(&self, msg: OutgoingMessage) -> Result<String, QueueError>;

    /// Sends messages in as few calls as the queue allows; one result per message, in order.
    async fn send_batch(&self, msgs: Vec<OutgoingMessage>) -> Vec<Result<String, QueueError>>;

    /// Hides received messages (by receipt handle) for the given time: the retry timer.
    async fn delay_retries(&self, retries: Vec<(String, Duration)>) -> Result<(), QueueError>;
}

/// A message received from a queue, hidden from other consumers until it is deleted or
/// its visibility timeout passes.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedMessage {
    /// The queue's id for the message.
    pub message_id: String,
    /// The handle of this receipt (to delete the message or change its visibility).
    pub receipt_handle: String,
    /// The body.
    pub body: String,
    /// String message attributes.
    pub attributes: Vec<(String, String)>,
    /// How many times the message has been received, this time included.
    pub receive_count: u32,
}

/// The receiving side of a queue: what Lambda's SQS event source mapping does for the
/// deployed worker, and what `genhook dev`, `tail` and `redrive` do themselves.
#[async_trait]
pub trait QueueConsumer: Send + Sync {
    /// Receives up to `max` messages (at most 10), waiting up to `wait` for the first.
    async fn receive(&self, max: usize, wait: Duration) -> Result<Vec<ReceivedMessage>, QueueError>;

    /// Deletes received messages by receipt handle.
    async fn delete(&self, receipt_handles: Vec<String>) -> Result<(), QueueError>;

    /// About how many messages the queue holds (visible or not).
    async fn depth(&self) -> Result<u64, QueueError>;
}

/// Why reading a job from a provider's API failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum JobApiError {
    /// Rate limited (429); try again after the given time if the API said.
    #[error("rate limited by the provider API")]
    RateLimited {
        /// The API's `retry_after`, or the `Retry-After` header.
        retry_after: Option<Duration>,
    },
    /// A passing failure: 5xx, timeout, connection error, or a retryable error body.
    #[error("provider API unavailable: {reason}")]
    Transient {
        /// What happened.
        reason: String,
        /// The API's `retry_after`, if any.
        retry_after: Option<Duration>,
    },
    /// A failure that retrying will not fix (404, auth, validation).
    #[error("provider API refused: HTTP {status}: {reason}")]
    Permanent {
        /// The HTTP status.
        status: u16,
        /// The API's error code and message.
        reason: String,
    },
}

/// A provider's job-status API: the truth a provider's reconciler publishes.
#[async_trait]
pub trait JobApi: Send + Sync {
    /// Reads the job's current state, with freshly signed output URLs.
    async fn get_job(&self, job_id: &str) -> Result<Job, JobApiError>;

    /// One page of the jobs created in `[from, until)`, newest first: the first page, or
    /// the one `cursor` (a previous page's `next`) names. A provider without a list API
    /// answers with a permanent error (the default).
    async fn list_jobs(
        &self,
        _from: time::OffsetDateTime,
        _until: time::OffsetDateTime,
        _cursor: Option<&str>,
    ) -> Result<JobPage, JobApiError> {
        Err(JobApiError::Permanent { status: 501, reason: "this provider cannot list its jobs".into() })
    }
}

/// A page of a provider's job list.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct JobPage {
    /// The jobs on it.
    pub jobs: Vec<ListedJob>,
    /// The next page's cursor, if there is one.
    pub next: Option<String>,
}

/// A job as a list shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedJob {
    /// The job's id.
    pub id: String,
    /// What its status word means.
    pub state: crate::domain::job::JobState,
}

/// What the providers' halves keep in the shared table: task watches and the providers'
/// read budgets.
pub trait ProviderTables: WatchStore + budget::ReadBudget {}
impl<T: WatchStore + budget::ReadBudget + ?Sized> ProviderTables for T {}

/// Where task watches (reference → task id) are kept: the dedupe table.
#[async_trait]
pub trait WatchStore: Send + Sync {
    /// Records a watch unless its reference is already registered; returns the watch in
    /// force (the existing one when there was one, which is never replaced).
    async fn put_watch(&self, watch: &Watch) -> Result<Watch, StoreError>;

    /// The watch registered under `reference`, if any.
    async fn get_watch(&self, reference: &str) -> Result<Option<Watch>, StoreError>;
}
