//! The worker's public types: its settings, its ports, the records it takes and the
//! report it gives.

use std::sync::Arc;
use std::time::Duration;

use crate::domain::backoff::Backoff;
use crate::domain::clock::Clock;
use crate::domain::dedupe::MIN_DEDUPE_TTL;
use crate::domain::retry::RetryState;
use crate::domain::trace::Trace;
use crate::ports::{DedupeStore, Queue, ReceivedMessage};

/// The inbox redrive policy's `maxReceiveCount` in the template.
pub const DEFAULT_MAX_RECEIVES: u32 = 20;

/// How long a record may wait by default: a day.
pub const DEFAULT_WAIT_HORIZON: Duration = Duration::from_secs(24 * 60 * 60);

/// Worker settings (the providers' own are in their reconcilers).
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
    /// The inbox's `maxReceiveCount`: a record received this many times (its waits do
    /// not count: they are sent anew) is dead-lettered with the reason before SQS would
    /// move it without one. `None`: no limit known.
    pub max_receives: Option<u32>,
    /// How long a record may keep waiting (rate limits, outages, a refused key) from its
    /// first failed attempt before it is dead-lettered with the last reason.
    pub wait_horizon: Duration,
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
            max_receives: Some(DEFAULT_MAX_RECEIVES),
            wait_horizon: DEFAULT_WAIT_HORIZON,
        }
    }
}

/// One inbox message as delivered to the worker.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InboxRecord {
    /// SQS message id (what a batch item failure names).
    pub message_id: String,
    /// Receipt handle (to change the message's visibility).
    pub receipt_handle: String,
    /// Message body.
    pub body: String,
    /// How many times the message has been received, this time included.
    pub receive_count: u32,
    /// The delivery it came from (from the message's attributes), carried into the event.
    pub trace: Trace,
    /// The record's earlier attempts (from the message's attributes).
    pub retry: RetryState,
}

impl InboxRecord {
    /// This attempt's number (1-based), counting the attempts of the copies before it.
    pub fn attempt(&self) -> u32 {
        self.retry.attempt(self.receive_count)
    }
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
    /// `generation.abandoned` events published (their records dead-lettered too).
    pub abandoned: usize,
    /// Records done once their follow-ups were sent (a sweep's pages).
    pub fanned_out: usize,
    /// Jobs and watched tasks still running, whose next poll was scheduled.
    pub rescheduled: usize,
    /// Records left for a later invocation because the deadline was near.
    pub deferred: usize,
}

/// The worker's ports (the providers' APIs are in their reconcilers).
pub struct WorkerPorts {
    /// The dedupe store shared with the receiver.
    pub store: Arc<dyn DedupeStore>,
    /// The inbox (for retry delays and scheduled polls).
    pub inbox: Arc<dyn Queue>,
    /// The inbox's dead-letter queue, for records that can never succeed. Without it such
    /// records are retried until the queue's redrive policy moves them.
    pub inbox_dlq: Option<Arc<dyn Queue>>,
    /// Where normalized events go.
    pub outbox: Arc<dyn Queue>,
    /// Time.
    pub clock: Arc<dyn Clock>,
}

/// A message a queue consumer received (`genhook dev`'s loop, the simulation), as the
/// worker reads it.
impl From<ReceivedMessage> for InboxRecord {
    fn from(m: ReceivedMessage) -> Self {
        Self {
            trace: Trace::from_attributes(&m.attributes),
            retry: RetryState::from_attributes(&m.attributes),
            message_id: m.message_id,
            receipt_handle: m.receipt_handle,
            body: m.body,
            receive_count: m.receive_count,
        }
    }
}
