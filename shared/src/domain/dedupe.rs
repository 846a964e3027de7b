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
    /// [`body_digest`] of the first accepted body (empty for a record a worker
    /// recreated).
    pub body_digest: String,
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
    /// [`body_digest`] of the body.
    pub body_digest: String,
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
            body_digest: self.body_digest.clone(),
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
            body_digest: String::new(),
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

/// Builds the key `<provider>#<id>#<kind>` of a record genhook works under (a job's
/// publish key, a refresh request's) and from which event ids derive. `id` and `kind` are
/// written without `#` (`%` as `%25`, `#` as `%23`; ordinary ids are unchanged), so no
/// two different triples give one key, whatever `#` a provider puts in an id.
pub fn dedupe_key(provider: &str, id: &str, kind: &str) -> String {
    let mut key = String::with_capacity(provider.len() + id.len() + kind.len() + 2);
    key.push_str(provider);
    key.push('#');
    push_escaped(&mut key, id);
    key.push('#');
    push_escaped(&mut key, kind);
    key
}

/// The namespace of delivery keys (see [`delivery_key`]).
pub const DELIVERY_KIND_PREFIX: &str = "on:";

/// The key a provider's delivery is claimed under: `<provider>#<id>#on:<word>`, `word`
/// being the provider's own (an event type, a status). Only deliveries have kinds in the
/// `on:` namespace, and genhook's own kinds (`job`, `task`, `prediction`,
/// `refresh:<id>`) never start with it: whatever event type or status a provider sends,
/// its delivery never claims a key another path works under.
pub fn delivery_key(provider: &str, id: &str, word: &str) -> String {
    let mut kind = String::with_capacity(DELIVERY_KIND_PREFIX.len() + word.len());
    kind.push_str(DELIVERY_KIND_PREFIX);
    kind.push_str(word);
    dedupe_key(provider, id, &kind)
}

/// The key a job's `generation.abandoned` event is published under
/// (`<provider>#<id>#abandoned`): apart from the job's own, so a final webhook that comes
/// after genhook gave up is still published. Deliveries' keys are `on:`-prefixed and
/// never meet it.
pub fn abandon_key(provider: &str, id: &str) -> String {
    dedupe_key(provider, id, "abandoned")
}

/// `part` with `%` and `#` percent-escaped.
fn push_escaped(key: &mut String, part: &str) {
    for c in part.chars() {
        match c {
            '%' => key.push_str("%25"),
            '#' => key.push_str("%23"),
            c => key.push(c),
        }
    }
}

/// Hex SHA-256 of a body.
pub fn body_sha256(body: &[u8]) -> String {
    hex::encode(Sha256::digest(body))
}

/// The prefix of a [`body_digest`] that is a MAC (without it, a digest is a SHA-256).
const MAC_DIGEST_PREFIX: &str = "hmac-sha256:";

/// The digest a dedupe record keeps of its delivery's body, for the
/// same-key-different-body check ([`same_body`]): `mac`, the HMAC-SHA256 of the body a
/// source already computed to verify it (stable across retries of one body, so the body
/// is hashed once per delivery), as `hmac-sha256:<hex>`; without one, the body's hex
/// SHA-256.
pub fn body_digest(mac: Option<&[u8; 32]>, body: &[u8]) -> String {
    match mac {
        Some(mac) => {
            let mut digest = String::with_capacity(MAC_DIGEST_PREFIX.len() + 2 * mac.len());
            digest.push_str(MAC_DIGEST_PREFIX);
            push_hex(&mut digest, mac);
            digest
        }
        None => body_sha256(body),
    }
}

/// Whether two [`body_digest`]s are of the same body: `None` when they cannot be
/// compared (one is empty, or they are of different kinds, e.g. a record written before
/// its source gave a MAC). A MAC is under the receiver's current secret: once that
/// changes, a retry of a body accepted before compares as different (a conflict that is
/// logged and counted, never refused).
pub fn same_body(a: &str, b: &str) -> Option<bool> {
    let kind = |d: &str| d.starts_with(MAC_DIGEST_PREFIX);
    if a.is_empty() || b.is_empty() || kind(a) != kind(b) { None } else { Some(a == b) }
}

/// A FIFO queue's group or deduplication id for `key` (a dedupe key, a `provider#job`
/// group, an event id): the key itself when SQS takes it as one (1 to 128 printable
/// ASCII characters), else its hex SHA-256 (always valid). Either way one key gives one
/// id, so a group stays one group.
pub fn fifo_id(key: &str) -> String {
    if !key.is_empty() && key.len() <= 128 && key.bytes().all(|b| b.is_ascii_graphic()) {
        key.to_string()
    } else {
        body_sha256(key.as_bytes())
    }
}

/// The stable event id of a dedupe key: the same on every retry and redelivery.
pub fn event_id(key: &str) -> String {
    format!("evt_{}", &hex::encode(Sha256::digest(key.as_bytes()))[..32])
}

