//! The [`DedupeStore`] and [`WatchStore`] contract (see the doc comments of
//! `genhook::ports` and `genhook::domain::dedupe`).

use genhook::domain::dedupe::{Claim, ClaimOutcome, DedupeRecord, LeaseOutcome, RecordStatus, WorkLease};
use genhook::domain::watch::Watch;
use genhook::ports::DedupeStore;

use super::Store;

/// A fixed instant (2030-01-01T00:00:00Z): later than now, so TTL sweeps never interfere.
pub const T0: i64 = 1_893_456_000_000;
/// When claims expire (epoch s): an hour after [`T0`].
const CLAIM_EXPIRES_AT: i64 = T0 / 1000 + 3600;
/// When worker leases push records out to (epoch s): a day after [`T0`].
const LEASE_EXPIRES_AT: i64 = T0 / 1000 + 86_400;

const SEC: i64 = 1000;

fn claim(key: &str, claim_id: &str, lease_until_ms: i64) -> Claim {
    claim_with_body(key, claim_id, lease_until_ms, "hash-1")
}

fn claim_with_body(key: &str, claim_id: &str, lease_until_ms: i64, body: &str) -> Claim {
    Claim {
        key: key.into(),
        claim_id: claim_id.into(),
        lease_until_ms,
        expires_at: CLAIM_EXPIRES_AT,
        body_digest: body.into(),
        received_at: "2030-01-01T00:00:00Z".into(),
    }
}

fn lease(key: &str, token: &str, until_ms: i64) -> WorkLease {
    WorkLease {
        key: key.into(),
        token: token.into(),
        until_ms,
        expires_at: LEASE_EXPIRES_AT,
        received_at: "2030-01-01T00:00:05Z".into(),
    }
}

async fn get(s: &dyn Store, key: &str) -> Option<DedupeRecord> {
    DedupeStore::get(s, key).await.expect("get")
}

async fn must_get(s: &dyn Store, key: &str) -> DedupeRecord {
    get(s, key).await.unwrap_or_else(|| panic!("record {key} is missing"))
}

async fn claim_at(s: &dyn Store, c: &Claim, now_ms: i64) -> ClaimOutcome {
    s.claim(c, now_ms).await.expect("claim")
}

async fn existing(s: &dyn Store, c: &Claim, now_ms: i64) -> DedupeRecord {
    match claim_at(s, c, now_ms).await {
        ClaimOutcome::Existing(r) => *r,
        ClaimOutcome::Claimed => panic!("claim {} on {} at {now_ms} must be refused", c.claim_id, c.key),
    }
}

async fn acquire(s: &dyn Store, l: &WorkLease, now_ms: i64) -> LeaseOutcome {
    s.acquire_work(l, now_ms).await.expect("acquire_work")
}

/// A free key is claimed, and the record is exactly the claim's.
pub async fn claim_takes_a_free_key(s: &dyn Store) {
    let c = claim("k", "c1", T0 + 10 * SEC);
    assert_eq!(claim_at(s, &c, T0).await, ClaimOutcome::Claimed);
    assert_eq!(get(s, "k").await, Some(c.to_record()));
    assert_eq!(get(s, "other").await, None);
}

/// A live IN_PROGRESS claim blocks other claims until its lease ends (inclusive).
pub async fn live_in_progress_claim_blocks(s: &dyn Store) {
    let c1 = claim("k", "c1", T0 + 10 * SEC);
    assert_eq!(claim_at(s, &c1, T0).await, ClaimOutcome::Claimed);
    let c2 = claim("k", "c2", T0 + 40 * SEC);
    assert_eq!(existing(s, &c2, T0 + 5 * SEC).await, c1.to_record(), "Existing returns the live record");
    assert_eq!(existing(s, &c2, T0 + 10 * SEC).await.claim_id, "c1", "the lease's last millisecond still counts");
    assert_eq!(must_get(s, "k").await, c1.to_record(), "a refused claim writes nothing");
}

/// An IN_PROGRESS claim whose lease ended (the receiver died) is taken over.
pub async fn expired_claim_lease_is_reclaimable(s: &dyn Store) {
    assert_eq!(claim_at(s, &claim("k", "c1", T0 + 10 * SEC), T0).await, ClaimOutcome::Claimed);
    let c2 = claim_with_body("k", "c2", T0 + 40 * SEC, "hash-2");
    assert_eq!(claim_at(s, &c2, T0 + 10 * SEC + 1).await, ClaimOutcome::Claimed);
    assert_eq!(must_get(s, "k").await, c2.to_record());
}

