use std::sync::Arc;
use std::time::Duration;

use time::macros::datetime;

use super::*;
use crate::domain::clock::ManualClock;

const T0_MS: i64 = 1_795_435_200_000; // 2026-11-23T12:00:00Z

fn open(dir: &tempfile::TempDir) -> (SqliteDb, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(datetime!(2026-11-23 12:00:00 UTC)));
    (SqliteDb::open(&dir.path().join("dev.sqlite"), clock.clone()).unwrap(), clock)
}

fn claim(key: &str, id: &str, lease_until_ms: i64) -> Claim {
    Claim {
        key: key.into(),
        claim_id: id.into(),
        lease_until_ms,
        expires_at: T0_MS / 1000 + 3600,
        body_digest: "h".into(),
        received_at: "2026-11-23T12:00:00Z".into(),
    }
}

fn lease(key: &str, token: &str, until_ms: i64) -> WorkLease {
    WorkLease {
        key: key.into(),
        token: token.into(),
        until_ms,
        expires_at: T0_MS / 1000 + 3600,
        received_at: "2026-11-23T12:00:00Z".into(),
    }
}

fn msg(body: &str) -> OutgoingMessage {
    OutgoingMessage { body: body.into(), attributes: vec![("a".into(), "1".into())], ..Default::default() }
}

#[tokio::test]
async fn claims_follow_the_dynamodb_rules() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).0.store();
    assert_eq!(store.claim(&claim("k", "c1", T0_MS + 10_000), T0_MS).await.unwrap(), ClaimOutcome::Claimed);
    // A live claim blocks; a dead one (lease passed) is taken over.
    let ClaimOutcome::Existing(r) = store.claim(&claim("k", "c2", T0_MS + 10_000), T0_MS + 5_000).await.unwrap() else {
        panic!("live claim must block")
    };
    assert_eq!((r.claim_id.as_str(), r.status), ("c1", RecordStatus::InProgress));
    assert_eq!(store.claim(&claim("k", "c2", T0_MS + 40_000), T0_MS + 20_000).await.unwrap(), ClaimOutcome::Claimed);
    // Only the holder advances or releases it; ENQUEUED blocks until expiry.
    assert!(!store.mark_enqueued("k", "c1").await.unwrap());
    assert!(store.mark_enqueued("k", "c2").await.unwrap());
    store.release("k", "c2").await.unwrap();
    assert_eq!(
        store.get("k").await.unwrap().unwrap().status,
        RecordStatus::Enqueued,
        "release only undoes IN_PROGRESS"
    );
    assert!(matches!(store.claim(&claim("k", "c3", 0), T0_MS + 60_000).await.unwrap(), ClaimOutcome::Existing(_)));
    let after_expiry = T0_MS + 3_601_000;
    assert_eq!(store.claim(&claim("k", "c3", after_expiry + 1), after_expiry).await.unwrap(), ClaimOutcome::Claimed);
    // Releasing an IN_PROGRESS claim frees the key.
    store.release("k", "c3").await.unwrap();
    assert_eq!(store.get("k").await.unwrap(), None);
    store.claim(&claim("k", "c4", T0_MS + 1), T0_MS).await.unwrap();
    store.note_conflict("k").await.unwrap();
    assert_eq!(store.get("k").await.unwrap().unwrap().conflicts, 1);
}

#[tokio::test]
async fn work_leases_and_publishing() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).0.store();
    // A missing record is recreated as ENQUEUED under the lease.
    assert_eq!(
        store.acquire_work(&lease("k", "w1", T0_MS + 1_000), T0_MS).await.unwrap(),
        LeaseOutcome::Acquired { poll_seq: 0 }
    );
    assert_eq!(
        store.acquire_work(&lease("k", "w2", T0_MS + 2_000), T0_MS + 500).await.unwrap(),
        LeaseOutcome::Busy { until_ms: T0_MS + 1_000 }
    );
    store.release_work("k", "w2", "not mine").await.unwrap();
    assert_eq!(store.get("k").await.unwrap().unwrap().work_token.as_deref(), Some("w1"));
    store.release_work("k", "w1", "job still running").await.unwrap();
    let r = store.get("k").await.unwrap().unwrap();
    assert_eq!((r.work_token, r.last_error.as_deref()), (None, Some("job still running")));
    assert_eq!(
        store.acquire_work(&lease("k", "w2", T0_MS + 2_000), T0_MS + 500).await.unwrap(),
        LeaseOutcome::Acquired { poll_seq: 0 }
    );
    assert!(
        !store.mark_published("k", "w1", "evt_1", "2026-11-23T12:00:01Z").await.unwrap(),
        "not w1's lease any more"
    );
    assert!(store.mark_published("k", "w2", "evt_1", "2026-11-23T12:00:01Z").await.unwrap());
    assert_eq!(
        store.acquire_work(&lease("k", "w3", T0_MS + 9_000), T0_MS).await.unwrap(),
        LeaseOutcome::AlreadyPublished
    );
    let r = store.get("k").await.unwrap().unwrap();
    assert_eq!((r.status, r.event_id.as_deref(), r.last_error), (RecordStatus::Published, Some("evt_1"), None));
}

