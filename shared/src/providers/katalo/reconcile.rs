//! Katalo's reconciling side: the webhook is a hint, `GET /api/v1/generations/{job_id}`
//! the truth.
//!
//! - A `generation.completed|failed` webhook and a watch (`katalo.watch`) both wait for
//!   the job to be terminal, polling it (the message re-sent with a delay and its poll
//!   number) until their horizon (`KATALO_POLL_HORIZON_SECS` after a webhook's first poll;
//!   the registration's own for a watch). Both work under the job's key
//!   ([`publish_key`]): whichever finds the job terminal first publishes, the other finds
//!   it published. The event is `generation.completed` or `generation.failed` by the
//!   job's state, its id keyed by job and type, whichever path published it.
//! - A webhook of another event type is forwarded under its own key with the job as it
//!   is now.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use time::OffsetDateTime;

use crate::domain::abandon::Abandonment;
use crate::domain::clock::secs;
use crate::domain::dedupe::delivery_key;
use crate::domain::event::{COMPLETED, FAILED, NormalizedEvent, terminal_type};
use crate::domain::job::Job;
use crate::domain::limits::{MAX_ID_BYTES, checked_id};
use crate::ports::provider::{Reconciler, Reconciliation, Step, WorkContext};
use crate::ports::{JobApi, JobApiError};
use crate::providers::common::refresh::Refresh;

use super::PROVIDER;
use super::message::{KataloMessage, KataloWatchMessage, KataloWebhookMessage, publish_key};

/// How long a job still running is polled by default after a webhook
/// (`KATALO_POLL_HORIZON_SECS`).
pub const DEFAULT_POLL_HORIZON: Duration = Duration::from_secs(24 * 60 * 60);

/// Reconciles `katalo.*` messages with Katalo's job API.
pub struct KataloReconciler {
    api: Arc<dyn JobApi>,
    poll_horizon: Duration,
}

impl KataloReconciler {
    /// Reads jobs through `api`; polls a running job for `poll_horizon` from a webhook's
    /// first poll.
    pub fn new(api: Arc<dyn JobApi>, poll_horizon: Duration) -> Self {
        Self { api, poll_horizon }
    }
}

#[async_trait]
impl Reconciler for KataloReconciler {
    fn provider(&self) -> &'static str {
        PROVIDER
    }

    async fn prepare(&self, body: &str, _cx: &WorkContext) -> Result<Box<dyn Reconciliation>, Step> {
        let (key, path) = match Step::parse_message(body)? {
            KataloMessage::Webhook(msg) => {
                let known = msg.event_type == COMPLETED || msg.event_type == FAILED;
                // The key is derived here, never taken from the message: the job's, or for
                // an event type genhook does not know, the delivery's own.
                let key =
                    if known { publish_key(&msg.job_id) } else { delivery_key(PROVIDER, &msg.job_id, &msg.event_type) };
                (key, Path::Webhook { known, msg })
            }
            KataloMessage::Watch(msg) => {
                // The message may be hand-written: its job id is checked like a webhook's.
                if checked_id(&msg.job_id, MAX_ID_BYTES).is_none() {
                    return Err(Step::Dead {
                        reason: format!("malformed katalo.watch: the job id must be 1-{MAX_ID_BYTES} bytes"),
                    });
                }
                (publish_key(&msg.job_id), Path::Watch(msg))
            }
            KataloMessage::Refresh(req) => return Refresh::prepare(self.api.clone(), PROVIDER, req, None),
        };
        Ok(Box::new(KataloJob { api: self.api.clone(), poll_horizon: self.poll_horizon, key, path }))
    }
}

/// How the job came to be read.
enum Path {
    /// A webhook (or a poll after one); `known`: a `generation.completed|failed` one.
    Webhook { known: bool, msg: KataloWebhookMessage },
    /// A registration (or a poll of it).
    Watch(KataloWatchMessage),
}

/// One message's reconciliation.
struct KataloJob {
    api: Arc<dyn JobApi>,
    poll_horizon: Duration,
    key: String,
    path: Path,
}

impl KataloJob {
    fn job_id(&self) -> &str {
        match &self.path {
            Path::Webhook { msg, .. } => &msg.job_id,
            Path::Watch(msg) => &msg.job_id,
        }
    }

