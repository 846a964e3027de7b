//! Registering a Katalo job: the safety net for a webhook that never comes (the
//! endpoint down past Katalo's retries, a misconfigured webhook URL). Right after
//! creating a job, put its `katalo.watch` message on the inbox; the worker polls the job
//! on the backoff schedule until it is terminal or the horizon passes, and publishes it
//! exactly as its webhook would have. The webhook and the polls publish under one key
//! ([`super::message::publish_key`]), so the job is published once whichever comes first.

use std::time::Duration;

use time::OffsetDateTime;

use crate::domain::clock::{rfc3339, secs};
use crate::domain::limits::{MAX_ID_BYTES, checked_id};
use crate::ports::{Queue, QueueError};

use super::message::{KataloWatchMessage, publish_key};

/// How long a watched job is polled by default (`genhook watch --horizon-secs`).
pub const DEFAULT_HORIZON: Duration = Duration::from_secs(24 * 60 * 60);

/// Why a registration was refused.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// The job id is empty or too long.
    #[error("the job id must be 1-{MAX_ID_BYTES} bytes")]
    BadJobId,
    /// The inbox refused the message.
    #[error("could not queue the registration: {0}")]
    Queue(#[from] QueueError),
}

/// The registration message for `job_id`, polled until `now + horizon`.
pub fn registration(job_id: &str, horizon: Duration, now: OffsetDateTime) -> Result<KataloWatchMessage, WatchError> {
    let job_id = checked_id(job_id, MAX_ID_BYTES).ok_or(WatchError::BadJobId)?;
    Ok(KataloWatchMessage {
        dedupe_key: publish_key(job_id),
        job_id: job_id.to_string(),
        registered_at: rfc3339(now),
        horizon_at: now.unix_timestamp().saturating_add(secs(horizon)),
        polls: 0,
    })
}

/// Registers a job by putting its `katalo.watch` message on the inbox (one message, no
/// table write); returns the message id.
pub async fn watch(
    inbox: &dyn Queue,
    job_id: &str,
    horizon: Duration,
    now: OffsetDateTime,
) -> Result<String, WatchError> {
    let m = registration(job_id, horizon, now)?;
    Ok(inbox.send(m.outgoing(None)).await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn registrations_are_checked_and_keyed_by_job() {
        let now = datetime!(2026-11-23 12:00:00 UTC);
        let m = registration(" job_01 ", Duration::from_secs(60), now).unwrap();
        assert_eq!((m.dedupe_key.as_str(), m.job_id.as_str(), m.polls), ("katalo#job_01#job", "job_01", 0));
        assert_eq!((m.horizon_at, m.registered_at.as_str()), (now.unix_timestamp() + 60, "2026-11-23T12:00:00Z"));
        let body: serde_json::Value = serde_json::from_str(&m.outgoing(None).body).unwrap();
        assert_eq!((body["type"].as_str(), body["job_id"].as_str()), (Some("katalo.watch"), Some("job_01")));
        assert!(matches!(registration(" ", DEFAULT_HORIZON, now), Err(WatchError::BadJobId)));
        assert!(matches!(registration(&"j".repeat(MAX_ID_BYTES + 1), DEFAULT_HORIZON, now), Err(WatchError::BadJobId)));
        assert_eq!(registration("j", Duration::MAX, now).unwrap().horizon_at, i64::MAX);
    }
}