/// ENQUEUED and PUBLISHED records are duplicates until `expires_at`, whatever their
/// leases; past it they count as absent and a claim starts afresh.
pub async fn enqueued_and_published_block_until_expiry(s: &dyn Store) {
    // ENQUEUED.
    assert_eq!(claim_at(s, &claim("e", "c1", T0 + 10 * SEC), T0).await, ClaimOutcome::Claimed);
    assert!(s.mark_enqueued("e", "c1").await.unwrap());
    let c2 = claim("e", "c2", T0 + 10 * SEC);
    let r = existing(s, &c2, T0 + 20 * SEC).await;
    assert_eq!((r.status, r.claim_id.as_str()), (RecordStatus::Enqueued, "c1"));
    assert_eq!(existing(s, &c2, CLAIM_EXPIRES_AT * 1000 + 999).await.status, RecordStatus::Enqueued);
    let late = claim("e", "c3", (CLAIM_EXPIRES_AT + 10) * 1000);
    assert_eq!(claim_at(s, &late, (CLAIM_EXPIRES_AT + 1) * 1000).await, ClaimOutcome::Claimed);
    assert_eq!(must_get(s, "e").await, late.to_record());

    // PUBLISHED (its expiry is the worker lease's).
    assert_eq!(claim_at(s, &claim("p", "c1", T0 + 10 * SEC), T0).await, ClaimOutcome::Claimed);
    assert!(s.mark_enqueued("p", "c1").await.unwrap());
    assert_eq!(acquire(s, &lease("p", "w1", T0 + 30 * SEC), T0 + SEC).await, LeaseOutcome::Acquired { poll_seq: 0 });
    assert!(s.advance_polls("p", "w1", 0).await.unwrap());
    assert!(s.mark_published("p", "w1", "evt_p", "2030-01-01T00:00:02Z").await.unwrap());
    s.note_conflict("p").await.unwrap();
    let r = existing(s, &claim("p", "c2", T0 + 10 * SEC), LEASE_EXPIRES_AT * 1000).await;
    assert_eq!((r.status, r.event_id.as_deref()), (RecordStatus::Published, Some("evt_p")));
    let late = claim("p", "c3", (LEASE_EXPIRES_AT + 10) * 1000);
    assert_eq!(claim_at(s, &late, (LEASE_EXPIRES_AT + 1) * 1000).await, ClaimOutcome::Claimed);
    assert_eq!(must_get(s, "p").await, late.to_record(), "a fresh claim keeps nothing of the dead record");
}

/// The record keeps the first body's hash; conflicting deliveries are counted on it.
pub async fn body_hash_and_conflicts(s: &dyn Store) {
    assert_eq!(claim_at(s, &claim_with_body("k", "c1", T0 + 10 * SEC, "hash-1"), T0).await, ClaimOutcome::Claimed);
    let r = existing(s, &claim_with_body("k", "c2", T0 + 10 * SEC, "hash-2"), T0 + SEC).await;
    assert_eq!(r.body_digest, "hash-1");
    s.note_conflict("k").await.unwrap();
    s.note_conflict("k").await.unwrap();
    let r = must_get(s, "k").await;
    assert_eq!((r.conflicts, r.body_digest.as_str(), r.claim_id.as_str()), (2, "hash-1", "c1"));
    s.note_conflict("missing").await.unwrap();
    assert_eq!(get(s, "missing").await, None, "a conflict never creates a record");
}

/// `Existing` carries the record as stored, worker fields included.
pub async fn existing_returns_the_live_record(s: &dyn Store) {
    assert_eq!(claim_at(s, &claim("k", "c1", T0 + 10 * SEC), T0).await, ClaimOutcome::Claimed);
    assert!(s.mark_enqueued("k", "c1").await.unwrap());
    s.note_conflict("k").await.unwrap();
    assert_eq!(acquire(s, &lease("k", "w1", T0 + 30 * SEC), T0 + SEC).await, LeaseOutcome::Acquired { poll_seq: 0 });
    assert!(s.advance_polls("k", "w1", 0).await.unwrap());
    let stored = must_get(s, "k").await;
    assert_eq!(existing(s, &claim("k", "c2", T0 + 60 * SEC), T0 + 2 * SEC).await, stored);
    assert_eq!(stored.work_token.as_deref(), Some("w1"));
    assert_eq!(stored.work_lease_until_ms, Some(T0 + 30 * SEC));
    assert_eq!((stored.conflicts, stored.poll_seq), (1, 1));
}

