//! The batch's second half: publish the events in batches and mark them PUBLISHED,
//! schedule the next polls and move the poll chains on, dead-letter with the reason, and
//! send what must be retried anew with its delay.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tracing::{info, warn};

use super::{Abandoned, BatchReport, MARK_ATTEMPTS, Retry, Work, WorkerPorts, WorkerSettings};
use crate::domain::clock::{millis, rfc3339, secs};
use crate::domain::dedupe::{LeaseOutcome, WorkLease, abandon_key, random_id};
use crate::domain::event::{NormalizedEvent, URLS_REFRESHED};
use crate::domain::limits::{attribute_value, clean_text};
use crate::domain::text::clip;
use crate::domain::trace::Trace;
use crate::ports::provider::Reconciler;
use crate::ports::{MAX_DELAY, MAX_VISIBILITY, OutgoingMessage, QueueError, StoreError};
use crate::toolkit::telemetry::{Origin, name};

/// The longest failure reason kept on a released record, in characters.
const MAX_REASON_CHARS: usize = 1024;

/// Message attribute carrying why a message was dead-lettered.
pub const FAILURE_REASON_ATTRIBUTE: &str = "genhook_failure_reason";

/// Kept after the finish phase's last call, to return the batch report in time (ms).
const REPORT_MARGIN_MS: i64 = 500;

/// Why a send that the deadline cut short failed (the record is retried).
const DEADLINE_CUT: &str = "the invocation deadline came before the queue answered";

/// What finishing a batch needs of the worker.
pub(super) struct Finish<'w> {
    pub(super) ports: &'w WorkerPorts,
    pub(super) settings: &'w WorkerSettings,
    pub(super) reconcilers: &'w [Arc<dyn Reconciler>],
    /// The invocation deadline (epoch ms), when there is one: every call of the finish
    /// phase ends by it, whatever the services take, so the batch report always goes
    /// back (a record whose call was cut short is retried).
    pub(super) deadline_ms: Option<i64>,
}

/// `call`, or `None` when `left` runs out first (`None` for `left`: no bound).
async fn within<F: Future>(left: Option<Duration>, call: F) -> Option<F::Output> {
    match left {
        None => Some(call.await),
        Some(left) => tokio::time::timeout(left, call).await.ok(),
    }
}

