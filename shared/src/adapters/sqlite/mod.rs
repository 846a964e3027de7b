//! The embedded backend of `genhook dev`: one SQLite file holding the dedupe store and
//! every queue, with the semantics of the DynamoDB and SQS adapters.
//!
//! - The store's transitions are single conditional statements (the same rules as the
//!   DynamoDB condition expressions), so two processes on one file stay correct.
//! - Queues are rows: a receive hides a message for the visibility timeout and counts
//!   the receipt; a message received more than `max_receives` times moves to the queue's
//!   dead-letter queue on its next receive, as SQS's redrive policy does.
//! - Every write is committed and synced before the call returns (WAL,
//!   `synchronous=FULL`), so what the receiver acknowledged survives a kill, a restart,
//!   and an OS crash or power loss. `synchronous=NORMAL` would double the receiver's
//!   throughput (about 1,400-1,850 against 730 new deliveries/s in
//!   `scripts/bench-dev.sh`) but could lose the last acknowledged deliveries on power
//!   loss, which a webhook receiver must not do.
//!
//! Calls run on the async thread under a mutex: each is one short local transaction.

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::domain::budget::{WINDOW_RETENTION_SECS, budget_key};
use crate::domain::clock::{Clock, millis};
use crate::domain::dedupe::random_id;
use crate::domain::dedupe::{Claim, ClaimOutcome, DedupeRecord, LeaseOutcome, RecordStatus, WorkLease};
use crate::domain::link_cache::CachedOutputs;
use crate::domain::watch::Watch;
use crate::ports::budget::ReadBudget;
use crate::ports::link_cache::{LinkCache, encode_cached_outputs, lease_item_expiry, link_cache_key};
use crate::ports::{
    DedupeStore, OutgoingMessage, Queue, QueueConsumer, QueueError, ReceivedMessage, StoreError, WatchStore,
};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS dedupe (
    key TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    claim_id TEXT NOT NULL,
    lease_until_ms INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    body_sha256 TEXT NOT NULL,
    received_at TEXT NOT NULL,
    conflicts INTEGER NOT NULL DEFAULT 0,
    work_lease_until_ms INTEGER,
    work_token TEXT,
    event_id TEXT,
    last_error TEXT,
    published_at TEXT,
    poll_seq INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    queue TEXT NOT NULL,
    body TEXT NOT NULL,
    attributes TEXT NOT NULL,
    group_id TEXT,
    sent_at_ms INTEGER NOT NULL,
    visible_at_ms INTEGER NOT NULL,
    receive_count INTEGER NOT NULL DEFAULT 0,
    receipt TEXT UNIQUE
);
CREATE TABLE IF NOT EXISTS watches (
    reference TEXT PRIMARY KEY,
    task_id TEXT NOT NULL,
    upstream TEXT,
    registered_at TEXT NOT NULL,
    horizon_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_ready ON messages (queue, visible_at_ms, seq);
CREATE TABLE IF NOT EXISTS read_budget (
    provider TEXT NOT NULL,
    window_s INTEGER NOT NULL,
    reads INTEGER NOT NULL,
    PRIMARY KEY (provider, window_s)
);
";

/// The output links' cache (one row per job, keyed like the DynamoDB item), added after
/// the first files were written: [`SqliteDb::open`] creates it in files that lack it.
const LINK_CACHE_SCHEMA: &str = "
CREATE TABLE link_cache (
    pk TEXT PRIMARY KEY,
    outputs TEXT,
    fetched_at INTEGER,
    lease_token TEXT,
    lease_until_ms INTEGER,
    expires_at INTEGER NOT NULL
);
";

use crate::ports::MAX_MESSAGE_BYTES;

/// A failure to open the database file.
#[derive(Debug, thiserror::Error)]
#[error("cannot open the SQLite database {path}: {source}")]
pub struct OpenError {
    /// The file.
    pub path: String,
    /// Why.
    pub source: rusqlite::Error,
}

/// One SQLite database file; hands out the store and queues that live in it.
#[derive(Clone)]
pub struct SqliteDb {
    conn: Arc<Mutex<Connection>>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for SqliteDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteDb").finish_non_exhaustive()
    }
}