/// Only the claim's own IN_PROGRESS record moves to ENQUEUED.
pub async fn mark_enqueued_only_own_in_progress_claim(s: &dyn Store) {
    assert!(!s.mark_enqueued("k", "c1").await.unwrap(), "no record");
    assert_eq!(get(s, "k").await, None, "and none is created");
    assert_eq!(claim_at(s, &claim("k", "c1", T0 + 10 * SEC), T0).await, ClaimOutcome::Claimed);
    assert!(!s.mark_enqueued("k", "c2").await.unwrap(), "another claim's record");
    assert_eq!(must_get(s, "k").await.status, RecordStatus::InProgress);
    assert!(s.mark_enqueued("k", "c1").await.unwrap());
    assert_eq!(must_get(s, "k").await.status, RecordStatus::Enqueued);
    assert!(!s.mark_enqueued("k", "c1").await.unwrap(), "no longer IN_PROGRESS");

    // A claim taken over: the old holder cannot mark it.
    assert_eq!(claim_at(s, &claim("t", "c1", T0 + 10 * SEC), T0).await, ClaimOutcome::Claimed);
    assert_eq!(claim_at(s, &claim("t", "c2", T0 + 40 * SEC), T0 + 11 * SEC).await, ClaimOutcome::Claimed);
    assert!(!s.mark_enqueued("t", "c1").await.unwrap());
    assert_eq!(must_get(s, "t").await.status, RecordStatus::InProgress);

    // A worker got there first (IN_PROGRESS became ENQUEUED): the mark finds nothing to do.
    assert_eq!(claim_at(s, &claim("w", "c1", T0 + 10 * SEC), T0).await, ClaimOutcome::Claimed);
    assert_eq!(acquire(s, &lease("w", "w1", T0 + 30 * SEC), T0 + SEC).await, LeaseOutcome::Acquired { poll_seq: 0 });
    assert!(!s.mark_enqueued("w", "c1").await.unwrap());
    assert_eq!(must_get(s, "w").await.work_token.as_deref(), Some("w1"));
}

/// `release` deletes only the claim's own IN_PROGRESS record.
pub async fn release_deletes_only_own_in_progress_claim(s: &dyn Store) {
    s.release("missing", "c1").await.unwrap();
    assert_eq!(claim_at(s, &claim("k", "c1", T0 + 10 * SEC), T0).await, ClaimOutcome::Claimed);
    s.release("k", "c2").await.unwrap();
    assert_eq!(must_get(s, "k").await.claim_id, "c1", "another claim's record stays");
    s.release("k", "c1").await.unwrap();
    assert_eq!(get(s, "k").await, None, "the own IN_PROGRESS claim is deleted");

    assert_eq!(claim_at(s, &claim("e", "c1", T0 + 10 * SEC), T0).await, ClaimOutcome::Claimed);
    assert!(s.mark_enqueued("e", "c1").await.unwrap());
    s.release("e", "c1").await.unwrap();
    assert_eq!(must_get(s, "e").await.status, RecordStatus::Enqueued, "release only undoes IN_PROGRESS");
}

/// Once a worker leased a record, no release deletes it (even after the lease ended).
pub async fn release_never_deletes_a_leased_record(s: &dyn Store) {
    assert_eq!(claim_at(s, &claim("k", "c1", T0 + 10 * SEC), T0).await, ClaimOutcome::Claimed);
    assert_eq!(acquire(s, &lease("k", "w1", T0 + 30 * SEC), T0 + SEC).await, LeaseOutcome::Acquired { poll_seq: 0 });
    s.release("k", "c1").await.unwrap();
    let r = must_get(s, "k").await;
    assert_eq!((r.status, r.work_token.as_deref()), (RecordStatus::Enqueued, Some("w1")));
    s.release_work("k", "w1", "provider unavailable").await.unwrap();
    s.release("k", "c1").await.unwrap();
    assert_eq!(must_get(s, "k").await.status, RecordStatus::Enqueued, "the lease ended, the record stays");
}

