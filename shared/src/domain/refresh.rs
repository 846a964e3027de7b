//! A refresh request: a consumer asks for fresh output URLs of a finished job. Sent to
//! the inbox as `<provider>.refresh` (e.g. `katalo.refresh`); the worker re-reads the
//! job and publishes a `generation.urls_refreshed` event, once per request.

use serde::{Deserialize, Serialize};

use crate::domain::dedupe::{dedupe_key, event_id};
use crate::domain::event::COMPLETED;
use crate::domain::limits::MAX_ID_BYTES;

/// The most bytes of a request id.
pub const MAX_REQUEST_ID_BYTES: usize = 128;

/// The body of a `<provider>.refresh` inbox message (besides its `type`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshRequest {
    /// [`refresh_key`] of the request.
    pub dedupe_key: String,
    /// The provider's job id.
    pub job_id: String,
    /// The caller's id for this request: retries of one request publish one event.
    pub request_id: String,
    /// When it was asked for (RFC 3339): the event's `received_at`.
    pub requested_at: String,
}

/// Why a refresh request cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefreshError {
    /// The job id is empty or too long.
    #[error("the job id must be 1-{MAX_ID_BYTES} bytes")]
    BadJobId,
    /// The request id is empty, too long or holds a `#`.
    #[error("the request id must be 1-{MAX_REQUEST_ID_BYTES} bytes without '#'")]
    BadRequestId,
}

impl RefreshRequest {
    /// A request for `provider`'s job `job_id`, identified by `request_id`.
    pub fn new(provider: &str, job_id: &str, request_id: &str, requested_at: String) -> Result<Self, RefreshError> {
        let job_id = job_id.trim();
        let req = Self {
            dedupe_key: refresh_key(provider, job_id, request_id),
            job_id: job_id.to_string(),
            request_id: request_id.to_string(),
            requested_at,
        };
        req.check()?;
        Ok(req)
    }

    /// Whether the ids are acceptable: a request read from the inbox (a consumer may
    /// have written it by hand) is checked again before it is worked.
    pub fn check(&self) -> Result<(), RefreshError> {
        if self.job_id.trim().is_empty() || self.job_id.len() > MAX_ID_BYTES {
            return Err(RefreshError::BadJobId);
        }
        let id = &self.request_id;
        if id.is_empty() || id.len() > MAX_REQUEST_ID_BYTES || id.contains('#') {
            return Err(RefreshError::BadRequestId);
        }
        Ok(())
    }
}

/// The key a refresh request is published under: `<provider>#<job_id>#refresh:<request_id>`.
pub fn refresh_key(provider: &str, job_id: &str, request_id: &str) -> String {
    dedupe_key(provider, job_id, &format!("refresh:{request_id}"))
}

/// The `event_id` of the job's `generation.completed` event (the refreshed event's
/// `original_event_id`).
pub fn completed_event_id(provider: &str, job_id: &str) -> String {
    event_id(&dedupe_key(provider, job_id, COMPLETED))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_checked_and_keyed_per_request() {
        let r = RefreshRequest::new("katalo", " job_1 ", "r-1", "t".into()).unwrap();
        assert_eq!((r.dedupe_key.as_str(), r.job_id.as_str()), ("katalo#job_1#refresh:r-1", "job_1"));
        assert_eq!(RefreshRequest::new("katalo", "", "r", "t".into()), Err(RefreshError::BadJobId));
        assert_eq!(RefreshRequest::new("katalo", "j", "", "t".into()), Err(RefreshError::BadRequestId));
        assert_eq!(RefreshRequest::new("katalo", "j", "a#b", "t".into()), Err(RefreshError::BadRequestId));
        assert_eq!(completed_event_id("katalo", "j"), event_id("katalo#j#generation.completed"));
        let hand_written = RefreshRequest { job_id: "j".repeat(MAX_ID_BYTES + 1), ..r };
        assert_eq!(hand_written.check(), Err(RefreshError::BadJobId));
    }
}
