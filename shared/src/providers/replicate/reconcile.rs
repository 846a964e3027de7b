//! Replicate's reconciling side: a terminal webhook (`succeeded`, `failed`, `canceled`,
//! `aborted`) is confirmed with `GET /v1/predictions/{id}` and published once per
//! prediction, with its outputs (which Replicate removes an hour after an API-created
//! prediction ends). Earlier deliveries (`starting`, `processing`) are deduped by the
//! receiver and dropped here: genhook publishes terminal events only.

use std::sync::Arc;

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::domain::event::{NormalizedEvent, terminal_type};
use crate::domain::job::Job;
use crate::ports::provider::{Reconciler, Reconciliation, Step, WorkContext};
use crate::ports::{JobApi, JobApiError};

use super::PROVIDER;
use super::message::{ReplicateMessage, ReplicateWebhookMessage, publish_key};
use super::prediction::state_of;

/// Reconciles `replicate.webhook` messages with Replicate's prediction API.
pub struct ReplicateReconciler {
    api: Arc<dyn JobApi>,
}

impl ReplicateReconciler {
    /// Reads predictions through `api`.
    pub fn new(api: Arc<dyn JobApi>) -> Self {
        Self { api }
    }
}

#[async_trait]
impl Reconciler for ReplicateReconciler {
    fn provider(&self) -> &'static str {
        PROVIDER
    }

    async fn prepare(&self, body: &str, _cx: &WorkContext) -> Result<Box<dyn Reconciliation>, Step> {
        let msg = match Step::parse_message(body)? {
            ReplicateMessage::Webhook(msg) => msg,
            ReplicateMessage::Refresh(req) => {
                return crate::providers::common::refresh::Refresh::prepare(self.api.clone(), PROVIDER, req, None);
            }
        };
        if !state_of(&msg.status).is_terminal() {
            return Err(Step::Skip {
                reason: format!("prediction {} is {}: progress only", msg.prediction_id, msg.status),
            });
        }
        Ok(Box::new(Prediction { api: self.api.clone(), key: publish_key(&msg.prediction_id), msg }))
    }
}

/// One prediction's reconciliation, under the prediction's key.
struct Prediction {
    api: Arc<dyn JobApi>,
    key: String,
    msg: ReplicateWebhookMessage,
}

#[async_trait]
impl Reconciliation for Prediction {
    fn key(&self) -> &str {
        &self.key
    }

    async fn read(&self) -> Result<Job, JobApiError> {
        self.api.get_job(&self.msg.prediction_id).await
    }

    fn assess(&self, job: &Job, cx: &WorkContext) -> Option<Step> {
        (!job.state.is_terminal()).then(|| Step::Retry {
            delay: cx.retry_delay(),
            reason: format!("the webhook says {} but the prediction API still reports {}", self.msg.status, job.status),
        })
    }

    fn event(&self, job: Job, now: OffsetDateTime) -> NormalizedEvent {
        // Keyed by prediction and type: every delivery of one prediction gives one id.
        let event_type = terminal_type(job.state);
        NormalizedEvent::for_job(PROVIDER, &self.msg.prediction_id, event_type, job, self.msg.received_at.clone(), now)
    }
}