    /// The next poll of a job still running, or the dead letter past the horizon.
    fn next_poll(&self, status: &str, cx: &WorkContext) -> Step {
        let now = cx.now.unix_timestamp();
        let (polls, horizon_at) = match &self.path {
            Path::Webhook { msg, .. } => {
                let horizon = secs(self.poll_horizon);
                (msg.polls, msg.horizon_at.unwrap_or_else(|| now.saturating_add(horizon)))
            }
            Path::Watch(msg) => (msg.polls, msg.horizon_at),
        };
        cx.next_poll(&format!("job {}", self.job_id()), status, polls, horizon_at, |polls, delay| match &self.path {
            Path::Webhook { msg, .. } => {
                KataloWebhookMessage { polls, horizon_at: Some(horizon_at), ..msg.clone() }.poll_message(delay)
            }
            Path::Watch(msg) => KataloWatchMessage { polls, ..msg.clone() }.outgoing(Some(delay)),
        })
    }
}

#[async_trait]
impl Reconciliation for KataloJob {
    fn key(&self) -> &str {
        &self.key
    }

    async fn read(&self) -> Result<Job, JobApiError> {
        self.api.get_job(self.job_id()).await
    }

    fn assess(&self, job: &Job, cx: &WorkContext) -> Option<Step> {
        // Unknown event types are forwarded with the job as it is now; known ones and
        // watches wait for a terminal state.
        let waits = !matches!(self.path, Path::Webhook { known: false, .. });
        (waits && !job.state.is_terminal()).then(|| self.next_poll(&job.status, cx))
    }

    fn event(&self, job: Job, now: OffsetDateTime) -> NormalizedEvent {
        match &self.path {
            Path::Webhook { known, msg } => katalo_event(msg, job, *known, now),
            Path::Watch(msg) => {
                let event_type = terminal_type(job.state);
                NormalizedEvent::for_job(PROVIDER, &msg.job_id, event_type, job, msg.registered_at.clone(), now)
            }
        }
    }

    fn abandoned(&self, abandonment: &Abandonment, now: OffsetDateTime) -> Option<NormalizedEvent> {
        Some(match &self.path {
            Path::Webhook { msg, .. } => {
                // What the webhook said of the job, for the app to match it.
                let mut e =
                    NormalizedEvent::abandoned(PROVIDER, &msg.job_id, abandonment, msg.received_at.clone(), now);
                e.reference = hint(msg, "reference");
                e.metadata = hint(msg, "metadata");
                e.source_asset_id = source_asset_hint(msg);
                e
            }
            Path::Watch(msg) => {
                NormalizedEvent::abandoned(PROVIDER, &msg.job_id, abandonment, msg.registered_at.clone(), now)
            }
        })
    }
}

/// Builds the normalized event from the job (truth) and the webhook (fallbacks).
fn katalo_event(msg: &KataloWebhookMessage, job: Job, known: bool, now: OffsetDateTime) -> NormalizedEvent {
    // Keyed by what is published, so contradicting hints for one job converge on one id.
    let event_type = if known && job.state.is_terminal() { terminal_type(job.state) } else { &msg.event_type };
    let state = job.state;
    let mut e = NormalizedEvent::for_job(PROVIDER, &msg.job_id, event_type, job, msg.received_at.clone(), now);
    if e.failure.is_none() && state.is_unsuccessful() {
        e.set_failure(hint(msg, "failure"), state);
    }
    e.reference = e.reference.or_else(|| hint(msg, "reference"));
    e.metadata = e.metadata.or_else(|| hint(msg, "metadata"));
    e.source_asset_id = e.source_asset_id.or_else(|| source_asset_hint(msg));
    e
}

/// The webhook's field `key`, unless absent or null.
fn hint(msg: &KataloWebhookMessage, key: &str) -> Option<Value> {
    msg.payload.get(key).filter(|v| !v.is_null()).cloned()
}

/// The webhook's `source_asset_id`, when it is text.
fn source_asset_hint(msg: &KataloWebhookMessage) -> Option<String> {
    msg.payload.get("source_asset_id").and_then(Value::as_str).map(str::to_string)
}