impl Finish<'_> {
    /// How long the finish phase's calls may still take: until [`REPORT_MARGIN_MS`]
    /// before the deadline; `None` without one.
    fn time_left(&self) -> Option<Duration> {
        let deadline = self.deadline_ms?;
        let left = deadline.saturating_sub(self.ports.clock.now_ms()).saturating_sub(REPORT_MARGIN_MS);
        Some(Duration::from_millis(u64::try_from(left).unwrap_or(0)))
    }

    /// `call`, or `None` when the deadline comes first.
    async fn bounded<F: Future>(&self, call: F) -> Option<F::Output> {
        within(self.time_left(), call).await
    }

    /// A batch send's results, or one error per message when the deadline cut it short.
    fn sent(results: Option<Vec<Result<String, QueueError>>>) -> (Vec<Result<String, QueueError>>, &'static str) {
        match results {
            Some(r) => (r, "no result for message"),
            None => (Vec::new(), DEADLINE_CUT),
        }
    }

    /// The upstreams the provider declares (the metrics' bounded dimension).
    fn upstreams(&self, provider: &str) -> &'static [&'static str] {
        self.reconcilers.iter().find(|r| r.provider() == provider).map_or(&[], |r| r.upstreams())
    }

    /// A retry after a failed send, with the record's backoff.
    pub(super) fn retry_after_send_failure(&self, work: Work, what: &str, e: impl std::fmt::Display) -> Retry {
        let delay = self.settings.backoff.delay(work.record.attempt());
        Retry { work, delay, reason: format!("{what}: {e}"), key_refused: false }
    }

    /// After `queue` failed to take `what`: a queue that refused the message itself
    /// refuses every retry, so the record is dead-lettered at once with why; an outage is
    /// retried with the record's backoff.
    fn after_send_failure(
        &self,
        work: Work,
        queue: &str,
        what: &str,
        e: QueueError,
        retry: &mut Vec<Retry>,
        dead: &mut Vec<(Work, String)>,
    ) {
        match e {
            QueueError::Rejected(why) => dead.push((work, format!("the {queue} refused {what}: {why}"))),
            e @ QueueError::Unavailable(_) => retry.push(self.retry_after_send_failure(work, queue, e)),
        }
    }

    /// Sends all publishable events in batches, then marks each sent one PUBLISHED.
    pub(super) async fn publish(
        &self,
        publish: Vec<(Work, Box<NormalizedEvent>)>,
        retry: &mut Vec<Retry>,
        dead: &mut Vec<(Work, String)>,
        report: &mut BatchReport,
    ) {
        if publish.is_empty() {
            return;
        }
        // Only under a live lease: past it another worker may hold the record.
        let now_ms = self.ports.clock.now_ms();
        let (publish, expired): (Vec<_>, Vec<_>) =
            publish.into_iter().partition(|(w, _)| w.lease.as_ref().is_some_and(|l| l.until_ms > now_ms));
        for (work, _) in expired {
            let delay = self.settings.backoff.delay(work.record.attempt());
            let reason = "the worker lease ran out before publishing".into();
            retry.push(Retry { work, delay, reason, key_refused: false });
        }
        if publish.is_empty() {
            return;
        }
        let messages = publish.iter().map(|(_, e)| event_message(e)).collect();
        let (results, missing) = Self::sent(self.bounded(self.ports.outbox.send_batch(messages)).await);
        let mut results = results.into_iter();
        let now = self.ports.clock.now();
        let published_at = rfc3339(now);
        let mut marks = Vec::new();
        for (work, event) in publish {
            let key = work.key.clone().unwrap_or_default();
            let token = work.lease.as_ref().map(|l| l.token.clone()).unwrap_or_default();
            let result = results.next().unwrap_or_else(|| Err(QueueError::Unavailable(missing.into())));
            match result {
                Ok(_) => {
                    info!(key = %key, event_id = %event.event_id, event_type = %event.event_type, status = %event.status, "published");
                    report.published += 1;
                    count_published(work.provider, self.upstreams(work.provider), &event, now);
                    let store = self.ports.store.clone();
                    let at = published_at.clone();
                    let left = self.time_left();
                    marks.push(async move {
                        // The event is out. A failed mark is tried twice more; if it still
                        // fails, the record stays ENQUEUED (later deliveries of the key are
                        // still acknowledged as duplicates) and only a redelivery of this
                        // message republishes, with the same event_id consumers dedupe on.
                        let marked = within(left, async {
                            for attempt in 1..=MARK_ATTEMPTS {
                                match store.mark_published(&key, &token, &event.event_id, &at).await {
                                    Ok(true) => return,
                                    Ok(false) => {
                                        return warn!(key = %key, "could not mark PUBLISHED: the lease was lost");
                                    }
                                    Err(e) => warn!(key = %key, attempt, error = %e, "could not mark PUBLISHED"),
                                }
                            }
                        })
                        .await;
                        if marked.is_none() {
                            warn!(key = %key, "could not mark PUBLISHED before the invocation deadline");
                        }
                    });
                }
                Err(e) => {
                    warn!(key = %key, error = %e, "outbox send failed");
                    self.after_send_failure(work, "outbox", "the event", e, retry, dead);
                }
            }
        }
        join_all(marks).await;
    }

    /// Sends each follow-up message (delayed), moves the poll chain on, and lets the
    /// current message go. A message the chain has moved past (a duplicate, or the
    /// redelivery of one whose follow-up was sent) schedules nothing: it is dropped.
    pub(super) async fn reschedule(
        &self,
        later: Vec<(Work, OutgoingMessage, u32, String)>,
        retry: &mut Vec<Retry>,
        dead: &mut Vec<(Work, String)>,
        report: &mut BatchReport,
    ) {
        let mut due = Vec::new();
        for (work, message, from, reason) in later {
            if work.lease.as_ref().is_some_and(|l| l.poll_seq == from) {
                due.push((work, message, from, reason));
            } else {
                info!(
                    key = work.key.as_deref().unwrap_or("-"),
                    poll = from,
                    "stale poll: the chain has moved on; dropped"
                );
                self.release(&work, "stale poll dropped").await;
                report.skipped += 1;
            }
        }
        if due.is_empty() {
            return;
        }
        let (works, messages): (Vec<_>, Vec<_>) = due.into_iter().map(|(w, m, f, r)| ((w, f, r), m)).unzip();
        let (results, missing) = Self::sent(self.bounded(self.ports.inbox.send_batch(messages)).await);
        let mut results = results.into_iter();
        for (work, from, reason) in works {
            match results.next().unwrap_or_else(|| Err(QueueError::Unavailable(missing.into()))) {
                Ok(_) => {
                    info!(key = work.key.as_deref().unwrap_or("-"), reason = %reason, "next poll scheduled");
                    let advanced = match (&work.key, &work.lease) {
                        (Some(key), Some(lease)) => self
                            .bounded(self.ports.store.advance_polls(key, &lease.token, from))
                            .await
                            .unwrap_or_else(|| Err(StoreError(DEADLINE_CUT.into()))),
                        _ => Ok(false),
                    };
                    match advanced {
                        Ok(true) => {
                            self.release(&work, &reason).await;
                            report.rescheduled += 1;
                            Origin::provider(work.provider).count(name::POLLS_SCHEDULED, &[]);
                        }
                        // The follow-up is out but the chain still points here, so the
                        // follow-up would be dropped as stale: keep this message, whose
                        // redelivery sends another and moves the chain on (the chain then
                        // drops whichever follow-up comes second).
                        Ok(false) => retry.push(self.retry_after_send_failure(work, "poll chain", "lease lost")),
                        Err(e) => retry.push(self.retry_after_send_failure(work, "poll chain", e)),
                    }
                }
                Err(e) => self.after_send_failure(work, "inbox", "the next poll", e, retry, dead),
            }
        }
    }

    /// Sends each record's follow-up messages (in batches) and lets the record go; a
    /// record any of whose messages the inbox did not take is sent again whole later
    /// (each follow-up is idempotent: a watch registration, a sweep's next page).
    pub(super) async fn fan_out(
        &self,
        fanout: Vec<(Work, Vec<OutgoingMessage>, String)>,
        retry: &mut Vec<Retry>,
        dead: &mut Vec<(Work, String)>,
        report: &mut BatchReport,
    ) {
        for (work, messages, reason) in fanout {
            let count = messages.len();
            let (results, missing) = Self::sent(self.bounded(self.ports.inbox.send_batch(messages)).await);
            let failure = if results.len() < count {
                Some(QueueError::Unavailable(missing.into()))
            } else {
                results.into_iter().find_map(Result::err)
            };
            match failure {
                None => {
                    info!(key = work.key.as_deref().unwrap_or("-"), messages = count, reason = %reason, "follow-ups sent");
                    report.fanned_out += 1;
                }
                Some(e) => self.after_send_failure(work, "inbox", "a follow-up", e, retry, dead),
            }
        }
    }

    /// Publishes each abandoned job's `generation.abandoned` event once, then hands its
    /// record to the dead letter with the same reason. The event is published under the
    /// job's own abandon key ([`abandon_key`]), leased and marked PUBLISHED like any
    /// event's, so a redelivered or redriven record does not tell the app twice; the
    /// job's key is left as it is, so a final webhook that still comes is published.
    pub(super) async fn abandon(
        &self,
        abandon: Vec<(Work, Abandoned)>,
        retry: &mut Vec<Retry>,
        dead: &mut Vec<(Work, String)>,
        report: &mut BatchReport,
    ) {
        let now = self.ports.clock.now();
        let now_ms = self.ports.clock.now_ms();
        let mut due = Vec::new();
        for (work, abandoned) in abandon {
            let event = &abandoned.event;
            let lease = WorkLease {
                key: abandon_key(&event.provider, &event.job_id),
                token: random_id(),
                until_ms: now_ms.saturating_add(millis(self.settings.lease)),
                expires_at: now.unix_timestamp().saturating_add(secs(self.settings.dedupe_ttl)),
                received_at: rfc3339(now),
            };
            match self.bounded(self.ports.store.acquire_work(&lease, now_ms)).await {
                Some(Ok(LeaseOutcome::Acquired { .. })) => due.push((work, abandoned, lease)),
                Some(Ok(LeaseOutcome::AlreadyPublished)) => {
                    info!(key = %lease.key, "the job's generation.abandoned was published before");
                    dead.push((work, abandoned.reason));
                }
                Some(Ok(LeaseOutcome::Busy { .. })) => {
                    retry.push(self.retry_after_send_failure(work, "abandon", "another worker is publishing it"));
                }
                Some(Err(e)) => retry.push(self.retry_after_send_failure(work, "dedupe store", e)),
                None => retry.push(self.retry_after_send_failure(work, "dedupe store", DEADLINE_CUT)),
            }
        }
        if due.is_empty() {
            return;
        }
        let messages = due.iter().map(|(_, a, _)| event_message(&a.event)).collect();
        let (results, missing) = Self::sent(self.bounded(self.ports.outbox.send_batch(messages)).await);
        let mut results = results.into_iter();
        let published_at = rfc3339(self.ports.clock.now());
        for (work, Abandoned { event, why, reason }, lease) in due {
            match results.next().unwrap_or_else(|| Err(QueueError::Unavailable(missing.into()))) {
                Ok(_) => {
                    warn!(key = %lease.key, event_id = %event.event_id, reason = %reason, "gave up on the job: generation.abandoned published");
                    report.abandoned += 1;
                    Origin::provider(work.provider).count(name::EVENTS_PUBLISHED, &[]);
                    Origin::provider(work.provider).count(name::JOBS_ABANDONED, &[("reason", why.code())]);
                    let marked = self
                        .bounded(self.ports.store.mark_published(
                            &lease.key,
                            &lease.token,
                            &event.event_id,
                            &published_at,
                        ))
                        .await;
                    if !matches!(marked, Some(Ok(true))) {
                        warn!(key = %lease.key, "could not mark the abandoned event PUBLISHED; its lease expires");
                    }
                    dead.push((work, reason));
                }
                Err(e) => {
                    let _ = self
                        .bounded(self.ports.store.release_work(&lease.key, &lease.token, "outbox send failed"))
                        .await;
                    warn!(key = %lease.key, error = %e, "outbox send failed");
                    self.after_send_failure(work, "outbox", "the abandoned event", e, retry, dead);
                }
            }
        }
    }

    /// Moves records that can never succeed to the DLQ with the reason attached.
    pub(super) async fn dead_letter(
        &self,
        dead: Vec<(Work, String)>,
        retry: &mut Vec<Retry>,
        report: &mut BatchReport,
    ) {
        for (work, reason) in dead {
            warn!(message_id = %work.record.message_id, key = work.key.as_deref().unwrap_or("-"), reason = %reason, "dead-lettering");
            self.release(&work, &reason).await;
            let Some(dlq) = &self.ports.inbox_dlq else {
                // No DLQ configured: keep failing; the queue's redrive policy moves it.
                report.failed.push(work.record.message_id.clone());
                continue;
            };
            let msg = OutgoingMessage {
                body: work.record.body.clone(),
                attributes: vec![
                    (FAILURE_REASON_ATTRIBUTE.into(), clean_text(&reason, 1024)),
                    ("genhook_source_message_id".into(), attribute_value(&work.record.message_id)),
                ],
                group_id: work.key.clone(),
                dedup_id: Some(work.record.message_id.clone()),
                delay: None,
            };
            let cut = || QueueError::Unavailable(DEADLINE_CUT.into());
            let sent = match self.bounded(dlq.send(msg)).await.unwrap_or_else(|| Err(cut())) {
                // The DLQ refused this message itself: the same body again with nothing
                // but the reason (all that is genhook's own), before giving up on it.
                Err(QueueError::Rejected(why)) => {
                    warn!(error = %why, "the DLQ refused the message; sending it with the reason alone");
                    let reason = format!("{reason} (the DLQ refused the message with its attributes: {why})");
                    let bare = OutgoingMessage {
                        body: work.record.body.clone(),
                        attributes: vec![(FAILURE_REASON_ATTRIBUTE.into(), clean_text(&reason, 1024))],
                        group_id: None,
                        dedup_id: Some(work.record.message_id.clone()),
                        delay: None,
                    };
                    self.bounded(dlq.send(bare)).await.unwrap_or_else(|| Err(cut()))
                }
                other => other,
            };
            match sent {
                Ok(_) => {
                    report.dead_lettered += 1;
                    Origin::provider(work.provider).count(name::RECORDS_DEAD_LETTERED, &[]);
                }
                Err(e) => {
                    warn!(error = %e, "DLQ send failed; retrying the record later");
                    retry.push(self.retry_after_send_failure(work, "dlq", e));
                }
            }
        }
    }

    /// Releases the leases and sends each record anew with its delay and attempt count
    /// (the received message is then deleted: waiting spends no receive). A record whose
    /// copy the inbox did not take is hidden for its delay and reported failed instead.
    pub(super) async fn schedule_retries(&self, retry: Vec<Retry>, report: &mut BatchReport) {
        if retry.is_empty() {
            return;
        }
        for r in &retry {
            info!(message_id = %r.work.record.message_id, key = r.work.key.as_deref().unwrap_or("-"), attempt = r.work.record.attempt(), delay_s = r.delay.as_secs(), reason = %r.reason, "retrying later");
            Origin::provider(r.work.provider).count(name::RECORDS_RETRIED, &[]);
        }
        join_all(retry.iter().map(|r| self.release(&r.work, &r.reason))).await;
        report.retried += retry.len();
        let now_ms = self.ports.clock.now_ms();
        let copies = retry.iter().map(|r| retry_message(r, now_ms)).collect();
        let (results, missing) = Self::sent(self.bounded(self.ports.inbox.send_batch(copies)).await);
        let mut results = results.into_iter();
        let mut delays = Vec::new();
        for r in &retry {
            if let Err(e) = results.next().unwrap_or_else(|| Err(QueueError::Unavailable(missing.into()))) {
                warn!(message_id = %r.work.record.message_id, error = %e, "could not send the retry anew; the message returns after its delay (one receive)");
                delays.push((r.work.record.receipt_handle.clone(), r.delay.min(MAX_VISIBILITY)));
                report.failed.push(r.work.record.message_id.clone());
            }
        }
        if delays.is_empty() {
            return;
        }
        match self.bounded(self.ports.inbox.delay_retries(delays)).await {
            Some(Ok(())) => {}
            // The messages still come back, after the queue's default visibility timeout.
            Some(Err(e)) => warn!(error = %e, "could not set retry delays"),
            None => warn!("could not set retry delays before the invocation deadline"),
        }
    }

    pub(super) async fn release(&self, work: &Work, reason: &str) {
        if let (Some(key), Some(lease)) = (&work.key, &work.lease) {
            let reason = clip(reason, MAX_REASON_CHARS);
            match self.bounded(self.ports.store.release_work(key, &lease.token, &reason)).await {
                Some(Ok(())) => {}
                Some(Err(e)) => warn!(key = %key, error = %e, "could not release the worker lease; it expires"),
                None => warn!(key = %key, "could not release the worker lease before the deadline; it expires"),
            }
        }
    }
}

