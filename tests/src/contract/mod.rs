//! The adapter contract: one set of test functions for the ports [`DedupeStore`],
//! [`WatchStore`], [`LinkCache`], [`Queue`] and [`QueueConsumer`], run against every
//! backend (memory, SQLite, and DynamoDB Local + the SQS emulator) by `tests/contract.rs`.
//!
//! Store functions take `now_ms` explicitly, so they use fixed instants. Queues run on
//! their own clock: a [`ManualClock`] that [`Time::pass`] advances for the memory and
//! SQLite queues, real time (a sleep) for SQS, so every queue timing is 1-3 s.

pub mod budget;
pub mod link;
pub mod queue;
pub mod store;

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sqs::types::QueueAttributeName;
use genhook::adapters::dynamodb::DynamoDedupeStore;
use genhook::adapters::memory::{MemoryQueue, MemoryQueueSettings, MemoryStore};
use genhook::adapters::provision::{create_queue, create_table, queue_arn};
use genhook::adapters::sqlite::{QueueSettings, SqliteDb};
use genhook::adapters::sqs::SqsQueue;
use genhook::domain::clock::{Clock, ManualClock, SystemClock};
use genhook::ports::budget::ReadBudget;
use genhook::ports::link_cache::LinkCache;
use genhook::ports::{DedupeStore, Queue, QueueConsumer, WatchStore};

/// A dedupe store that also keeps watches and the output links' cache (every adapter is
/// all three).
pub trait Store: DedupeStore + WatchStore + LinkCache + ReadBudget {}
impl<T: DedupeStore + WatchStore + LinkCache + ReadBudget> Store for T {}

/// Both sides of one queue.
pub trait FullQueue: Queue + QueueConsumer {}
impl<T: Queue + QueueConsumer> FullQueue for T {}

/// How long a received message stays hidden on the contract's queues.
pub const VISIBILITY: Duration = Duration::from_secs(1);
/// Receives after which the contract's queues move a message to their DLQ.
pub const MAX_RECEIVES: u32 = 2;

/// A fresh store, and whatever must live as long as it.
pub struct StoreFixture {
    /// The store under test.
    pub store: Arc<dyn Store>,
    _keep: Option<tempfile::TempDir>,
}

/// How time passes for a queue.
pub enum Time {
    /// The queue's clock, moved by hand.
    Manual(Arc<ManualClock>),
    /// Wall-clock time (the SQS emulator).
    Real,
}

impl Time {
    /// Lets `d` pass.
    pub async fn pass(&self, d: Duration) {
        match self {
            Self::Manual(clock) => clock.advance(time::Duration::try_from(d).expect("a short duration")),
            Self::Real => tokio::time::sleep(d).await,
        }
    }
}

/// A fresh queue with a visibility timeout of [`VISIBILITY`] and a dead-letter queue
/// after [`MAX_RECEIVES`] receives.
pub struct QueueFixture {
    /// The queue under test.
    pub queue: Arc<dyn FullQueue>,
    /// Its dead-letter queue.
    pub dlq: Arc<dyn FullQueue>,
    /// The queues' time.
    pub time: Time,
    _keep: Option<tempfile::TempDir>,
}

fn manual_clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(time::macros::datetime!(2030-01-01 00:00:00 UTC)))
}

/// The in-memory store.
pub async fn memory_store() -> StoreFixture {
    StoreFixture { store: Arc::new(MemoryStore::default()), _keep: None }
}

/// The SQLite store, in a fresh file.
pub async fn sqlite_store() -> StoreFixture {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = SqliteDb::open(&dir.path().join("contract.sqlite"), Arc::new(SystemClock)).expect("open SQLite");
    StoreFixture { store: Arc::new(db.store()), _keep: Some(dir) }
}

/// The DynamoDB store, on a fresh table in DynamoDB Local.
pub async fn dynamodb_store() -> StoreFixture {
    let aws = crate::aws::aws().await;
    let table = crate::unique("genhook-contract");
    create_table(&aws.ddb, &table).await.expect("create table");
    StoreFixture { store: Arc::new(DynamoDedupeStore::new(aws.ddb, table)), _keep: None }
}

/// Memory queues on a manual clock.
pub async fn memory_queue() -> QueueFixture {
    let clock = manual_clock();
    let dlq = Arc::new(MemoryQueue::new(MemoryQueueSettings {
        visibility_timeout: VISIBILITY,
        dead_letter: None,
        clock: clock.clone(),
    }));
    let queue = MemoryQueue::new(MemoryQueueSettings {
        visibility_timeout: VISIBILITY,
        dead_letter: Some((dlq.clone(), MAX_RECEIVES)),
        clock: clock.clone(),
    });
    QueueFixture { queue: Arc::new(queue), dlq, time: Time::Manual(clock), _keep: None }
}

/// SQLite queues in a fresh file, on a manual clock.
pub async fn sqlite_queue() -> QueueFixture {
    let dir = tempfile::tempdir().expect("temp dir");
    let clock = manual_clock();
    let c: Arc<dyn Clock> = clock.clone();
    let db = SqliteDb::open(&dir.path().join("contract.sqlite"), c).expect("open SQLite");
    let queue = db.queue(
        "contract",
        QueueSettings { visibility_timeout: VISIBILITY, dead_letter: Some(("contract-dlq".into(), MAX_RECEIVES)) },
    );
    let dlq = db.queue("contract-dlq", QueueSettings { visibility_timeout: VISIBILITY, dead_letter: None });
    QueueFixture { queue: Arc::new(queue), dlq: Arc::new(dlq), time: Time::Manual(clock), _keep: Some(dir) }
}

/// Fresh queues on the SQS emulator: the queue redrives to its DLQ after
/// [`MAX_RECEIVES`] receives (a `RedrivePolicy`, as genhook's provisioning sets it).
pub async fn sqs_queue() -> QueueFixture {
    let aws = crate::aws::aws().await;
    let name = crate::unique("genhook-contract");
    let secs = VISIBILITY.as_secs() as u32;
    let dlq_url = create_queue(&aws.sqs, &format!("{name}-dlq"), secs, None).await.expect("create DLQ");
    let arn = queue_arn(&aws.sqs, &dlq_url).await.expect("DLQ ARN");
    let policy = serde_json::json!({"deadLetterTargetArn": arn, "maxReceiveCount": MAX_RECEIVES}).to_string();
    let url = aws
        .sqs
        .create_queue()
        .queue_name(&name)
        .attributes(QueueAttributeName::VisibilityTimeout, secs.to_string())
        .attributes(QueueAttributeName::RedrivePolicy, policy)
        .send()
        .await
        .expect("create queue")
        .queue_url
        .expect("queue URL");
    QueueFixture {
        queue: Arc::new(SqsQueue::new(aws.sqs.clone(), url)),
        dlq: Arc::new(SqsQueue::new(aws.sqs, dlq_url)),
        time: Time::Real,
        _keep: None,
    }
}