/// A lease on a missing record (expired, or its message outran the claim) recreates it
/// as ENQUEUED with the lease's expiry.
pub async fn acquire_work_recreates_a_missing_record(s: &dyn Store) {
    let l = lease("k", "w1", T0 + 30 * SEC);
    assert_eq!(acquire(s, &l, T0).await, LeaseOutcome::Acquired { poll_seq: 0 });
    let r = must_get(s, "k").await;
    assert_eq!(r.status, RecordStatus::Enqueued);
    assert_eq!(r.expires_at, LEASE_EXPIRES_AT);
    assert_eq!(r.received_at, l.received_at);
    assert_eq!((r.work_token.as_deref(), r.work_lease_until_ms), (Some("w1"), Some(T0 + 30 * SEC)));
    assert_eq!((r.event_id, r.last_error, r.poll_seq, r.conflicts), (None, None, 0, 0));
    // It blocks receivers like any ENQUEUED record.
    assert_eq!(existing(s, &claim("k", "c1", T0 + 40 * SEC), T0 + 31 * SEC).await.status, RecordStatus::Enqueued);
}

/// A live lease makes others Busy until its end (inclusive); after it, the lease can be
/// taken over, and the old holder can no longer write.
pub async fn acquire_work_busy_then_taken_over(s: &dyn Store) {
    assert_eq!(acquire(s, &lease("k", "w1", T0 + 30 * SEC), T0).await, LeaseOutcome::Acquired { poll_seq: 0 });
    let w2 = lease("k", "w2", T0 + 90 * SEC);
    assert_eq!(acquire(s, &w2, T0 + 10 * SEC).await, LeaseOutcome::Busy { until_ms: T0 + 30 * SEC });
    assert_eq!(acquire(s, &w2, T0 + 30 * SEC).await, LeaseOutcome::Busy { until_ms: T0 + 30 * SEC });
    assert_eq!(must_get(s, "k").await.work_token.as_deref(), Some("w1"), "Busy writes nothing");
    assert_eq!(acquire(s, &w2, T0 + 30 * SEC + 1).await, LeaseOutcome::Acquired { poll_seq: 0 });
    let r = must_get(s, "k").await;
    assert_eq!((r.work_token.as_deref(), r.work_lease_until_ms), (Some("w2"), Some(T0 + 90 * SEC)));

    // The first worker's late writes are refused.
    s.release_work("k", "w1", "late").await.unwrap();
    assert!(!s.advance_polls("k", "w1", 0).await.unwrap());
    assert!(!s.mark_published("k", "w1", "evt_k", "2030-01-01T00:01:00Z").await.unwrap());
    let r = must_get(s, "k").await;
    assert_eq!((r.status, r.work_token.as_deref()), (RecordStatus::Enqueued, Some("w2")));
    assert_eq!((r.last_error, r.poll_seq, r.event_id), (None, 0, None));
}

/// A published record is never leased again.
pub async fn acquire_work_on_a_published_record(s: &dyn Store) {
    assert_eq!(acquire(s, &lease("k", "w1", T0 + 30 * SEC), T0).await, LeaseOutcome::Acquired { poll_seq: 0 });
    assert!(s.mark_published("k", "w1", "evt_k", "2030-01-01T00:00:01Z").await.unwrap());
    let before = must_get(s, "k").await;
    assert_eq!(acquire(s, &lease("k", "w2", T0 + 90 * SEC), T0 + SEC).await, LeaseOutcome::AlreadyPublished);
    assert_eq!(must_get(s, "k").await, before, "AlreadyPublished writes nothing");
}

/// A lease turns the receiver's IN_PROGRESS record into ENQUEUED, keeps what the
/// receiver wrote, pushes `expires_at` out to the lease's, and reports the poll chain.
pub async fn acquire_work_enqueues_and_pushes_expiry(s: &dyn Store) {
    let c1 = claim("k", "c1", T0 + 10 * SEC);
    assert_eq!(claim_at(s, &c1, T0).await, ClaimOutcome::Claimed);
    assert_eq!(acquire(s, &lease("k", "w1", T0 + 30 * SEC), T0 + SEC).await, LeaseOutcome::Acquired { poll_seq: 0 });
    let r = must_get(s, "k").await;
    assert_eq!(r.status, RecordStatus::Enqueued);
    assert_eq!(r.expires_at, LEASE_EXPIRES_AT);
    assert_eq!(
        (r.claim_id.as_str(), r.body_digest.as_str(), r.received_at.as_str()),
        (c1.claim_id.as_str(), c1.body_digest.as_str(), c1.received_at.as_str()),
        "the receiver's fields stay"
    );
    // The live work lease blocks claims though the claim lease is dead.
    assert_eq!(existing(s, &claim("k", "c2", T0 + 60 * SEC), T0 + 20 * SEC).await.work_token.as_deref(), Some("w1"));

    // The poll chain position comes back with the next lease.
    assert!(s.advance_polls("k", "w1", 0).await.unwrap());
    s.release_work("k", "w1", "not ready").await.unwrap();
    assert_eq!(
        acquire(s, &lease("k", "w2", T0 + 90 * SEC), T0 + 40 * SEC).await,
        LeaseOutcome::Acquired { poll_seq: 1 }
    );
    s.release_work("k", "w2", "not ready").await.unwrap();

    // Past the claim's own expiry the record still blocks: the lease pushed it out.
    let r = existing(s, &claim("k", "c3", (CLAIM_EXPIRES_AT + 60) * 1000), (CLAIM_EXPIRES_AT + 1) * 1000).await;
    assert_eq!((r.status, r.claim_id.as_str()), (RecordStatus::Enqueued, "c1"));
}

