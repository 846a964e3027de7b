//! The dedupe record and its state machine (after Powertools idempotency):
//!
//! ```text
//!   (none) --receiver claim--> IN_PROGRESS --inbox send ok--> ENQUEUED --worker publish--> PUBLISHED
//!                                   | inbox send failed: record deleted (the provider's retry starts over)
//!                                   | lease expired (receiver crashed): claimable again
//!                                   | a worker leased it: ENQUEUED (its message is in the inbox)
//! ```
//! Every write is conditioned on the token that owns the record: the receiver's
//! `claim_id` while it is IN_PROGRESS and no worker has seen it, the worker's
//! `work_token` afterwards. A worker's lease proves the message reached the inbox, so
//! from then on no receiver write (release, re-claim) may touch the record.
//!
//! Expiry is always checked by the conditions themselves; DynamoDB TTL only tidies up.
//! Every worker lease pushes `expires_at` out to a full TTL again, so a record outlives
//! every message that can still refer to it (see [`MIN_DEDUPE_TTL`]).

use std::time::Duration;

use sha2::{Digest, Sha256};

/// The shortest dedupe TTL genhook accepts: longer than SQS's longest message retention
/// (14 days) plus a day, so a message redriven from a DLQ late in its life still finds
/// its record (and does not publish again).
pub const MIN_DEDUPE_TTL: Duration = Duration::from_secs(15 * 24 * 60 * 60);

/// Where a dedupe record is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordStatus {
    /// A receiver holds the claim and is putting the event into the inbox.
    InProgress,
    /// The event is safely in the inbox.
    Enqueued,
    /// The worker published the normalized event to the outbox.
    Published,
}

impl RecordStatus {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InProgress => "IN_PROGRESS",
            Self::Enqueued => "ENQUEUED",
            Self::Published => "PUBLISHED",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "IN_PROGRESS" => Some(Self::InProgress),
            "ENQUEUED" => Some(Self::Enqueued),
            "PUBLISHED" => Some(Self::Published),
            _ => None,
        }
    }
}

/// A dedupe record as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DedupeRecord {
    /// The dedupe key, e.g. `katalo#job_1#generation.completed`.
    pub key: String,
    /// Current state.
    pub status: RecordStatus,
    /// Random id of the receiver claim that wrote the record.
    pub claim_id: String,
    /// While `InProgress`: the claim is dead after this instant (epoch ms).
    pub lease_until_ms: i64,
    /// The record counts as absent after this instant (epoch s); also the TTL attribute.
    pub expires_at: i64,
    /// Hex SHA-256 of the first accepted body.
    pub body_sha256: String,
    /// When the first delivery was accepted (RFC 3339).
    pub received_at: String,
    /// Deliveries seen with the same key but a different body.
    pub conflicts: i64,
    /// Worker lease: another worker may not take the record before this instant (epoch ms).
    pub work_lease_until_ms: Option<i64>,
    /// Random id of the worker holding the lease.
    pub work_token: Option<String>,
    /// The published event's id, once published.
    pub event_id: Option<String>,
    /// Why the last worker attempt did not publish.
    pub last_error: Option<String>,
    /// Position of the record's poll chain: the `polls` of the one scheduled message
    /// that may schedule the next poll (0 before any).
    pub poll_seq: u32,
}

impl DedupeRecord {
    /// Whether a new receiver claim may overwrite this record at `now` (the same rule the
    /// DynamoDB condition expression encodes).
    /// A record a worker has leased is never claimable while the lease lives, and an
    /// IN_PROGRESS record a worker has seen is not dead (its message is in the inbox).
    pub fn is_claimable(&self, now_ms: i64) -> bool {
        let work_lease_live = self.work_lease_until_ms.is_some_and(|until| until >= now_ms);
        !work_lease_live
            && (self.expires_at < now_ms / 1000
                || (self.status == RecordStatus::InProgress
                    && self.lease_until_ms < now_ms
                    && self.work_token.is_none()))
    }

    /// Whether the receiver holding `claim_id` may still delete the record (its inbox
    /// send failed): only its own IN_PROGRESS claim that no worker has touched.
    pub fn is_releasable_by(&self, claim_id: &str) -> bool {
        self.claim_id == claim_id && self.status == RecordStatus::InProgress && self.work_token.is_none()
    }

    /// Whether a worker may take the record at `now`.
    pub fn is_workable(&self, now_ms: i64) -> bool {
        self.status != RecordStatus::Published && self.work_lease_until_ms.is_none_or(|until| until < now_ms)
    }
}

/// A receiver's claim on a dedupe key: the record it writes when the key is free.
#[derive(Debug, Clone)]
pub struct Claim {
    /// The dedupe key.
    pub key: String,
    /// Random id, so only this claim's holder can release or advance it.
    pub claim_id: String,
    /// End of the claim's lease (epoch ms), derived from the invocation deadline.
    pub lease_until_ms: i64,
    /// When the record expires (epoch s).
    pub expires_at: i64,
    /// Hex SHA-256 of the body.
    pub body_sha256: String,
    /// When the delivery was received (RFC 3339).
    pub received_at: String,
}