/// Counts a published event (and a refresh), and records how long after it was received
/// it went out. The upstream dimension is one of the provider's `upstreams`, or none.
fn count_published(
    provider: &'static str,
    upstreams: &'static [&'static str],
    event: &NormalizedEvent,
    now: OffsetDateTime,
) {
    let upstream = event.upstream.as_deref().and_then(|u| upstreams.iter().copied().find(|known| *known == u));
    let origin = Origin { provider, upstream };
    origin.count(name::EVENTS_PUBLISHED, &[]);
    if event.event_type == URLS_REFRESHED {
        origin.count(name::URLS_REFRESHED, &[]);
    }
    // Checked all the way: `received_at` comes from the message (a clock skew makes it
    // negative, and then it is not recorded).
    let lag_ns = OffsetDateTime::parse(&event.received_at, &Rfc3339)
        .ok()
        .and_then(|r| now.unix_timestamp_nanos().checked_sub(r.unix_timestamp_nanos()));
    if let Some(lag_ns) = lag_ns.and_then(|ns| u64::try_from(ns).ok()) {
        origin.record_ms(name::EVENT_LAG_MS, Duration::from_nanos(lag_ns));
    }
}

/// The copy of a record that waits `delay` (at most SQS's 15 minutes), carrying its
/// trace and its attempts so far.
fn retry_message(r: &Retry, now_ms: i64) -> OutgoingMessage {
    let record = &r.work.record;
    let mut attributes = record.trace.attributes();
    attributes.extend(record.retry.next(record.attempt(), now_ms, r.key_refused).attributes());
    OutgoingMessage {
        body: record.body.clone(),
        attributes,
        group_id: None,
        dedup_id: None,
        delay: Some(r.delay.min(MAX_DELAY)),
    }
}

fn event_message(e: &NormalizedEvent) -> OutgoingMessage {
    let body = e.to_json();
    // Every event published in the library's tests matches the published schema.
    #[cfg(test)]
    crate::domain::testing::schema::assert_valid_event(&body);
    let mut attributes = vec![
        ("event_type".into(), attribute_value(&e.event_type)),
        ("provider".into(), attribute_value(&e.provider)),
        ("event_id".into(), attribute_value(&e.event_id)),
    ];
    // A consumer's own Lambda continues the delivery's X-Ray trace.
    attributes.extend(e.trace.iter().flat_map(Trace::attributes));
    OutgoingMessage {
        body,
        attributes,
        group_id: Some(format!("{}#{}", e.provider, e.job_id)),
        dedup_id: Some(e.event_id.clone()),
        delay: None,
    }
}