/// A random 128-bit id in hex (claim ids, lease tokens).
pub fn random_id() -> String {
    let mut id = String::with_capacity(32);
    push_hex(&mut id, &rand::random::<[u8; 16]>());
    id
}

/// Appends `bytes` to `out` as lowercase hex, through a stack buffer rather than
/// `hex::encode`'s character-by-character `String` (this runs for every delivery).
fn push_hex(out: &mut String, bytes: &[u8]) {
    let mut buf = [0u8; 64];
    for chunk in bytes.chunks(buf.len() / 2) {
        // A chunk's hex always fits the buffer, and hex digits are ASCII.
        if let Some(hex) = buf.get_mut(..2 * chunk.len())
            && hex::encode_to_slice(chunk, hex).is_ok()
        {
            out.push_str(std::str::from_utf8(hex).unwrap_or_default());
        }
    }
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
            body_digest: "h".into(),
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
    fn body_digests_compare_only_like_with_like() {
        let mac = body_digest(Some(&[0xab; 32]), b"ignored");
        assert_eq!(mac, format!("hmac-sha256:{}", "ab".repeat(32)));
        let sha = body_digest(None, b"{}");
        assert_eq!(sha, body_sha256(b"{}"));
        assert_eq!(same_body(&mac, &mac), Some(true));
        assert_eq!(same_body(&mac, &body_digest(Some(&[0xac; 32]), b"")), Some(false));
        assert_eq!(same_body(&sha, &body_sha256(b"[]")), Some(false));
        // A record written with the other kind (before an upgrade), or recreated empty.
        assert_eq!((same_body(&mac, &sha), same_body(&sha, &mac)), (None, None));
        assert_eq!((same_body("", &mac), same_body(&sha, "")), (None, None));
    }

    #[test]
    fn hex_is_written_whole_and_lowercase() {
        for bytes in [&[][..], &[0x00, 0xAB], &[0x5A; 33], &[0xFF; 100]] {
            let mut out = String::from("x");
            push_hex(&mut out, bytes);
            assert_eq!(out, format!("x{}", hex::encode(bytes)));
        }
        let id = random_id();
        assert!(id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()), "{id}");
    }

    #[test]
    fn fifo_ids_are_the_key_when_sqs_takes_it() {
        assert_eq!(fifo_id("katalo#job_1#generation.completed"), "katalo#job_1#generation.completed");
        for odd in ["a b", "é", &"k".repeat(129), ""] {
            let id = fifo_id(odd);
            assert!(id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()), "{odd:?} -> {id}");
        }
        assert_eq!(fifo_id(&"k".repeat(128)), "k".repeat(128));
        assert_ne!(fifo_id("a b"), fifo_id("a c"));
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

    /// Parts made of the pieces that could make keys meet.
    const PIECES: &str = "(job|a|#|%|%23|on:|refresh:r1){0,3}";

    proptest::proptest! {
        #![proptest_config(crate::domain::testing::cases(512))]

        /// No two different (id, kind) pairs give one key (the pairs tried split one
        /// `id#kind` text at each of its `#`), and no delivery, whatever words it carries,
        /// gives a key of genhook's own kinds, for the same id or another.
        #[test]
        fn keys_of_different_parts_or_kinds_never_meet(
            a in PIECES, b in PIECES, c in PIECES,
            own in proptest::sample::select(vec!["job", "task", "prediction", "refresh:r1", "refresh:on:x"]),
        ) {
            let joined = format!("{a}#{b}");
            for (i, _) in joined.match_indices('#') {
                let (id, kind) = (&joined[..i], &joined[i + 1..]);
                if (id, kind) != (a.as_str(), b.as_str()) {
                    proptest::prop_assert_ne!(dedupe_key("p", &a, &b), dedupe_key("p", id, kind));
                }
            }
            proptest::prop_assert_ne!(delivery_key("p", &a, &b), dedupe_key("p", &a, own));
            proptest::prop_assert_ne!(delivery_key("p", &a, &b), dedupe_key("p", &c, own));
            proptest::prop_assert_ne!(delivery_key("p", &a, &b), dedupe_key("p", &joined, own));
        }
    }

    #[test]
    fn keys_and_ids_are_stable() {
        assert_eq!(dedupe_key("katalo", "j1", "generation.completed"), "katalo#j1#generation.completed");
        assert_eq!(delivery_key("katalo", "j1", "generation.completed"), "katalo#j1#on:generation.completed");
        assert_eq!(dedupe_key("p", "a#b%", "c"), "p#a%23b%25#c");
        assert_eq!(event_id("a"), event_id("a"));
        assert_ne!(event_id("a"), event_id("b"));
        assert_eq!(event_id("a").len(), 36);
        for s in [RecordStatus::InProgress, RecordStatus::Enqueued, RecordStatus::Published] {
            assert_eq!(RecordStatus::parse(s.as_str()), Some(s));
        }
    }
}
