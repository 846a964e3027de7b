//! Refreshing a finished job's output URLs on request (`<provider>.refresh`, see
//! [`crate::domain::refresh`]): a [`Reconciliation`] every provider hands its refresh
//! messages to, and [`request`], the library call that queues one.
//!
//! The worker re-reads the job and publishes `generation.urls_refreshed` with the fresh
//! outputs, `original_event_id` = the job's `generation.completed` event, and its own
//! `event_id` keyed by the request (retries of one request publish once). A job that is
//! still running, failed, unknown, or whose outputs the provider no longer serves is
//! dead-lettered with that reason, never dropped.

use std::sync::Arc;

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::domain::clock::rfc3339;
use crate::domain::dedupe::{body_sha256, event_id};
use crate::domain::event::{NormalizedEvent, URLS_REFRESHED};
use crate::domain::inbox::to_json;
use crate::domain::job::{Job, JobState};
use crate::domain::refresh::{RefreshError, RefreshRequest, completed_event_id, refresh_key};
use crate::ports::provider::{Reconciliation, Step, WorkContext};
use crate::ports::{JobApi, JobApiError, OutgoingMessage, Queue, QueueError};

/// A provider's touch to its events (e.g. APIMP's media guess).
pub type Decorate = fn(&mut NormalizedEvent);

/// One refresh request's reconciliation, under the request's key.
pub struct Refresh {
    api: Arc<dyn JobApi>,
    provider: &'static str,
    key: String,
    req: RefreshRequest,
    decorate: Option<Decorate>,
}

impl Refresh {
    /// The reconciliation of `req` (read from the inbox) for `provider`'s job, read
    /// through `api`; a request whose ids are unacceptable is dead-lettered.
    pub fn prepare(
        api: Arc<dyn JobApi>,
        provider: &'static str,
        req: RefreshRequest,
        decorate: Option<Decorate>,
    ) -> Result<Box<dyn Reconciliation>, Step> {
        req.check().map_err(|e| Step::Dead { reason: format!("malformed refresh request: {e}") })?;
        // The key is derived here, never taken from the message.
        let key = refresh_key(provider, &req.job_id, &req.request_id);
        Ok(Box::new(Self { api, provider, key, req, decorate }))
    }
}

#[async_trait]
impl Reconciliation for Refresh {
    fn key(&self) -> &str {
        &self.key
    }

    async fn read(&self) -> Result<Job, JobApiError> {
        self.api.get_job(&self.req.job_id).await
    }

    fn assess(&self, job: &Job, cx: &WorkContext) -> Option<Step> {
        let id = &self.req.job_id;
        let reason = match job.state {
            JobState::Succeeded if job.outputs_removed => {
                format!("cannot refresh job {id}: the provider has removed its outputs")
            }
            JobState::Succeeded => {
                let gone = job.outputs.iter().filter_map(|o| o.expires_at).find(|t| *t <= cx.now);
                gone.map(|t| {
                    format!(
                        "cannot refresh job {id}: the provider no longer serves its outputs (gone since {})",
                        rfc3339(t)
                    )
                })?
            }
            JobState::Pending => format!(
                "cannot refresh job {id}: it is still {} (its generation.completed event will carry the URLs)",
                job.status
            ),
            state => format!("cannot refresh job {id}: it ended {} and has no outputs", state.word()),
        };
        Some(Step::Dead { reason })
    }

    fn event(&self, job: Job, now: OffsetDateTime) -> NormalizedEvent {
        let (provider, id) = (self.provider, self.req.job_id.as_str());
        let mut e = NormalizedEvent::for_job(provider, id, URLS_REFRESHED, job, self.req.requested_at.clone(), now);
        e.event_id = event_id(&self.key);
        e.original_event_id = Some(completed_event_id(provider, id));
        if let Some(decorate) = self.decorate {
            decorate(&mut e);
        }
        e
    }
}

/// Why a refresh could not be queued.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// The ids are not acceptable.
    #[error(transparent)]
    Invalid(#[from] RefreshError),
    /// The inbox refused the message.
    #[error("could not queue the refresh: {0}")]
    Queue(#[from] QueueError),
}

/// A refresh request as it travels: tagged `<provider>.refresh`.
#[derive(serde::Serialize)]
struct Tagged<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    #[serde(flatten)]
    req: &'a RefreshRequest,
}

/// The inbox message asking for fresh URLs of `provider`'s job `job_id`.
pub fn message(
    provider: &str,
    job_id: &str,
    request_id: &str,
    now: OffsetDateTime,
) -> Result<OutgoingMessage, RefreshError> {
    let req = RefreshRequest::new(provider, job_id, request_id, rfc3339(now))?;
    let kind = format!("{provider}.refresh");
    Ok(OutgoingMessage {
        body: to_json(&Tagged { kind: &kind, req: &req }),
        attributes: vec![("provider".into(), provider.into()), ("message_type".into(), kind.clone())],
        group_id: Some(req.dedupe_key.clone()),
        dedup_id: Some(body_sha256(req.dedupe_key.as_bytes())),
        delay: None,
    })
}

/// Queues a refresh request (one inbox message); returns the message id. Retries with
/// the same `request_id` publish one event.
pub async fn request(
    inbox: &dyn Queue,
    provider: &str,
    job_id: &str,
    request_id: &str,
    now: OffsetDateTime,
) -> Result<String, RequestError> {
    Ok(inbox.send(message(provider, job_id, request_id, now)?).await?)
}