#[tokio::test]
async fn received_messages_hide_until_deleted_or_timed_out() {
    let dir = tempfile::tempdir().unwrap();
    let (db, clock) = open(&dir);
    let q = db.queue("inbox", QueueSettings { visibility_timeout: Duration::from_secs(30), dead_letter: None });
    let ids: Vec<_> = q.send_batch(vec![msg("a"), msg("b")]).await.into_iter().map(Result::unwrap).collect();
    assert_eq!(ids.len(), 2);
    let got = q.receive(10, Duration::ZERO).await.unwrap();
    assert_eq!(got.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(), ["a", "b"]);
    assert_eq!(got[0].attributes, vec![("a".to_string(), "1".to_string())]);
    assert_eq!(got[0].receive_count, 1);
    assert!(q.receive(10, Duration::ZERO).await.unwrap().is_empty(), "in flight");
    q.delete(vec![got[0].receipt_handle.clone()]).await.unwrap();
    q.delay_retries(vec![(got[1].receipt_handle.clone(), Duration::from_secs(60))]).await.unwrap();
    clock.advance(time::Duration::seconds(31));
    assert!(q.receive(10, Duration::ZERO).await.unwrap().is_empty(), "the retry delay replaced the timeout");
    clock.advance(time::Duration::seconds(30));
    let again = q.receive(10, Duration::ZERO).await.unwrap();
    assert_eq!((again.len(), again[0].body.as_str(), again[0].receive_count), (1, "b", 2));
    // A stale receipt no longer deletes it.
    q.delete(vec![got[1].receipt_handle.clone()]).await.unwrap();
    assert_eq!(q.depth().await.unwrap(), 1);
}

#[tokio::test]
async fn over_received_messages_move_to_the_dead_letter_queue() {
    let dir = tempfile::tempdir().unwrap();
    let (db, clock) = open(&dir);
    let settings = QueueSettings { visibility_timeout: Duration::from_secs(1), dead_letter: Some(("dlq".into(), 2)) };
    let q = db.queue("inbox", settings);
    let dlq = db.queue("dlq", QueueSettings::default());
    q.send(msg("poison")).await.unwrap();
    for _ in 0..2 {
        assert_eq!(q.receive(1, Duration::ZERO).await.unwrap().len(), 1);
        clock.advance(time::Duration::seconds(2));
    }
    assert!(q.receive(1, Duration::ZERO).await.unwrap().is_empty());
    assert_eq!((q.depth().await.unwrap(), dlq.depth().await.unwrap()), (0, 1));
    let dead = dlq.receive(1, Duration::ZERO).await.unwrap();
    assert_eq!((dead[0].body.as_str(), dead[0].receive_count), ("poison", 1));
}

#[tokio::test]
async fn state_survives_reopening_the_file() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (db, _) = open(&dir);
        db.store().claim(&claim("k", "c1", T0_MS + 1), T0_MS).await.unwrap();
        db.queue("inbox", QueueSettings::default()).send(msg("kept")).await.unwrap();
    }
    let (db, _) = open(&dir);
    assert_eq!(db.store().get("k").await.unwrap().unwrap().claim_id, "c1");
    let q = db.queue("inbox", QueueSettings::default());
    assert_eq!(q.list_after(0, 10).unwrap()[0].body, "kept");
    assert_eq!(q.receive(10, Duration::ZERO).await.unwrap()[0].body, "kept");
}

#[tokio::test]
async fn oversized_messages_are_rejected_alone() {
    let dir = tempfile::tempdir().unwrap();
    let q = open(&dir).0.queue("outbox", QueueSettings::default());
    let big = "x".repeat(MAX_MESSAGE_BYTES + 1);
    let results = q.send_batch(vec![msg("ok"), msg(&big)]).await;
    assert!(results[0].is_ok());
    assert!(matches!(results[1], Err(QueueError::Rejected(_))));
    assert_eq!(q.depth().await.unwrap(), 1);
}

#[tokio::test]
async fn files_from_before_the_link_cache_gain_its_table() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dev.sqlite");
    {
        // A file as the first versions wrote it: no poll chain, no link cache.
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(SCHEMA).unwrap();
        conn.execute_batch("ALTER TABLE dedupe DROP COLUMN poll_seq").unwrap();
        conn.execute(
            "INSERT INTO dedupe (key, status, claim_id, lease_until_ms, expires_at, body_sha256, received_at)
             VALUES ('k', 'ENQUEUED', 'c1', 0, 1, 'h', 'then')",
            [],
        )
        .unwrap();
    }
    let (db, _) = open(&dir);
    let store = db.store();
    assert_eq!(store.get("k").await.unwrap().unwrap().claim_id, "c1");
    assert!(store.lease_refresh("p", "j", "t", T0_MS + 1000, T0_MS).await.unwrap());
    let outputs = CachedOutputs { outputs: vec![], fetched_at: 5 };
    store.put_outputs("p", "j", &outputs, 10).await.unwrap();
    assert_eq!(store.get_outputs("p", "j").await.unwrap(), Some(outputs));
    let expires_at: i64 = db.lock().query_row("SELECT expires_at FROM link_cache", [], |r| r.get(0)).unwrap();
    assert_eq!(expires_at, 10);
    drop(store);
    drop(db);
    // Opening it again changes nothing.
    let (db, _) = open(&dir);
    assert_eq!(db.store().get_outputs("p", "j").await.unwrap().map(|o| o.fetched_at), Some(5));
}

#[tokio::test]
async fn a_lease_alone_expires_with_the_lease() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _) = open(&dir);
    assert!(db.store().lease_refresh("p", "j", "t", T0_MS + 1_500, T0_MS).await.unwrap());
    let row: (i64, String) = db
        .lock()
        .query_row("SELECT expires_at, lease_token FROM link_cache", [], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap();
    assert_eq!(row, (T0_MS / 1000 + 2, "t".to_string()));
}