impl SqliteDb {
    /// Opens (creating if needed) the database at `path`.
    pub fn open(path: &Path, clock: Arc<dyn Clock>) -> Result<Self, OpenError> {
        let fail = |source| OpenError { path: path.display().to_string(), source };
        let conn = Connection::open(path).map_err(fail)?;
        conn.busy_timeout(Duration::from_secs(5)).map_err(fail)?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(fail)?;
        conn.pragma_update(None, "synchronous", "FULL").map_err(fail)?;
        conn.execute_batch(SCHEMA).map_err(fail)?;
        // Files written before the poll chain existed lack its column.
        let has_poll_seq = conn
            .prepare("SELECT 1 FROM pragma_table_info('dedupe') WHERE name = 'poll_seq'")
            .and_then(|mut s| s.exists([]))
            .map_err(fail)?;
        if !has_poll_seq {
            conn.execute_batch("ALTER TABLE dedupe ADD COLUMN poll_seq INTEGER NOT NULL DEFAULT 0").map_err(fail)?;
        }
        // Files written before the output links' cache existed lack its table.
        let has_link_cache = conn
            .prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'link_cache'")
            .and_then(|mut s| s.exists([]))
            .map_err(fail)?;
        if !has_link_cache {
            conn.execute_batch(LINK_CACHE_SCHEMA).map_err(fail)?;
        }
        Ok(Self { conn: Arc::new(Mutex::new(conn)), clock })
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave a transaction half-done (SQLite
        // rolls it back), so a poisoned lock is still usable.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The dedupe store.
    pub fn store(&self) -> SqliteStore {
        SqliteStore { db: self.clone() }
    }

    /// The queue called `name`, with its settings.
    pub fn queue(&self, name: impl Into<String>, settings: QueueSettings) -> SqliteQueue {
        SqliteQueue { db: self.clone(), name: name.into(), settings }
    }
}

fn store_err(e: rusqlite::Error) -> StoreError {
    StoreError(format!("sqlite: {e}"))
}

fn queue_err(e: rusqlite::Error) -> QueueError {
    QueueError::Unavailable(format!("sqlite: {e}"))
}

/// The dedupe store in a [`SqliteDb`].
#[derive(Debug, Clone)]
pub struct SqliteStore {
    db: SqliteDb,
}

const RECORD_COLUMNS: &str = "key, status, claim_id, lease_until_ms, expires_at, body_sha256, received_at, \
     conflicts, work_lease_until_ms, work_token, event_id, last_error, poll_seq";

fn record(row: &Row<'_>) -> rusqlite::Result<DedupeRecord> {
    let status: String = row.get(1)?;
    Ok(DedupeRecord {
        key: row.get(0)?,
        status: RecordStatus::parse(&status).unwrap_or(RecordStatus::Enqueued),
        claim_id: row.get(2)?,
        lease_until_ms: row.get(3)?,
        expires_at: row.get(4)?,
        body_digest: row.get(5)?,
        received_at: row.get(6)?,
        conflicts: row.get(7)?,
        work_lease_until_ms: row.get(8)?,
        work_token: row.get(9)?,
        event_id: row.get(10)?,
        last_error: row.get(11)?,
        poll_seq: row.get(12)?,
    })
}

impl SqliteStore {
    fn read(conn: &Connection, key: &str) -> rusqlite::Result<Option<DedupeRecord>> {
        conn.query_row(&format!("SELECT {RECORD_COLUMNS} FROM dedupe WHERE key = ?1"), [key], record).optional()
    }
}

#[async_trait]
impl DedupeStore for SqliteStore {
    async fn claim(&self, claim: &Claim, now_ms: i64) -> Result<ClaimOutcome, StoreError> {
        let conn = self.db.lock();
        // Insert, or overwrite a dead record: the rule of DedupeRecord::is_claimable.
        let written = conn
            .execute(
                "INSERT INTO dedupe (key, status, claim_id, lease_until_ms, expires_at, body_sha256, received_at)
                 VALUES (?1, 'IN_PROGRESS', ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (key) DO UPDATE SET
                    status = 'IN_PROGRESS', claim_id = excluded.claim_id, lease_until_ms = excluded.lease_until_ms,
                    expires_at = excluded.expires_at, body_sha256 = excluded.body_sha256,
                    received_at = excluded.received_at, conflicts = 0, work_lease_until_ms = NULL,
                    work_token = NULL, event_id = NULL, last_error = NULL, published_at = NULL, poll_seq = 0
                 WHERE (dedupe.work_lease_until_ms IS NULL OR dedupe.work_lease_until_ms < ?8)
                   AND (dedupe.expires_at < ?7
                        OR (dedupe.status = 'IN_PROGRESS' AND dedupe.lease_until_ms < ?8
                            AND dedupe.work_token IS NULL))",
                params![
                    claim.key,
                    claim.claim_id,
                    claim.lease_until_ms,
                    claim.expires_at,
                    claim.body_digest,
                    claim.received_at,
                    now_ms / 1000,
                    now_ms
                ],
            )
            .map_err(store_err)?;
        if written == 1 {
            return Ok(ClaimOutcome::Claimed);
        }
        match Self::read(&conn, &claim.key).map_err(store_err)? {
            Some(r) => Ok(ClaimOutcome::Existing(Box::new(r))),
            None => Err(StoreError(format!("claim on {} neither written nor found", claim.key))),
        }
    }

    async fn mark_enqueued(&self, key: &str, claim_id: &str) -> Result<bool, StoreError> {
        let n = self
            .db
            .lock()
            .execute(
                "UPDATE dedupe SET status = 'ENQUEUED' WHERE key = ?1 AND claim_id = ?2 AND status = 'IN_PROGRESS'",
                params![key, claim_id],
            )
            .map_err(store_err)?;
        Ok(n == 1)
    }

    async fn release(&self, key: &str, claim_id: &str) -> Result<(), StoreError> {
        self.db
            .lock()
            .execute(
                "DELETE FROM dedupe
                 WHERE key = ?1 AND claim_id = ?2 AND status = 'IN_PROGRESS' AND work_token IS NULL",
                params![key, claim_id],
            )
            .map_err(store_err)?;
        Ok(())
    }

    async fn note_conflict(&self, key: &str) -> Result<(), StoreError> {
        self.db
            .lock()
            .execute("UPDATE dedupe SET conflicts = MIN(conflicts, 9223372036854775806) + 1 WHERE key = ?1", [key])
            .map_err(store_err)?;
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<DedupeRecord>, StoreError> {
        Self::read(&self.db.lock(), key).map_err(store_err)
    }

    async fn acquire_work(&self, lease: &WorkLease, now_ms: i64) -> Result<LeaseOutcome, StoreError> {
        let conn = self.db.lock();
        // Recreate a missing record; otherwise the rule of DedupeRecord::is_workable.
        let written = conn
            .execute(
                "INSERT INTO dedupe (key, status, claim_id, lease_until_ms, expires_at, body_sha256, received_at,
                                     work_lease_until_ms, work_token)
                 VALUES (?1, 'ENQUEUED', '', 0, ?2, '', ?3, ?4, ?5)
                 ON CONFLICT (key) DO UPDATE SET
                    work_lease_until_ms = excluded.work_lease_until_ms, work_token = excluded.work_token,
                    status = 'ENQUEUED', expires_at = excluded.expires_at
                 WHERE dedupe.status <> 'PUBLISHED'
                   AND (dedupe.work_lease_until_ms IS NULL OR dedupe.work_lease_until_ms < ?6)",
                params![lease.key, lease.expires_at, lease.received_at, lease.until_ms, lease.token, now_ms],
            )
            .map_err(store_err)?;
        if written == 1 {
            let poll_seq = conn
                .query_row("SELECT poll_seq FROM dedupe WHERE key = ?1", [&lease.key], |r| r.get(0))
                .map_err(store_err)?;
            return Ok(LeaseOutcome::Acquired { poll_seq });
        }
        Ok(match Self::read(&conn, &lease.key).map_err(store_err)? {
            Some(r) if r.status == RecordStatus::Published => LeaseOutcome::AlreadyPublished,
            Some(r) => LeaseOutcome::Busy { until_ms: r.work_lease_until_ms.unwrap_or(now_ms) },
            None => LeaseOutcome::Busy { until_ms: now_ms },
        })
    }

    async fn release_work(&self, key: &str, token: &str, reason: &str) -> Result<(), StoreError> {
        self.db
            .lock()
            .execute(
                "UPDATE dedupe SET last_error = ?3, work_lease_until_ms = NULL, work_token = NULL
                 WHERE key = ?1 AND work_token = ?2",
                params![key, token, reason],
            )
            .map_err(store_err)?;
        Ok(())
    }

    async fn mark_published(
        &self,
        key: &str,
        token: &str,
        event_id: &str,
        published_at: &str,
    ) -> Result<bool, StoreError> {
        let n = self
            .db
            .lock()
            .execute(
                "UPDATE dedupe SET status = 'PUBLISHED', event_id = ?3, published_at = ?4,
                    work_lease_until_ms = NULL, work_token = NULL, last_error = NULL
                 WHERE key = ?1 AND work_token = ?2",
                params![key, token, event_id, published_at],
            )
            .map_err(store_err)?;
        Ok(n == 1)
    }

    async fn advance_polls(&self, key: &str, token: &str, from: u32) -> Result<bool, StoreError> {
        let n = self
            .db
            .lock()
            .execute(
                "UPDATE dedupe SET poll_seq = poll_seq + 1 WHERE key = ?1 AND work_token = ?2 AND poll_seq = ?3",
                params![key, token, from],
            )
            .map_err(store_err)?;
        Ok(n == 1)
    }
}

#[async_trait]
impl WatchStore for SqliteStore {
    async fn put_watch(&self, watch: &Watch) -> Result<Watch, StoreError> {
        self.db
            .lock()
            .execute(
                "INSERT INTO watches (reference, task_id, upstream, registered_at, horizon_at)
                 VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (reference) DO NOTHING",
                params![
                    watch.reference,
                    watch.task_id,
                    watch.upstream.as_deref(),
                    watch.registered_at,
                    watch.horizon_at
                ],
            )
            .map_err(store_err)?;
        self.get_watch(&watch.reference)
            .await?
            .ok_or_else(|| StoreError(format!("watch {} neither written nor found", watch.reference)))
    }

    async fn get_watch(&self, reference: &str) -> Result<Option<Watch>, StoreError> {
        self.db
            .lock()
            .query_row(
                "SELECT reference, task_id, upstream, registered_at, horizon_at FROM watches WHERE reference = ?1",
                [reference],
                |r| {
                    let upstream: Option<String> = r.get(2)?;
                    Ok(Watch {
                        reference: r.get(0)?,
                        task_id: r.get(1)?,
                        upstream,
                        registered_at: r.get(3)?,
                        horizon_at: r.get(4)?,
                    })
                },
            )
            .optional()
            .map_err(store_err)
    }
}

#[async_trait]
impl ReadBudget for SqliteStore {
    async fn take_read(&self, provider: &str, window_s: i64, limit: u32) -> Result<bool, StoreError> {
        if budget_key(provider, window_s).is_none() {
            return Err(StoreError(format!("invalid provider name {provider:?}")));
        }
        if limit == 0 {
            return Ok(false);
        }
        let db = self.db.lock();
        db.execute("DELETE FROM read_budget WHERE window_s < ?1", [window_s.saturating_sub(WINDOW_RETENTION_SECS)])
            .map_err(store_err)?;
        let n = db
            .execute(
                "INSERT INTO read_budget (provider, window_s, reads) VALUES (?1, ?2, 1)
                 ON CONFLICT (provider, window_s) DO UPDATE SET reads = reads + 1 WHERE reads < ?3",
                params![provider, window_s, limit],
            )
            .map_err(store_err)?;
        Ok(n == 1)
    }
}

#[async_trait]
impl LinkCache for SqliteStore {
    async fn get_outputs(&self, provider: &str, job_id: &str) -> Result<Option<CachedOutputs>, StoreError> {
        let key = link_cache_key(provider, job_id)?;
        let row: Option<(Option<String>, Option<i64>)> = self
            .db
            .lock()
            .query_row("SELECT outputs, fetched_at FROM link_cache WHERE pk = ?1", [&key], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()
            .map_err(store_err)?;
        Ok(match row {
            Some((Some(json), Some(fetched_at))) => CachedOutputs::decode_outputs(&json, fetched_at),
            _ => None,
        })
    }

    async fn put_outputs(
        &self,
        provider: &str,
        job_id: &str,
        outputs: &CachedOutputs,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        let key = link_cache_key(provider, job_id)?;
        let json = encode_cached_outputs(outputs)?;
        self.db
            .lock()
            .execute(
                "INSERT INTO link_cache (pk, outputs, fetched_at, lease_token, lease_until_ms, expires_at)
                 VALUES (?1, ?2, ?3, NULL, NULL, ?4)
                 ON CONFLICT (pk) DO UPDATE SET
                    outputs = excluded.outputs, fetched_at = excluded.fetched_at, lease_token = NULL,
                    lease_until_ms = NULL, expires_at = excluded.expires_at",
                params![key, json, outputs.fetched_at, expires_at],
            )
            .map_err(store_err)?;
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
        // Create the row, or take a lease nobody holds at now_ms; cached outputs stay.
        let n = self
            .db
            .lock()
            .execute(
                "INSERT INTO link_cache (pk, lease_token, lease_until_ms, expires_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (pk) DO UPDATE SET
                    lease_token = excluded.lease_token, lease_until_ms = excluded.lease_until_ms
                 WHERE link_cache.lease_until_ms IS NULL OR link_cache.lease_until_ms < ?5",
                params![key, token, until_ms, lease_item_expiry(until_ms), now_ms],
            )
            .map_err(store_err)?;
        Ok(n == 1)
    }

    async fn release_refresh(&self, provider: &str, job_id: &str, token: &str) -> Result<(), StoreError> {
        let key = link_cache_key(provider, job_id)?;
        self.db
            .lock()
            .execute(
                "UPDATE link_cache SET lease_token = NULL, lease_until_ms = NULL WHERE pk = ?1 AND lease_token = ?2",
                params![key, token],
            )
            .map_err(store_err)?;
        Ok(())
    }
}

/// A queue's settings (the SQS queue attributes that matter here).
#[derive(Debug, Clone)]
pub struct QueueSettings {
    /// How long a received message stays hidden.
    pub visibility_timeout: Duration,
    /// Where a message goes once it has been received more than `max_receives` times.
    pub dead_letter: Option<(String, u32)>,
}

impl Default for QueueSettings {
    fn default() -> Self {
        Self { visibility_timeout: Duration::from_secs(30), dead_letter: None }
    }
}

/// A queue in a [`SqliteDb`].
#[derive(Debug, Clone)]
pub struct SqliteQueue {
    db: SqliteDb,
    name: String,
    settings: QueueSettings,
}

/// A message as stored, for listing without receiving (`genhook tail`).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredMessage {
    /// Position in the database (increasing).
    pub seq: i64,
    /// The message id.
    pub message_id: String,
    /// The body.
    pub body: String,
    /// Times received.
    pub receive_count: u32,
}

impl SqliteQueue {
    /// The queue's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn insert(&self, conn: &Connection, msg: &OutgoingMessage, now_ms: i64) -> Result<String, QueueError> {
        if msg.body.len() > MAX_MESSAGE_BYTES {
            return Err(QueueError::Rejected(format!("message of {} bytes is over the 1 MiB limit", msg.body.len())));
        }
        let id = random_id();
        let attributes = serde_json::to_string(&msg.attributes)
            .map_err(|e| QueueError::Rejected(format!("attributes do not serialize: {e}")))?;
        conn.execute(
            "INSERT INTO messages (id, queue, body, attributes, group_id, sent_at_ms, visible_at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                id,
                self.name,
                msg.body,
                attributes,
                msg.group_id,
                now_ms,
                now_ms.saturating_add(msg.delay.map_or(0, |d| millis(d.min(crate::ports::MAX_DELAY))))
            ],
        )
        .map_err(queue_err)?;
        Ok(id)
    }

    /// Messages after position `after_seq`, oldest first, without receiving them.
    pub fn list_after(&self, after_seq: i64, limit: usize) -> Result<Vec<StoredMessage>, QueueError> {
        let conn = self.db.lock();
        let mut stmt = conn
            .prepare(
                "SELECT seq, id, body, receive_count FROM messages WHERE queue = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
            )
            .map_err(queue_err)?;
        let rows = stmt
            .query_map(params![self.name, after_seq, limit as i64], |r| {
                Ok(StoredMessage { seq: r.get(0)?, message_id: r.get(1)?, body: r.get(2)?, receive_count: r.get(3)? })
            })
            .map_err(queue_err)?;
        rows.collect::<Result<_, _>>().map_err(queue_err)
    }

    /// One receive attempt: moves over-received messages to the DLQ, then takes visible ones.
    fn try_receive(&self, max: usize) -> Result<Vec<ReceivedMessage>, QueueError> {
        let now_ms = self.db.clock.now_ms();
        let mut conn = self.db.lock();
        let tx = conn.transaction().map_err(queue_err)?;
        let mut out = Vec::new();
        {
            let mut pick = tx
                .prepare(
                    "SELECT seq, id, body, attributes, receive_count FROM messages
                     WHERE queue = ?1 AND visible_at_ms <= ?2 ORDER BY seq LIMIT ?3",
                )
                .map_err(queue_err)?;
            let rows: Vec<(i64, String, String, String, u32)> = pick
                .query_map(params![self.name, now_ms, max.clamp(1, 10) as i64], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                })
                .map_err(queue_err)?
                .collect::<Result<_, _>>()
                .map_err(queue_err)?;
            for (seq, id, body, attributes, count) in rows {
                if let Some((dlq, max_receives)) = &self.settings.dead_letter
                    && count >= *max_receives
                {
                    tx.execute(
                        "UPDATE messages SET queue = ?2, receive_count = 0, receipt = NULL, visible_at_ms = ?3
                         WHERE seq = ?1",
                        params![seq, dlq, now_ms],
                    )
                    .map_err(queue_err)?;
                    tracing::warn!(queue = %self.name, message_id = %id, dlq = %dlq, "moved to the dead-letter queue");
                    continue;
                }
                let receipt = random_id();
                tx.execute(
                    "UPDATE messages SET receive_count = receive_count + 1, receipt = ?2, visible_at_ms = ?3
                     WHERE seq = ?1",
                    params![seq, receipt, now_ms.saturating_add(millis(self.settings.visibility_timeout))],
                )
                .map_err(queue_err)?;
                out.push(ReceivedMessage {
                    message_id: id,
                    receipt_handle: receipt,
                    body,
                    attributes: serde_json::from_str(&attributes).unwrap_or_default(),
                    receive_count: count + 1,
                });
            }
        }
        tx.commit().map_err(queue_err)?;
        Ok(out)
    }
}

