//! In-memory adapters with the semantics of the DynamoDB, SQS and SQLite ones (the same
//! contract suite runs against all of them, in the `tests` crate), for unit tests and for
//! the deterministic simulation of the pipeline. Ids and receipt handles are counters,
//! so a run is reproducible.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;

use crate::domain::budget::{WINDOW_RETENTION_SECS, budget_key};
use crate::domain::clock::{Clock, SystemClock, millis};
use crate::domain::dedupe::{Claim, ClaimOutcome, DedupeRecord, LeaseOutcome, RecordStatus, WorkLease};
use crate::domain::link_cache::CachedOutputs;
use crate::domain::watch::Watch;
use crate::ports::budget::ReadBudget;
use crate::ports::link_cache::{LinkCache, encode_cached_outputs, link_cache_key};
use crate::ports::{
    DedupeStore, OutgoingMessage, Queue, QueueConsumer, QueueError, ReceivedMessage, StoreError, WatchStore,
};

/// Locks a mutex, still usable after a panic elsewhere (every update below is a single
/// step that cannot be left half-done).
fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A dedupe store in a map; `fail` makes every call fail (an outage).
#[derive(Debug, Default)]
pub struct MemoryStore {
    records: Mutex<HashMap<String, DedupeRecord>>,
    watches: Mutex<HashMap<String, Watch>>,
    links: Mutex<HashMap<String, LinkItem>>,
    /// Reads taken per provider and window (epoch s).
    reads: Mutex<HashMap<(String, i64), u32>>,
    /// When set, every call fails with a [`StoreError`].
    pub fail: AtomicBool,
    /// Calls made so far (each stands for one DynamoDB round trip).
    pub calls: AtomicUsize,
}

