//! Registering a Replicate prediction: the safety net for a final webhook that never
//! comes (the endpoint down past Replicate's retries, which end about a minute after the
//! prediction does; a misconfigured webhook URL). Put its `replicate.watch` message on
//! the inbox (`genhook watch --provider replicate`, or [`watch`]); the worker polls
//! `GET /v1/predictions/{id}` on the backoff schedule until it ends or the horizon
//! passes, and publishes it under the prediction's key, once whichever path comes first.
//! A prediction's first delivery that is not final (`starting`, `processing`) registers
//! its watch by itself unless `REPLICATE_AUTO_WATCH` is off.

use std::time::Duration;

use time::OffsetDateTime;

use crate::domain::clock::{rfc3339, secs};
use crate::domain::limits::checked_id;
use crate::ports::{Queue, QueueError};

use super::message::{ReplicateWatchMessage, publish_key};
use super::webhook::MAX_ID_BYTES;

/// How long a watched prediction is polled by default (`REPLICATE_POLL_HORIZON_SECS`,
/// `genhook watch --horizon-secs`).
pub const DEFAULT_HORIZON: Duration = Duration::from_secs(24 * 60 * 60);

/// Why a registration was refused.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// The prediction id is empty or too long.
    #[error("the prediction id must be 1-{MAX_ID_BYTES} bytes")]
    BadPredictionId,
    /// The inbox refused the message.
    #[error("could not queue the registration: {0}")]
    Queue(#[from] QueueError),
}

/// The registration message for `prediction_id`, polled until `now + horizon`.
pub fn registration(
    prediction_id: &str,
    horizon: Duration,
    now: OffsetDateTime,
) -> Result<ReplicateWatchMessage, WatchError> {
    let id = checked_id(prediction_id, MAX_ID_BYTES).ok_or(WatchError::BadPredictionId)?;
    Ok(ReplicateWatchMessage {
        dedupe_key: publish_key(id),
        prediction_id: id.to_string(),
        registered_at: rfc3339(now),
        horizon_at: now.unix_timestamp().saturating_add(secs(horizon)),
        polls: 0,
    })
}

/// Registers a prediction by putting its `replicate.watch` message on the inbox (one
/// message, no table write); returns the message id.
pub async fn watch(
    inbox: &dyn Queue,
    prediction_id: &str,
    horizon: Duration,
    now: OffsetDateTime,
) -> Result<String, WatchError> {
    let m = registration(prediction_id, horizon, now)?;
    Ok(inbox.send(m.outgoing(None)).await?)
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn registrations_are_checked_and_keyed_by_prediction() {
        let now = datetime!(2026-12-07 12:00:00 UTC);
        let m = registration(" p1 ", Duration::from_secs(60), now).unwrap();
        assert_eq!((m.dedupe_key.as_str(), m.prediction_id.as_str(), m.polls), ("replicate#p1#prediction", "p1", 0));
        assert_eq!(m.horizon_at, now.unix_timestamp() + 60);
        let body: serde_json::Value = serde_json::from_str(&m.outgoing(None).body).unwrap();
        assert_eq!((body["type"].as_str(), body["prediction_id"].as_str()), (Some("replicate.watch"), Some("p1")));
        assert!(matches!(registration(" ", DEFAULT_HORIZON, now), Err(WatchError::BadPredictionId)));
        let long = "p".repeat(MAX_ID_BYTES + 1);
        assert!(matches!(registration(&long, DEFAULT_HORIZON, now), Err(WatchError::BadPredictionId)));
    }
}