#[async_trait]
impl Queue for SqliteQueue {
    async fn send(&self, msg: OutgoingMessage) -> Result<String, QueueError> {
        let now_ms = self.db.clock.now_ms();
        self.insert(&self.db.lock(), &msg, now_ms)
    }

    async fn send_batch(&self, msgs: Vec<OutgoingMessage>) -> Vec<Result<String, QueueError>> {
        let now_ms = self.db.clock.now_ms();
        let mut conn = self.db.lock();
        let all_failed = |e: rusqlite::Error| {
            let why = queue_err(e).to_string();
            msgs.iter().map(|_| Err(QueueError::Unavailable(why.clone()))).collect()
        };
        let tx = match conn.transaction() {
            Ok(tx) => tx,
            Err(e) => return all_failed(e),
        };
        let results: Vec<_> = msgs.iter().map(|m| self.insert(&tx, m, now_ms)).collect();
        match tx.commit() {
            Ok(()) => results,
            Err(e) => all_failed(e),
        }
    }

    async fn delay_retries(&self, retries: Vec<(String, Duration)>) -> Result<(), QueueError> {
        let now_ms = self.db.clock.now_ms();
        let mut conn = self.db.lock();
        let tx = conn.transaction().map_err(queue_err)?;
        for (receipt, delay) in retries {
            tx.execute(
                "UPDATE messages SET visible_at_ms = ?2 WHERE receipt = ?1",
                params![receipt, now_ms.saturating_add(millis(delay.min(crate::ports::MAX_VISIBILITY)))],
            )
            .map_err(queue_err)?;
        }
        tx.commit().map_err(queue_err)
    }
}

#[async_trait]
impl QueueConsumer for SqliteQueue {
    async fn receive(&self, max: usize, wait: Duration) -> Result<Vec<ReceivedMessage>, QueueError> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let got = self.try_receive(max)?;
            if !got.is_empty() || tokio::time::Instant::now() >= deadline {
                return Ok(got);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn delete(&self, receipt_handles: Vec<String>) -> Result<(), QueueError> {
        let mut conn = self.db.lock();
        let tx = conn.transaction().map_err(queue_err)?;
        for receipt in receipt_handles {
            tx.execute("DELETE FROM messages WHERE receipt = ?1", [receipt]).map_err(queue_err)?;
        }
        tx.commit().map_err(queue_err)
    }

    async fn depth(&self) -> Result<u64, QueueError> {
        let n: i64 = self
            .db
            .lock()
            .query_row("SELECT COUNT(*) FROM messages WHERE queue = ?1", [&self.name], |r| r.get(0))
            .map_err(queue_err)?;
        Ok(n as u64)
    }
}

#[cfg(test)]
mod tests;
