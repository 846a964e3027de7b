//! Ports: what the receiver and worker need from the outside world. One adapter per real
//! service lives in [`crate::adapters`]; in-memory ones serve unit tests.

use std::time::Duration;

use async_trait::async_trait;

use crate::domain::dedupe::{Claim, ClaimOutcome, DedupeRecord, LeaseOutcome, WorkLease};
use crate::domain::job::Job;

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

    /// Deletes the claim if it is still this claim's IN_PROGRESS record.
    async fn release(&self, key: &str, claim_id: &str) -> Result<(), StoreError>;

    /// Counts a delivery that had the record's key but a different body.
    async fn note_conflict(&self, key: &str) -> Result<(), StoreError>;

    /// Reads a record (strongly consistent).
    async fn get(&self, key: &str) -> Result<Option<DedupeRecord>, StoreError>;

    /// Takes the worker lease on a record (creating the record if it is gone) unless it
    /// is published or another worker's lease is live at `now_ms`.
    async fn acquire_work(&self, lease: &WorkLease, now_ms: i64) -> Result<LeaseOutcome, StoreError>;

    /// Gives the lease back after an attempt that did not publish, recording why.
    async fn release_work(&self, key: &str, token: &str, reason: &str) -> Result<(), StoreError>;

    /// Marks the record PUBLISHED with the event id, ending the lease.
    async fn mark_published(&self, key: &str, event_id: &str, published_at: &str) -> Result<(), StoreError>;
}

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

/// A provider's job-status API.
#[async_trait]
pub trait JobApi: Send + Sync {
    /// Reads the job's current state, with freshly signed output URLs.
    async fn get_job(&self, job_id: &str) -> Result<Job, JobApiError>;
}