/// A claim never overwrites a record whose work lease is live, even past `expires_at`.
pub async fn claim_never_overwrites_a_live_work_lease(s: &dyn Store) {
    let mut l = lease("k", "w1", T0 + 30 * SEC);
    l.expires_at = T0 / 1000 - 10;
    assert_eq!(acquire(s, &l, T0).await, LeaseOutcome::Acquired { poll_seq: 0 });
    let c = claim("k", "c1", T0 + 60 * SEC);
    assert_eq!(existing(s, &c, T0 + SEC).await.work_token.as_deref(), Some("w1"));
    assert_eq!(existing(s, &c, T0 + 30 * SEC).await.work_token.as_deref(), Some("w1"));
    assert_eq!(claim_at(s, &c, T0 + 30 * SEC + 1).await, ClaimOutcome::Claimed, "dead lease, expired record");
    assert_eq!(must_get(s, "k").await, c.to_record());
}

/// `release_work` gives the lease back and records why, for the holder only.
pub async fn release_work_only_by_holder(s: &dyn Store) {
    s.release_work("missing", "w1", "x").await.unwrap();
    assert_eq!(get(s, "missing").await, None, "release_work never creates a record");
    assert_eq!(acquire(s, &lease("k", "w1", T0 + 30 * SEC), T0).await, LeaseOutcome::Acquired { poll_seq: 0 });
    s.release_work("k", "w2", "not mine").await.unwrap();
    let r = must_get(s, "k").await;
    assert_eq!((r.work_token.as_deref(), r.last_error), (Some("w1"), None));
    s.release_work("k", "w1", "provider answered 503").await.unwrap();
    let r = must_get(s, "k").await;
    assert_eq!((r.work_token, r.work_lease_until_ms), (None, None));
    assert_eq!(r.last_error.as_deref(), Some("provider answered 503"));
    assert_eq!(r.status, RecordStatus::Enqueued);
    // The lease is free at once.
    assert_eq!(acquire(s, &lease("k", "w2", T0 + 40 * SEC), T0 + SEC).await, LeaseOutcome::Acquired { poll_seq: 0 });
}

/// Only the lease holder publishes, only on an existing record; a refused mark writes
/// nothing (a missing record stays missing).
pub async fn mark_published_only_by_holder(s: &dyn Store) {
    assert!(!s.mark_published("missing", "w1", "evt_m", "2030-01-01T00:00:01Z").await.unwrap());
    assert_eq!(get(s, "missing").await, None, "mark_published never creates a record");

    assert_eq!(acquire(s, &lease("k", "w1", T0 + 30 * SEC), T0).await, LeaseOutcome::Acquired { poll_seq: 0 });
    s.release_work("k", "w1", "first attempt failed").await.unwrap();
    assert!(!s.mark_published("k", "w1", "evt_k", "2030-01-01T00:00:01Z").await.unwrap(), "lease given back");
    assert_eq!(acquire(s, &lease("k", "w2", T0 + 40 * SEC), T0 + SEC).await, LeaseOutcome::Acquired { poll_seq: 0 });
    assert!(!s.mark_published("k", "w3", "evt_k", "2030-01-01T00:00:02Z").await.unwrap());
    let before = must_get(s, "k").await;
    assert_eq!(before.status, RecordStatus::Enqueued);
    assert!(s.mark_published("k", "w2", "evt_k", "2030-01-01T00:00:02Z").await.unwrap());
    let r = must_get(s, "k").await;
    assert_eq!(r.status, RecordStatus::Published);
    assert_eq!(r.event_id.as_deref(), Some("evt_k"));
    assert_eq!((r.work_token, r.work_lease_until_ms, r.last_error), (None, None, None));
    assert_eq!(r.expires_at, before.expires_at);
    assert!(!s.mark_published("k", "w2", "evt_other", "2030-01-01T00:00:03Z").await.unwrap(), "the lease ended");
    assert_eq!(must_get(s, "k").await.event_id.as_deref(), Some("evt_k"));
}

