//! The receiver's dedupe state machine: claim the key → send to the inbox → mark
//! ENQUEUED, or the answer that refuses the delivery.

use http::{HeaderValue, Response, StatusCode, header};
use tracing::{info, warn};

use super::{Receiver, unavailable};
use time::OffsetDateTime;

use crate::domain::clock::{epoch_ms, millis, secs};
use crate::domain::dedupe::{Claim, ClaimOutcome, RecordStatus, body_digest, fifo_id, random_id, same_body};
use crate::engine::answer::retryable_error;
use crate::ports::provider::Enqueue;
use crate::ports::{OutgoingMessage, QueueError};

/// How an accepted delivery turned out (for the 2xx body and for tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Accepted {
    New,
    Duplicate,
}

/// A delivery that could not be accepted: the answer, and the reason it is counted under.
pub(super) struct Failed {
    pub(super) reason: &'static str,
    pub(super) response: Response<String>,
}

impl Failed {
    fn new(reason: &'static str, response: Response<String>) -> Self {
        Self { reason, response }
    }
}

impl Receiver {
    /// Claims the key, sends the message, marks it ENQUEUED (logged as accepted, by
    /// `provider`); or the refusal.
    pub(super) async fn accept(
        &self,
        enqueue: Enqueue,
        body: &[u8],
        deadline_ms: Option<i64>,
        now: OffsetDateTime,
        received_at: String,
        provider: &'static str,
    ) -> Result<Accepted, Failed> {
        let Enqueue { key, message, attributes, body_mac } = enqueue;
        let digest = body_digest(body_mac.as_ref(), body);
        let now_ms = epoch_ms(now);
        let default_lease = millis(self.settings.default_lease);
        let lease_until_ms = deadline_ms.filter(|d| *d > now_ms).unwrap_or(now_ms.saturating_add(default_lease));
        let ttl = secs(self.settings.dedupe_ttl);
        let claim = Claim {
            key,
            claim_id: random_id(),
            lease_until_ms,
            expires_at: now.unix_timestamp().saturating_add(ttl),
            body_digest: digest,
            received_at,
        };
        let key = claim.key.as_str();
        let outcome = self.store.claim(&claim, now_ms).await.map_err(|e| {
            warn!(key, error = %e, "dedupe store unavailable");
            Failed::new("store_unavailable", unavailable("dedupe store unavailable"))
        })?;
        match outcome {
            ClaimOutcome::Claimed => {}
            ClaimOutcome::Existing(record) => {
                // A record a worker recreated has no digest to compare.
                if same_body(&record.body_digest, &claim.body_digest) == Some(false) {
                    warn!(key, metric = "body_conflict", "same dedupe key, different body: keeping the first");
                    if let Err(e) = self.store.note_conflict(key).await {
                        warn!(key, error = %e, "could not count the body conflict");
                    }
                }
                return match record.status {
                    RecordStatus::Enqueued | RecordStatus::Published => {
                        info!(provider, key, duplicate = true, "accepted");
                        Ok(Accepted::Duplicate)
                    }
                    RecordStatus::InProgress => {
                        let wait = (record.lease_until_ms.saturating_sub(now_ms) / 1000).clamp(1, 60);
                        let mut r = retryable_error(
                            StatusCode::SERVICE_UNAVAILABLE,
                            "in_progress",
                            "the same event is being accepted right now; retry",
                            true,
                        );
                        r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(wait));
                        Err(Failed::new("in_progress", r))
                    }
                };
            }
        }
        let out = OutgoingMessage {
            body: message,
            attributes,
            group_id: Some(key.to_string()),
            dedup_id: Some(fifo_id(key)),
            delay: None,
        };
        if let Err(e) = self.inbox.send(out).await {
            // The send may have reached the queue all the same (a timeout); the release
            // only deletes a claim no worker has leased, so a message that did arrive is
            // never orphaned from its record.
            warn!(key, error = %e, "inbox send failed: releasing the claim");
            if let Err(e) = self.store.release(key, &claim.claim_id).await {
                warn!(key, error = %e, "could not release the claim; it expires with its lease");
            }
            return Err(match e {
                // The queue refused this message itself: a retry would be refused too.
                QueueError::Rejected(why) => Failed::new(
                    "unqueueable",
                    retryable_error(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "unqueueable",
                        &format!("the inbox refused this delivery: {why}"),
                        false,
                    ),
                ),
                QueueError::Unavailable(_) => Failed::new("inbox_unavailable", unavailable("inbox unavailable")),
            });
        }
        // The message is safely queued: from here on the answer is 2xx. If the mark fails,
        // the claim's lease runs out and a retry may enqueue again; the worker's own
        // lease and PUBLISHED mark keep that from publishing twice.
        if let Err(e) = self.store.mark_enqueued(key, &claim.claim_id).await {
            warn!(key, error = %e, "could not mark the record ENQUEUED");
        }
        info!(provider, key, duplicate = false, "accepted");
        Ok(Accepted::New)
    }
}