impl MemoryStore {
    fn lock(&self) -> Result<MutexGuard<'_, HashMap<String, DedupeRecord>>, StoreError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.fail.load(Ordering::SeqCst) {
            return Err(StoreError("injected outage".into()));
        }
        Ok(locked(&self.records))
    }

    /// A copy of a record, for assertions.
    pub fn record(&self, key: &str) -> Option<DedupeRecord> {
        locked(&self.records).get(key).cloned()
    }

    /// Copies of every record, for invariant checks.
    pub fn records(&self) -> Vec<DedupeRecord> {
        locked(&self.records).values().cloned().collect()
    }

    /// Overwrites a record, for setting up test states.
    pub fn put(&self, record: DedupeRecord) {
        locked(&self.records).insert(record.key.clone(), record);
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
        if map.get(key).is_some_and(|r| r.is_releasable_by(claim_id)) {
            map.remove(key);
        }
        Ok(())
    }

    async fn note_conflict(&self, key: &str) -> Result<(), StoreError> {
        if let Some(r) = self.lock()?.get_mut(key) {
            r.conflicts = r.conflicts.saturating_add(1);
        }
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<DedupeRecord>, StoreError> {
        Ok(self.lock()?.get(key).cloned())
    }

    async fn acquire_work(&self, lease: &WorkLease, now_ms: i64) -> Result<LeaseOutcome, StoreError> {
        let mut map = self.lock()?;
        let r = map.entry(lease.key.clone()).or_insert_with(|| lease.to_record());
        if r.status == RecordStatus::Published {
            return Ok(LeaseOutcome::AlreadyPublished);
        }
        if !r.is_workable(now_ms) {
            return Ok(LeaseOutcome::Busy { until_ms: r.work_lease_until_ms.unwrap_or(now_ms) });
        }
        r.status = RecordStatus::Enqueued;
        r.expires_at = lease.expires_at;
        r.work_lease_until_ms = Some(lease.until_ms);
        r.work_token = Some(lease.token.clone());
        Ok(LeaseOutcome::Acquired { poll_seq: r.poll_seq })
    }

    async fn release_work(&self, key: &str, token: &str, reason: &str) -> Result<(), StoreError> {
        if let Some(r) = self.lock()?.get_mut(key).filter(|r| r.work_token.as_deref() == Some(token)) {
            r.work_lease_until_ms = None;
            r.work_token = None;
            r.last_error = Some(reason.to_string());
        }
        Ok(())
    }

    async fn mark_published(
        &self,
        key: &str,
        token: &str,
        event_id: &str,
        _published_at: &str,
    ) -> Result<bool, StoreError> {
        match self.lock()?.get_mut(key).filter(|r| r.work_token.as_deref() == Some(token)) {
            Some(r) => {
                r.status = RecordStatus::Published;
                r.event_id = Some(event_id.to_string());
                r.work_lease_until_ms = None;
                r.work_token = None;
                r.last_error = None;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn advance_polls(&self, key: &str, token: &str, from: u32) -> Result<bool, StoreError> {
        match self.lock()?.get_mut(key).filter(|r| r.work_token.as_deref() == Some(token) && r.poll_seq == from) {
            Some(r) => {
                r.poll_seq = from.saturating_add(1);
                Ok(true)
            }
            None => Ok(false),
        }
    }
}

#[async_trait]
impl WatchStore for MemoryStore {
    async fn put_watch(&self, watch: &Watch) -> Result<Watch, StoreError> {
        drop(self.lock()?);
        Ok(locked(&self.watches).entry(watch.reference.clone()).or_insert_with(|| watch.clone()).clone())
    }

    async fn get_watch(&self, reference: &str) -> Result<Option<Watch>, StoreError> {
        drop(self.lock()?);
        Ok(locked(&self.watches).get(reference).cloned())
    }
}

/// A job's item in the output links' cache (no TTL here: items stay, as they may in
/// DynamoDB until its TTL sweep comes by).
#[derive(Debug, Clone, Default)]
struct LinkItem {
    outputs: Option<CachedOutputs>,
    lease: Option<(String, i64)>,
}

#[async_trait]
impl ReadBudget for MemoryStore {
    async fn take_read(&self, provider: &str, window_s: i64, limit: u32) -> Result<bool, StoreError> {
        if budget_key(provider, window_s).is_none() {
            return Err(StoreError(format!("invalid provider name {provider:?}")));
        }
        drop(self.lock()?);
        let mut reads = locked(&self.reads);
        // Windows past their retention are gone, as the table's TTL removes them.
        reads.retain(|(_, w), _| *w >= window_s.saturating_sub(WINDOW_RETENTION_SECS));
        let taken = reads.entry((provider.to_string(), window_s)).or_insert(0);
        if *taken >= limit {
            return Ok(false);
        }
        *taken += 1;
        Ok(true)
    }
}

#[async_trait]
impl LinkCache for MemoryStore {
    async fn get_outputs(&self, provider: &str, job_id: &str) -> Result<Option<CachedOutputs>, StoreError> {
        let key = link_cache_key(provider, job_id)?;
        drop(self.lock()?);
        Ok(locked(&self.links).get(&key).and_then(|item| item.outputs.clone()))
    }

    async fn put_outputs(
        &self,
        provider: &str,
        job_id: &str,
        outputs: &CachedOutputs,
        _expires_at: i64,
    ) -> Result<(), StoreError> {
        let key = link_cache_key(provider, job_id)?;
        encode_cached_outputs(outputs)?;
        drop(self.lock()?);
        locked(&self.links).insert(key, LinkItem { outputs: Some(outputs.clone()), lease: None });
        Ok(())
    }

    async fn lease_refresh(
        &self,
        provider: &str,
        job_id: &str,
        token: &str,
        until_ms: i64,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let key = link_cache_key(provider, job_id)?;
        drop(self.lock()?);
        let mut links = locked(&self.links);
        let item = links.entry(key).or_default();
        if item.lease.as_ref().is_some_and(|(_, until)| *until >= now_ms) {
            return Ok(false);
        }
        item.lease = Some((token.to_string(), until_ms));
        Ok(true)
    }

    async fn release_refresh(&self, provider: &str, job_id: &str, token: &str) -> Result<(), StoreError> {
        let key = link_cache_key(provider, job_id)?;
        drop(self.lock()?);
        if let Some(item) = locked(&self.links).get_mut(&key)
            && item.lease.as_ref().is_some_and(|(held, _)| held == token)
        {
            item.lease = None;
        }
        Ok(())
    }
}

/// A queue's settings (the SQS queue attributes that matter here).
#[derive(Clone)]
pub struct MemoryQueueSettings {
    /// How long a received message stays hidden.
    pub visibility_timeout: Duration,
    /// Where a message goes once it has been received `max_receives` times, on its next
    /// receive (SQS's redrive policy).
    pub dead_letter: Option<(Arc<MemoryQueue>, u32)>,
    /// The clock that visibility and delays run on.
    pub clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for MemoryQueueSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryQueueSettings")
            .field("visibility_timeout", &self.visibility_timeout)
            .field("max_receives", &self.dead_letter.as_ref().map(|(_, n)| n))
            .finish_non_exhaustive()
    }
}

impl Default for MemoryQueueSettings {
    fn default() -> Self {
        Self { visibility_timeout: Duration::from_secs(30), dead_letter: None, clock: Arc::new(SystemClock) }
    }
}

/// A message held by a [`MemoryQueue`].
#[derive(Debug, Clone)]
struct Held {
    id: String,
    msg: Arc<OutgoingMessage>,
    visible_at_ms: i64,
    receive_count: u32,
    receipt: Option<String>,
}

#[derive(Debug, Default)]
struct QueueState {
    held: Vec<Held>,
    /// Every message ever sent, in order (what tests assert on).
    sent: Vec<Arc<OutgoingMessage>>,
    delays: Vec<(String, Duration)>,
    next_id: u64,
}

/// A queue in memory with SQS's semantics (visibility timeout, receive counts, delays,
/// a dead-letter queue); `fail` makes every call fail (an outage), `refuse` every send
/// be refused as SQS refuses a message it will never take.
#[derive(Debug, Default)]
pub struct MemoryQueue {
    state: Mutex<QueueState>,
    settings: MemoryQueueSettings,
    /// When set, every call fails with [`QueueError::Unavailable`].
    pub fail: AtomicBool,
    /// When set, every message sent is refused with [`QueueError::Rejected`].
    pub refuse: AtomicBool,
    /// Calls made so far (each stands for one SQS round trip; a batch counts once).
    pub calls: AtomicUsize,
}

impl MemoryQueue {
    /// A queue with the given settings.
    pub fn new(settings: MemoryQueueSettings) -> Self {
        Self { settings, ..Self::default() }
    }

    /// Every message sent so far, in order (received, deleted or not).
    pub fn messages(&self) -> Vec<OutgoingMessage> {
        locked(&self.state).sent.iter().map(|m| OutgoingMessage::clone(m)).collect()
    }

    /// Visibility delays requested so far (receipt handle, delay).
    pub fn delays(&self) -> Vec<(String, Duration)> {
        locked(&self.state).delays.clone()
    }

    /// Makes an in-flight message visible again at once, as SQS's at-least-once delivery
    /// occasionally does; `false` if no such message is in flight.
    pub fn redeliver(&self, message_id: &str) -> bool {
        let now = self.settings.clock.now_ms();
        let mut state = locked(&self.state);
        match state.held.iter_mut().find(|h| h.id == message_id && h.visible_at_ms > now) {
            Some(h) => {
                h.visible_at_ms = now;
                true
            }
            None => false,
        }
    }

    /// Ids of the messages the queue holds (visible or not), oldest first.
    pub fn held_ids(&self) -> Vec<String> {
        locked(&self.state).held.iter().map(|h| h.id.clone()).collect()
    }

    /// When the next held message becomes visible (epoch ms), if any is held.
    pub fn next_visible_at_ms(&self) -> Option<i64> {
        locked(&self.state).held.iter().map(|h| h.visible_at_ms).min()
    }

    fn call(&self) -> Result<(), QueueError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.fail.load(Ordering::SeqCst) {
            return Err(QueueError::Unavailable("injected outage".into()));
        }
        Ok(())
    }

    fn push(&self, state: &mut QueueState, msg: OutgoingMessage) -> Result<String, QueueError> {
        if self.refuse.load(Ordering::SeqCst) {
            return Err(QueueError::Rejected("injected refusal".into()));
        }
        if msg.body.len() > crate::ports::MAX_MESSAGE_BYTES {
            return Err(QueueError::Rejected(format!("message of {} bytes is over the limit", msg.body.len())));
        }
        state.next_id = state.next_id.saturating_add(1);
        let id = format!("m-{}", state.next_id);
        let delay = msg.delay.map_or(0, |d| millis(d.min(crate::ports::MAX_DELAY)));
        let visible_at_ms = self.settings.clock.now_ms().saturating_add(delay);
        // Held and logged without a copy.
        let msg = Arc::new(msg);
        state.sent.push(msg.clone());
        state.held.push(Held { id: id.clone(), msg, visible_at_ms, receive_count: 0, receipt: None });
        Ok(id)
    }

    /// Takes a message as moved from another queue (its receive count starts over).
    fn take_dead_letter(&self, h: Held) {
        let mut state = locked(&self.state);
        state.sent.push(h.msg.clone());
        let visible_at_ms = self.settings.clock.now_ms();
        state.held.push(Held { visible_at_ms, receive_count: 0, receipt: None, ..h });
    }
}

#[async_trait]
impl Queue for MemoryQueue {
    async fn send(&self, msg: OutgoingMessage) -> Result<String, QueueError> {
        self.call()?;
        let mut state = locked(&self.state);
        self.push(&mut state, msg)
    }

    async fn send_batch(&self, msgs: Vec<OutgoingMessage>) -> Vec<Result<String, QueueError>> {
        if let Err(e) = self.call() {
            return msgs.iter().map(|_| Err(QueueError::Unavailable(e.to_string()))).collect();
        }
        let mut state = locked(&self.state);
        msgs.into_iter().map(|m| self.push(&mut state, m)).collect()
    }

    async fn delay_retries(&self, retries: Vec<(String, Duration)>) -> Result<(), QueueError> {
        self.call()?;
        let now = self.settings.clock.now_ms();
        let mut state = locked(&self.state);
        for (receipt, delay) in &retries {
            let delay = millis((*delay).min(crate::ports::MAX_VISIBILITY));
            if let Some(h) = state.held.iter_mut().find(|h| h.receipt.as_deref() == Some(receipt.as_str())) {
                h.visible_at_ms = now.saturating_add(delay);
            }
        }
        state.delays.extend(retries);
        Ok(())
    }
}

#[async_trait]
impl QueueConsumer for MemoryQueue {
    async fn receive(&self, max: usize, _wait: Duration) -> Result<Vec<ReceivedMessage>, QueueError> {
        self.call()?;
        let now = self.settings.clock.now_ms();
        let mut moved = Vec::new();
        let mut out = Vec::new();
        {
            let mut guard = locked(&self.state);
            let QueueState { held, next_id, .. } = &mut *guard;
            let mut kept = Vec::with_capacity(held.len());
            for mut h in std::mem::take(held) {
                if out.len() >= max.clamp(1, 10) || h.visible_at_ms > now {
                    kept.push(h);
                    continue;
                }
                if let Some((_, max_receives)) = &self.settings.dead_letter
                    && h.receive_count >= *max_receives
                {
                    moved.push(h);
                    continue;
                }
                *next_id = next_id.saturating_add(1);
                let receipt = format!("r-{next_id}");
                h.receive_count = h.receive_count.saturating_add(1);
                h.receipt = Some(receipt.clone());
                h.visible_at_ms = now.saturating_add(millis(self.settings.visibility_timeout));
                out.push(ReceivedMessage {
                    message_id: h.id.clone(),
                    receipt_handle: receipt,
                    body: h.msg.body.clone(),
                    attributes: h.msg.attributes.clone(),
                    receive_count: h.receive_count,
                });
                kept.push(h);
            }
            *held = kept;
        }
        if let Some((dlq, _)) = &self.settings.dead_letter {
            for h in moved {
                dlq.take_dead_letter(h);
            }
        }
        Ok(out)
    }

    async fn delete(&self, receipt_handles: Vec<String>) -> Result<(), QueueError> {
        self.call()?;
        let mut state = locked(&self.state);
        state.held.retain(|h| !h.receipt.as_ref().is_some_and(|r| receipt_handles.contains(r)));
        Ok(())
    }

    async fn depth(&self) -> Result<u64, QueueError> {
        self.call()?;
        Ok(locked(&self.state).held.len() as u64)
    }
}
