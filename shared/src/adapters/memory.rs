//! In-memory adapters with the same semantics as DynamoDB and SQS, for unit tests of
//! the receiver and worker logic.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;

use crate::domain::dedupe::{Claim, ClaimOutcome, DedupeRecord, LeaseOutcome, RecordStatus, WorkLease};
use crate::domain::watch::Watch;
use crate::ports::{DedupeStore, OutgoingMessage, Queue, QueueError, StoreError, WatchStore};

/// A dedupe store in a map; `fail` makes every call fail (an outage).
#[derive(Debug, Default)]
pub struct MemoryStore {
    records: Mutex<HashMap<String, DedupeRecord>>,
    watches: Mutex<HashMap<String, Watch>>,
    /// When set, every call fails with a [`StoreError`].
    pub fail: std::sync::atomic::AtomicBool,
    /// Calls made so far (each stands for one DynamoDB round trip).
    pub calls: std::sync::atomic::AtomicUsize,
}

impl MemoryStore {
    fn lock(&self) -> Result<std::sync::MutexGuard<'_, HashMap<String, DedupeRecord>>, StoreError> {
        self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if self.fail.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(StoreError("injected outage".into()));
        }
        Ok(self.records.lock().expect("store lock"))
    }

    /// A copy of a record, for assertions.
    pub fn record(&self, key: &str) -> Option<DedupeRecord> {
        self.records.lock().expect("store lock").get(key).cloned()
    }

    /// Overwrites a record, for setting up test states.
    pub fn put(&self, record: DedupeRecord) {
        self.records.lock().expect("store lock").insert(record.key.clone(), record);
    }
}

#[async_trait]
impl DedupeStore for MemoryStore {
    async fn claim(&self, claim: &Claim, now_ms: i64) -> Result<ClaimOutcome, StoreError> {
        let mut map = self.lock()?;
        match map.get(&claim.key) {
            Some(r) if !r.is_claimable(now_ms) => Ok(ClaimOutcome::Existing(Box::new(r.clone()))),
            _ => {
                map.insert(claim.key.clone(), claim.to_record());
                Ok(ClaimOutcome::Claimed)
            }
        }
    }

    async fn mark_enqueued(&self, key: &str, claim_id: &str) -> Result<bool, StoreError> {
        let mut map = self.lock()?;
        match map.get_mut(key) {
            Some(r) if r.claim_id == claim_id && r.status == RecordStatus::InProgress => {
                r.status = RecordStatus::Enqueued;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn release(&self, key: &str, claim_id: &str) -> Result<(), StoreError> {
        let mut map = self.lock()?;
        if map.get(key).is_some_and(|r| r.claim_id == claim_id && r.status == RecordStatus::InProgress) {
            map.remove(key);
        }
        Ok(())
    }

    async fn note_conflict(&self, key: &str) -> Result<(), StoreError> {
        if let Some(r) = self.lock()?.get_mut(key) {
            r.conflicts += 1;
        }
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<DedupeRecord>, StoreError> {
        Ok(self.lock()?.get(key).cloned())
    }

    async fn acquire_work(&self, lease: &WorkLease, now_ms: i64) -> Result<LeaseOutcome, StoreError> {
        let mut map = self.lock()?;
        let r = map.entry(lease.key.clone()).or_insert_with(|| DedupeRecord {
            key: lease.key.clone(),
            status: RecordStatus::Enqueued,
            claim_id: String::new(),
            lease_until_ms: 0,
            expires_at: lease.expires_at,
            body_sha256: String::new(),
            received_at: lease.received_at.clone(),
            conflicts: 0,
            work_lease_until_ms: None,
            work_token: None,
            event_id: None,
            last_error: None,
        });
        if r.status == RecordStatus::Published {
            return Ok(LeaseOutcome::AlreadyPublished);
        }
        if !r.is_workable(now_ms) {
            return Ok(LeaseOutcome::Busy { until_ms: r.work_lease_until_ms.unwrap_or(now_ms) });
        }
        r.work_lease_until_ms = Some(lease.until_ms);
        r.work_token = Some(lease.token.clone());
        Ok(LeaseOutcome::Acquired)
    }

    async fn release_work(&self, key: &str, token: &str, reason: &str) -> Result<(), StoreError> {
        if let Some(r) = self.lock()?.get_mut(key).filter(|r| r.work_token.as_deref() == Some(token)) {
            r.work_lease_until_ms = None;
            r.work_token = None;
            r.last_error = Some(reason.to_string());
        }
        Ok(())
    }

    async fn mark_published(&self, key: &str, event_id: &str, _published_at: &str) -> Result<(), StoreError> {
        if let Some(r) = self.lock()?.get_mut(key) {
            r.status = RecordStatus::Published;
            r.event_id = Some(event_id.to_string());
            r.work_lease_until_ms = None;
            r.work_token = None;
            r.last_error = None;
        }
        Ok(())
    }
}

#[async_trait]
impl WatchStore for MemoryStore {
    async fn put_watch(&self, watch: &Watch) -> Result<(), StoreError> {
        drop(self.lock()?);
        self.watches.lock().expect("watch lock").insert(watch.reference.clone(), watch.clone());
        Ok(())
    }

    async fn get_watch(&self, reference: &str) -> Result<Option<Watch>, StoreError> {
        drop(self.lock()?);
        Ok(self.watches.lock().expect("watch lock").get(reference).cloned())
    }
}

/// A queue in a vector; `fail` makes sends fail (an outage).
#[derive(Debug, Default)]
pub struct MemoryQueue {
    messages: Mutex<Vec<OutgoingMessage>>,
    delays: Mutex<Vec<(String, Duration)>>,
    /// When set, sends fail with [`QueueError::Unavailable`].
    pub fail: std::sync::atomic::AtomicBool,
    /// Calls made so far (each stands for one SQS round trip; a batch send counts once).
    pub calls: std::sync::atomic::AtomicUsize,
}

impl MemoryQueue {
    /// Messages sent so far.
    pub fn messages(&self) -> Vec<OutgoingMessage> {
        self.messages.lock().expect("queue lock").clone()
    }

    /// Visibility delays requested so far (receipt handle, delay).
    pub fn delays(&self) -> Vec<(String, Duration)> {
        self.delays.lock().expect("queue lock").clone()
    }

    fn down(&self) -> bool {
        self.fail.load(std::sync::atomic::Ordering::SeqCst)
    }
}

#[async_trait]
impl Queue for MemoryQueue {
    async fn send(&self, msg: OutgoingMessage) -> Result<String, QueueError> {
        self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.push(msg)
    }

    async fn send_batch(&self, msgs: Vec<OutgoingMessage>) -> Vec<Result<String, QueueError>> {
        self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        msgs.into_iter().map(|m| self.push(m)).collect()
    }

    async fn delay_retries(&self, retries: Vec<(String, Duration)>) -> Result<(), QueueError> {
        self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.delays.lock().expect("queue lock").extend(retries);
        Ok(())
    }
}

impl MemoryQueue {
    fn push(&self, msg: OutgoingMessage) -> Result<String, QueueError> {
        if self.down() {
            return Err(QueueError::Unavailable("injected outage".into()));
        }
        let mut m = self.messages.lock().expect("queue lock");
        m.push(msg);
        Ok(format!("m-{}", m.len()))
    }
}
