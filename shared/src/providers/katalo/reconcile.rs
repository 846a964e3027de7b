//! Katalo's reconciling side: the webhook is a hint, `GET /api/v1/generations/{job_id}`
//! the truth. A known event type (`generation.completed|failed`) waits for the job to be
//! terminal, polling it (the message re-sent with a delay and its poll number) until
//! `KATALO_POLL_HORIZON_SECS` after the first poll; an unknown type is forwarded with the
//! job as it is now.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use time::OffsetDateTime;

use crate::domain::event::{NormalizedEvent, terminal_type};
use crate::domain::job::{Job, JobState};
use crate::ports::provider::{Reconciler, Reconciliation, Step, WorkContext};
use crate::ports::{JobApi, JobApiError, MAX_DELAY};

use super::message::{KataloMessage, KataloWebhookMessage};
use super::{COMPLETED, FAILED, PROVIDER};

/// How long a job still running is polled by default (`KATALO_POLL_HORIZON_SECS`).
pub const DEFAULT_POLL_HORIZON: Duration = Duration::from_secs(24 * 60 * 60);

/// Reconciles `katalo.webhook` messages with Katalo's job API.
pub struct KataloReconciler {
    api: Arc<dyn JobApi>,
    poll_horizon: Duration,
}

impl KataloReconciler {
    /// Reads jobs through `api`; polls a running job for `poll_horizon` from its first poll.
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
        let KataloMessage::Webhook(msg) = Step::parse_message(body)?;
        Ok(Box::new(KataloJob { api: self.api.clone(), poll_horizon: self.poll_horizon, msg }))
    }
}

/// One webhook's (or poll's) reconciliation.
struct KataloJob {
    api: Arc<dyn JobApi>,
    poll_horizon: Duration,
    msg: KataloWebhookMessage,
}

impl KataloJob {
    fn known(&self) -> bool {
        self.msg.event_type == COMPLETED || self.msg.event_type == FAILED
    }

    /// The next poll of a job still running, or the dead letter past the horizon.
    fn next_poll(&self, status: &str, cx: &WorkContext) -> Step {
        let msg = &self.msg;
        let now = cx.now.unix_timestamp();
        let horizon = i64::try_from(self.poll_horizon.as_secs()).unwrap_or(i64::MAX);
        let horizon_at = msg.horizon_at.unwrap_or_else(|| now.saturating_add(horizon));
        if now >= horizon_at {
            return Step::Dead { reason: format!("polling horizon passed; job {} is still {status}", msg.job_id) };
        }
        let polls = msg.polls.saturating_add(1);
        let delay = cx.backoff.delay(polls).min(MAX_DELAY);
        let next = KataloWebhookMessage { polls, horizon_at: Some(horizon_at), ..msg.clone() };
        Step::Reschedule {
            message: Box::new(next.poll_message(delay)),
            from: msg.polls,
            reason: format!("job is still {status}; poll {} in {} s", polls.saturating_add(1), delay.as_secs()),
        }
    }
}

#[async_trait]
impl Reconciliation for KataloJob {
    fn key(&self) -> &str {
        &self.msg.dedupe_key
    }

    async fn read(&self) -> Result<Job, JobApiError> {
        self.api.get_job(&self.msg.job_id).await
    }

    fn assess(&self, job: &Job, cx: &WorkContext) -> Option<Step> {
        // Unknown event types are forwarded with the job as it is now; known ones wait
        // for a terminal state.
        (self.known() && !job.state.is_terminal()).then(|| self.next_poll(&job.status, cx))
    }

    fn event(&self, job: Job, now: OffsetDateTime) -> NormalizedEvent {
        katalo_event(&self.msg, job, self.known(), now)
    }
}

/// Builds the normalized event from the job (truth) and the webhook (fallbacks).
fn katalo_event(msg: &KataloWebhookMessage, job: Job, known: bool, now: OffsetDateTime) -> NormalizedEvent {
    // Keyed by what is published, so contradicting hints for one job converge on one id.
    let event_type = if known && job.state.is_terminal() { terminal_type(job.state) } else { &msg.event_type };
    let finished_without = job.state.is_terminal() && job.state != JobState::Succeeded;
    let hint = |k: &str| msg.payload.get(k).filter(|v| !v.is_null()).cloned();
    let mut e = NormalizedEvent::for_job(PROVIDER, &msg.job_id, event_type, job, msg.received_at.clone(), now);
    e.failure = e.failure.or_else(|| if finished_without { hint("failure") } else { None });
    e.reference = e.reference.or_else(|| hint("reference"));
    e.metadata = e.metadata.or_else(|| hint("metadata"));
    e.source_asset_id =
        e.source_asset_id.or_else(|| msg.payload.get("source_asset_id").and_then(Value::as_str).map(str::to_string));
    e
}