impl Claim {
    /// The record this claim writes.
    pub fn to_record(&self) -> DedupeRecord {
        DedupeRecord {
            key: self.key.clone(),
            status: RecordStatus::InProgress,
            claim_id: self.claim_id.clone(),
            lease_until_ms: self.lease_until_ms,
            expires_at: self.expires_at,
            body_sha256: self.body_sha256.clone(),
            received_at: self.received_at.clone(),
            conflicts: 0,
            work_lease_until_ms: None,
            work_token: None,
            event_id: None,
            last_error: None,
            poll_seq: 0,
        }
    }
}

/// What a claim attempt found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimOutcome {
    /// The key was free (or its old record dead): the claim is ours.
    Claimed,
    /// A live record holds the key.
    Existing(Box<DedupeRecord>),
}

/// A worker's request to take a record for processing.
#[derive(Debug, Clone)]
pub struct WorkLease {
    /// The dedupe key.
    pub key: String,
    /// Random id of this attempt.
    pub token: String,
    /// The lease ends at this instant (epoch ms).
    pub until_ms: i64,
    /// Expiry (epoch s) the lease pushes the record's out to (now + TTL): the record
    /// outlives the message being worked and any later redrive of it.
    pub expires_at: i64,
    /// When the record was first received, if it has to be recreated (RFC 3339).
    pub received_at: String,
}

impl WorkLease {
    /// The record a lease creates when its key has none (TTL passed, or the message
    /// outran its receiver's claim): ENQUEUED, with no claim and no body hash.
    pub fn to_record(&self) -> DedupeRecord {
        DedupeRecord {
            key: self.key.clone(),
            status: RecordStatus::Enqueued,
            claim_id: String::new(),
            lease_until_ms: 0,
            expires_at: self.expires_at,
            body_sha256: String::new(),
            received_at: self.received_at.clone(),
            conflicts: 0,
            work_lease_until_ms: None,
            work_token: None,
            event_id: None,
            last_error: None,
            poll_seq: 0,
        }
    }
}

/// What a worker's lease attempt found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseOutcome {
    /// The record is ours to process until the lease ends; `poll_seq` is its poll
    /// chain position (see [`DedupeRecord::poll_seq`]).
    Acquired {
        /// The record's poll chain position.
        poll_seq: u32,
    },
    /// The event was already published; nothing to do.
    AlreadyPublished,
    /// Another worker holds the lease until this instant (epoch ms).
    Busy {
        /// End of the other worker's lease.
        until_ms: i64,
    },
}

/// Builds the dedupe key `<provider>#<id>#<kind>`.
pub fn dedupe_key(provider: &str, id: &str, kind: &str) -> String {
    format!("{provider}#{id}#{kind}")
}

/// Hex SHA-256 of a body.
pub fn body_sha256(body: &[u8]) -> String {
    hex::encode(Sha256::digest(body))
}

/// The stable event id of a dedupe key: the same on every retry and redelivery.
pub fn event_id(key: &str) -> String {
    format!("evt_{}", &hex::encode(Sha256::digest(key.as_bytes()))[..32])
}

/// A random 128-bit id in hex (claim ids, lease tokens).
pub fn random_id() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(status: RecordStatus) -> DedupeRecord {
        Claim {
            key: "k".into(),
            claim_id: "c".into(),
            lease_until_ms: 10_000,
            expires_at: 1_000,
            body_sha256: "h".into(),
            received_at: "t".into(),
        }
        .to_record()
        .with_status(status)
    }

    impl DedupeRecord {
        fn with_status(mut self, status: RecordStatus) -> Self {
            self.status = status;
            self
        }
    }

    #[test]
    fn live_in_progress_claim_blocks_until_its_lease_ends() {
        let r = record(RecordStatus::InProgress);
        assert!(!r.is_claimable(9_999));
        assert!(!r.is_claimable(10_000));
        assert!(r.is_claimable(10_001));
    }

    #[test]
    fn enqueued_and_published_block_until_expiry() {
        for s in [RecordStatus::Enqueued, RecordStatus::Published] {
            let r = record(s);
            assert!(!r.is_claimable(20_000), "{s:?} with a dead lease is still a duplicate");
            assert!(!r.is_claimable(1_000_999));
            assert!(r.is_claimable(1_001_000), "{s:?} past expires_at counts as absent");
        }
    }

    #[test]
    fn worker_lease_rules() {
        let mut r = record(RecordStatus::Enqueued);
        assert!(r.is_workable(0));
        r.work_lease_until_ms = Some(500);
        assert!(!r.is_workable(500));
        assert!(r.is_workable(501));
        assert!(!record(RecordStatus::Published).is_workable(0));
        assert!(record(RecordStatus::InProgress).is_workable(0), "a message can outrun the receiver's ENQUEUED mark");
    }

    #[test]
    fn keys_and_ids_are_stable() {
        assert_eq!(dedupe_key("katalo", "j1", "generation.completed"), "katalo#j1#generation.completed");
        assert_eq!(event_id("a"), event_id("a"));
        assert_ne!(event_id("a"), event_id("b"));
        assert_eq!(event_id("a").len(), 36);
        for s in [RecordStatus::InProgress, RecordStatus::Enqueued, RecordStatus::Published] {
            assert_eq!(RecordStatus::parse(s.as_str()), Some(s));
        }
    }
}
