//! The [`Queue`] and [`QueueConsumer`] contract: SQS's semantics as the port promises
//! them (receive counts, visibility, delays, redrive to a dead-letter queue), without
//! what SQS leaves unspecified (ordering, id formats).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use genhook::ports::{MAX_MESSAGE_BYTES, OutgoingMessage, QueueError, ReceivedMessage};

use super::{FullQueue, QueueFixture, VISIBILITY};

const NO_WAIT: Duration = Duration::ZERO;
/// Comfortably less than the visibility timeout.
const A_MOMENT: Duration = Duration::from_millis(400);
/// Comfortably more than the visibility timeout.
const PAST_VISIBILITY: Duration = Duration::from_millis(1500);

fn msg(body: &str) -> OutgoingMessage {
    OutgoingMessage { body: body.into(), ..Default::default() }
}

async fn receive(q: &dyn FullQueue) -> Vec<ReceivedMessage> {
    q.receive(10, NO_WAIT).await.expect("receive")
}

async fn receive_one(q: &dyn FullQueue) -> ReceivedMessage {
    let mut got = receive(q).await;
    assert_eq!(got.len(), 1, "exactly one visible message: {got:?}");
    got.remove(0)
}

async fn receive_all(q: &dyn FullQueue) -> Vec<ReceivedMessage> {
    let mut all = Vec::new();
    loop {
        let got = receive(q).await;
        if got.is_empty() {
            return all;
        }
        all.extend(got);
    }
}

async fn depth(q: &dyn FullQueue) -> u64 {
    q.depth().await.expect("depth")
}

fn sorted(mut attrs: Vec<(String, String)>) -> Vec<(String, String)> {
    attrs.sort();
    attrs
}

