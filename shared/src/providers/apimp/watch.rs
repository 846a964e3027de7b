//! Registering an APIMP task: after submitting with a minted callback URL (or with none,
//! for polling-only models), tell genhook which `task_id` the reference became. The
//! `apimp.watch` inbox message records the mapping and starts polling; see
//! [`super::reconcile`] for what happens next.

use std::time::Duration;

use time::OffsetDateTime;

use crate::domain::clock::{rfc3339, secs};
use crate::domain::watch::Watch;
use crate::ports::{Queue, QueueError};

use super::capability::valid_reference;
use super::message::{ApimpWatchMessage, publish_key, watch_message};
use super::upstream::Upstream;

/// How long a task is polled by default (`APIMP_WATCH_HORIZON_SECS`).
pub const DEFAULT_HORIZON: Duration = Duration::from_secs(24 * 60 * 60);

/// Why a registration was refused.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// The reference cannot travel in a callback URL.
    #[error("the reference must be 1-200 characters of A-Z a-z 0-9 . _ : -")]
    BadReference,
    /// The task id is empty.
    #[error("the task id is empty")]
    NoTaskId,
    /// The inbox refused the message.
    #[error("could not queue the registration: {0}")]
    Queue(#[from] QueueError),
}

/// The registration message for `reference` → `task_id`, polled until `now + horizon`.
pub fn registration(
    reference: &str,
    task_id: &str,
    upstream: Option<Upstream>,
    horizon: Duration,
    now: OffsetDateTime,
) -> Result<ApimpWatchMessage, WatchError> {
    if !valid_reference(reference) {
        return Err(WatchError::BadReference);
    }
    let task_id = task_id.trim();
    if task_id.is_empty() {
        return Err(WatchError::NoTaskId);
    }
    Ok(ApimpWatchMessage {
        dedupe_key: publish_key(task_id),
        watch: Watch {
            reference: reference.to_string(),
            task_id: task_id.to_string(),
            upstream: upstream.map(|u| u.as_str().to_string()),
            registered_at: rfc3339(now),
            horizon_at: now.unix_timestamp().saturating_add(secs(horizon)),
        },
        polls: 0,
    })
}

/// Registers a task by putting its `apimp.watch` message on the inbox; returns the
/// message id.
pub async fn watch(
    inbox: &dyn Queue,
    reference: &str,
    task_id: &str,
    upstream: Option<Upstream>,
    horizon: Duration,
    now: OffsetDateTime,
) -> Result<String, WatchError> {
    let m = registration(reference, task_id, upstream, horizon, now)?;
    Ok(inbox.send(watch_message(&m, None)).await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn registrations_are_checked_and_keyed_by_task() {
        let now = datetime!(2026-11-23 12:00:00 UTC);
        let m = registration("order-1", " task_01H ", Some(Upstream::Kling), Duration::from_secs(60), now).unwrap();
        assert_eq!((m.dedupe_key.as_str(), m.watch.task_id.as_str(), m.polls), ("apimp#task_01H#task", "task_01H", 0));
        assert_eq!(m.watch.horizon_at, now.unix_timestamp() + 60);
        let body: serde_json::Value = serde_json::from_str(&watch_message(&m, None).body).unwrap();
        assert_eq!((body["type"].as_str(), body["watch"]["upstream"].as_str()), (Some("apimp.watch"), Some("kling")));
        assert!(matches!(registration("a b", "t", None, DEFAULT_HORIZON, now), Err(WatchError::BadReference)));
        assert!(matches!(registration("r", " ", None, DEFAULT_HORIZON, now), Err(WatchError::NoTaskId)));
        // Overflowed before (`as i64` wrapped negative, then the addition overflowed).
        assert_eq!(registration("r", "t", None, Duration::MAX, now).unwrap().watch.horizon_at, i64::MAX);
    }
}