/// The poll chain moves one step at a time, from where it stands, for the holder.
pub async fn advance_polls_only_for_holder_from_current(s: &dyn Store) {
    assert!(!s.advance_polls("missing", "w1", 0).await.unwrap());
    assert_eq!(get(s, "missing").await, None, "advance_polls never creates a record");
    assert_eq!(acquire(s, &lease("k", "w1", T0 + 30 * SEC), T0).await, LeaseOutcome::Acquired { poll_seq: 0 });
    assert!(!s.advance_polls("k", "w2", 0).await.unwrap(), "not the holder");
    assert!(!s.advance_polls("k", "w1", 1).await.unwrap(), "the chain is at 0");
    assert!(s.advance_polls("k", "w1", 0).await.unwrap());
    assert!(!s.advance_polls("k", "w1", 0).await.unwrap(), "already moved");
    assert!(s.advance_polls("k", "w1", 1).await.unwrap());
    assert_eq!(must_get(s, "k").await.poll_seq, 2);
    s.release_work("k", "w1", "scheduled").await.unwrap();
    assert!(!s.advance_polls("k", "w1", 2).await.unwrap(), "the lease was given back");
    assert_eq!(must_get(s, "k").await.poll_seq, 2);
}

/// Defect 1: the receiver's inbox send looked failed but the message got through and a
/// worker leased the record; the receiver's release must not delete it, and the
/// provider's retry is a duplicate.
pub async fn released_claim_survives_a_worker_lease(s: &dyn Store) {
    let c1 = claim("k", "c1", T0 + 10 * SEC);
    assert_eq!(claim_at(s, &c1, T0).await, ClaimOutcome::Claimed);
    assert_eq!(acquire(s, &lease("k", "w1", T0 + 30 * SEC), T0 + SEC).await, LeaseOutcome::Acquired { poll_seq: 0 });
    s.release("k", "c1").await.unwrap();
    assert_eq!(must_get(s, "k").await.status, RecordStatus::Enqueued, "the record survives the release");
    // The retry comes after both leases ended.
    let retry = claim("k", "c2", T0 + 130 * SEC);
    let r = existing(s, &retry, T0 + 120 * SEC).await;
    assert_eq!((r.status, r.claim_id.as_str()), (RecordStatus::Enqueued, "c1"));
    // Also once the worker published.
    assert_eq!(
        acquire(s, &lease("k", "w2", T0 + 150 * SEC), T0 + 121 * SEC).await,
        LeaseOutcome::Acquired { poll_seq: 0 }
    );
    assert!(s.mark_published("k", "w2", "evt_k", "2030-01-01T00:02:02Z").await.unwrap());
    s.release("k", "c1").await.unwrap();
    let r = existing(s, &claim("k", "c3", T0 + 200 * SEC), T0 + 180 * SEC).await;
    assert_eq!((r.status, r.event_id.as_deref()), (RecordStatus::Published, Some("evt_k")));
}

fn watch(reference: &str, task_id: &str, upstream: Option<&str>) -> Watch {
    Watch {
        reference: reference.into(),
        task_id: task_id.into(),
        upstream: upstream.map(str::to_string),
        registered_at: "2030-01-01T00:00:00Z".into(),
        horizon_at: T0 / 1000 + 86_400,
    }
}

/// A watch is registered once; a second registration returns the one in force.
pub async fn watches_are_never_replaced(s: &dyn Store) {
    assert_eq!(s.get_watch("ref-1").await.unwrap(), None);
    let first = watch("ref-1", "task_a", Some("kling"));
    assert_eq!(s.put_watch(&first).await.unwrap(), first);
    assert_eq!(s.get_watch("ref-1").await.unwrap(), Some(first.clone()));
    let mut second = watch("ref-1", "task_b", None);
    second.horizon_at += 1;
    assert_eq!(s.put_watch(&second).await.unwrap(), first, "the watch in force comes back");
    assert_eq!(s.get_watch("ref-1").await.unwrap(), Some(first));
    let polling_only = watch("ref-2", "task_c", None);
    assert_eq!(s.put_watch(&polling_only).await.unwrap(), polling_only);
    assert_eq!(s.get_watch("ref-2").await.unwrap(), Some(polling_only));
    assert_eq!(s.get_watch("ref-3").await.unwrap(), None);
}