/// A sent message is received once (hidden meanwhile) and gone once deleted.
pub async fn send_receive_delete(f: &QueueFixture) {
    let q = &*f.queue;
    assert_eq!(depth(q).await, 0);
    assert!(receive(q).await.is_empty());
    let id = q.send(msg(r#"{"n":1}"#)).await.expect("send");
    assert!(!id.is_empty());
    let got = receive_one(q).await;
    assert_eq!((got.message_id.as_str(), got.body.as_str(), got.receive_count), (id.as_str(), r#"{"n":1}"#, 1));
    assert!(!got.receipt_handle.is_empty());
    assert!(receive(q).await.is_empty(), "hidden while received");
    q.delete(vec![got.receipt_handle]).await.expect("delete");
    assert_eq!(depth(q).await, 0);
    f.time.pass(PAST_VISIBILITY).await;
    assert!(receive(q).await.is_empty(), "a deleted message never comes back");
}

/// String attributes come back as sent, from single and batch sends.
pub async fn attributes_round_trip(f: &QueueFixture) {
    let q = &*f.queue;
    let attrs = vec![
        ("dedupe_key".to_string(), "katalo#job_1#generation.completed".to_string()),
        ("type".to_string(), "katalo.webhook".to_string()),
        ("failure_reason".to_string(), "provider said: \"no\" (HTTP 404)".to_string()),
    ];
    let one = q.send(OutgoingMessage { body: "one".into(), attributes: attrs.clone(), ..Default::default() });
    let one = one.await.expect("send");
    let batch = q
        .send_batch(vec![
            OutgoingMessage { body: "two".into(), attributes: attrs[..1].to_vec(), ..Default::default() },
            msg("three"),
        ])
        .await;
    let ids: Vec<String> = batch.into_iter().map(|r| r.expect("batch send")).collect();
    let got: HashMap<String, ReceivedMessage> =
        receive_all(q).await.into_iter().map(|m| (m.message_id.clone(), m)).collect();
    assert_eq!(got.len(), 3);
    assert_eq!((got[&one].body.as_str(), sorted(got[&one].attributes.clone())), ("one", sorted(attrs.clone())));
    assert_eq!((got[&ids[0]].body.as_str(), got[&ids[0]].attributes.clone()), ("two", attrs[..1].to_vec()));
    assert_eq!((got[&ids[1]].body.as_str(), got[&ids[1]].attributes.clone()), ("three", vec![]));
}

/// A delivery's trace (the X-Ray header, which SQS carries as its `AWSTraceHeader` system
/// attribute, and the request id) comes back as sent. Single sends only: moto drops the
/// system attributes of `SendMessageBatch` entries (real SQS keeps them), and the
/// receiver sends each delivery alone.
pub async fn trace_attributes_round_trip(f: &QueueFixture) {
    let q = &*f.queue;
    let trace =
        genhook::domain::trace::Trace::new(Some("req-42"), Some("Root=1-6b04f040-161b13bf8aacb4e0ccf300fa;Sampled=1"));
    let one = q.send(OutgoingMessage { body: "one".into(), attributes: trace.attributes(), ..Default::default() });
    one.await.expect("send");
    let got = receive_one(q).await;
    assert_eq!(genhook::domain::trace::Trace::from_attributes(&got.attributes), trace);
}

/// Every receive counts, this one included.
pub async fn receive_count_increments_per_receive(f: &QueueFixture) {
    let q = &*f.queue;
    let id = q.send(msg("m")).await.expect("send");
    // Up to the redrive threshold (MAX_RECEIVES = 2).
    for n in 1..=2 {
        let got = receive_one(q).await;
        assert_eq!((got.message_id.as_str(), got.receive_count), (id.as_str(), n));
        // Visible again at once (what a zero retry delay does).
        q.delay_retries(vec![(got.receipt_handle, Duration::ZERO)]).await.expect("delay_retries");
    }
}

/// A received message that is not deleted comes back after the visibility timeout.
pub async fn visibility_timeout_hides_then_redelivers(f: &QueueFixture) {
    let q = &*f.queue;
    let id = q.send(msg("m")).await.expect("send");
    let first = receive_one(q).await;
    f.time.pass(A_MOMENT).await;
    assert!(receive(q).await.is_empty(), "hidden for the visibility timeout");
    f.time.pass(PAST_VISIBILITY - A_MOMENT).await;
    let again = receive_one(q).await;
    assert_eq!((again.message_id.as_str(), again.receive_count), (id.as_str(), 2));
    assert_ne!(again.receipt_handle, first.receipt_handle, "each receive has its own receipt");
    q.delete(vec![again.receipt_handle]).await.expect("delete");
    assert_eq!(depth(q).await, 0);
}

/// `delay_retries` hides a received message for the given time (here longer than the
/// visibility timeout).
pub async fn delay_retries_hides_for_the_given_time(f: &QueueFixture) {
    let q = &*f.queue;
    q.send(msg("m")).await.expect("send");
    let got = receive_one(q).await;
    q.delay_retries(vec![(got.receipt_handle, VISIBILITY * 3)]).await.expect("delay_retries");
    f.time.pass(PAST_VISIBILITY).await;
    assert!(receive(q).await.is_empty(), "still hidden past the visibility timeout");
    f.time.pass(VISIBILITY * 3 - PAST_VISIBILITY + A_MOMENT).await;
    assert_eq!(receive_one(q).await.receive_count, 2);
}

/// A delayed message is held (and counted) but invisible until due.
pub async fn delayed_sends_are_invisible_until_due(f: &QueueFixture) {
    let q = &*f.queue;
    let delay = Some(Duration::from_secs(2));
    let later = q.send(OutgoingMessage { body: "later".into(), delay, ..Default::default() }).await.expect("send");
    let batch =
        q.send_batch(vec![msg("now"), OutgoingMessage { body: "later too".into(), delay, ..Default::default() }]).await;
    assert!(batch.iter().all(Result::is_ok), "{batch:?}");
    assert_eq!(depth(q).await, 3, "delayed messages count");
    let now = receive_all(q).await;
    assert_eq!(now.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(), ["now"]);
    q.delete(now.into_iter().map(|m| m.receipt_handle).collect()).await.expect("delete");
    f.time.pass(Duration::from_millis(1200)).await;
    assert!(receive(q).await.is_empty(), "not due yet");
    f.time.pass(Duration::from_millis(1200)).await;
    let due = receive_all(q).await;
    let bodies: HashSet<&str> = due.iter().map(|m| m.body.as_str()).collect();
    assert_eq!(bodies, HashSet::from(["later", "later too"]));
    assert!(due.iter().any(|m| m.message_id == later));
}

/// A batch of more than 10 goes out whole; results come back one per message, in order.
pub async fn batch_sends_report_in_order(f: &QueueFixture) {
    let q = &*f.queue;
    let msgs: Vec<OutgoingMessage> = (0..23)
        .map(|i| OutgoingMessage {
            body: format!("m-{i:02}"),
            attributes: vec![("n".into(), i.to_string())],
            ..Default::default()
        })
        .collect();
    let ids: Vec<String> = q.send_batch(msgs).await.into_iter().map(|r| r.expect("batch entry")).collect();
    assert_eq!(ids.len(), 23);
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 23, "distinct ids");
    assert_eq!(depth(q).await, 23);
    let got: HashMap<String, ReceivedMessage> =
        receive_all(q).await.into_iter().map(|m| (m.message_id.clone(), m)).collect();
    assert_eq!(got.len(), 23);
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(got[id].body, format!("m-{i:02}"), "result {i} is message {i}'s id");
        assert_eq!(got[id].attributes, vec![("n".to_string(), i.to_string())]);
    }
    assert!(q.send_batch(vec![]).await.is_empty());
}

/// A message received `MAX_RECEIVES` times moves to the dead-letter queue on its next
/// receive, body and attributes intact.
pub async fn dead_letter_after_max_receives(f: &QueueFixture) {
    let (q, dlq) = (&*f.queue, &*f.dlq);
    let attrs = vec![("type".to_string(), "katalo.webhook".to_string())];
    q.send(OutgoingMessage { body: "poison".into(), attributes: attrs.clone(), ..Default::default() })
        .await
        .expect("send");
    assert_eq!(receive_one(q).await.receive_count, 1);
    f.time.pass(PAST_VISIBILITY).await;
    assert_eq!(receive_one(q).await.receive_count, 2);
    f.time.pass(PAST_VISIBILITY).await;
    assert!(receive(q).await.is_empty(), "moved instead of received a third time");
    assert_eq!(depth(q).await, 0);
    assert_eq!(depth(dlq).await, 1);
    let dead = receive_one(dlq).await;
    assert_eq!((dead.body.as_str(), dead.attributes), ("poison", attrs));
    dlq.delete(vec![dead.receipt_handle]).await.expect("delete");
    assert_eq!(depth(dlq).await, 0);
}

/// Depth counts visible, in-flight and delayed messages; receive takes at most `max`.
pub async fn depth_counts_everything_held(f: &QueueFixture) {
    let q = &*f.queue;
    for i in 0..3 {
        q.send(msg(&format!("m{i}"))).await.expect("send");
    }
    assert_eq!(depth(q).await, 3);
    let got = q.receive(2, NO_WAIT).await.expect("receive");
    assert!((1..=2).contains(&got.len()), "at most max: {}", got.len());
    assert_eq!(depth(q).await, 3, "in-flight messages count");
    q.delete(vec![got[0].receipt_handle.clone()]).await.expect("delete");
    assert_eq!(depth(q).await, 2);
}

/// A message over the size limit is `Rejected` (that message, not the queue, is at
/// fault), alone: the rest of its batch goes out.
pub async fn oversized_messages_are_rejected(f: &QueueFixture) {
    let q = &*f.queue;
    let huge = "x".repeat(MAX_MESSAGE_BYTES + 1);
    match q.send(msg(&huge)).await {
        Err(QueueError::Rejected(_)) => {}
        other => panic!("an oversized send must be Rejected, got {other:?}"),
    }
    let results = q.send_batch(vec![msg("a"), msg(&huge), msg("b")]).await;
    assert_eq!(results.len(), 3);
    assert!(results[0].is_ok() && results[2].is_ok(), "{results:?}");
    assert!(matches!(results[1], Err(QueueError::Rejected(_))), "{:?}", results[1]);
    assert_eq!(depth(q).await, 2);
}
