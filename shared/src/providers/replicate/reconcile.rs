//! Replicate's reconciling side: every path that can publish a prediction works under
//! its key ([`publish_key`]) and confirms it with `GET /v1/predictions/{id}`, so a
//! prediction is published once (its outputs, which Replicate removes an hour after an
//! API-created prediction ends, with it).
//!
//! - A final webhook (`succeeded`, `failed`, `canceled`, `aborted`) publishes once the
//!   API agrees.
//! - A watch (`replicate.watch`) polls the prediction, re-sent with a delay and its poll
//!   number, until it ends or its horizon passes.
//! - A delivery that is not final (`starting`, which Replicate always sends, or
//!   `processing`) registers the prediction's watch by itself ([`Watching::auto_watch`]):
//!   its first poll reads the prediction at once, and the polls go on until it ends, so
//!   a final webhook that never comes is recovered. With the watch off such a delivery is
//!   dropped (genhook publishes final events only).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::domain::abandon::Abandonment;
use crate::domain::clock::secs;
use crate::domain::event::{NormalizedEvent, terminal_type};
use crate::domain::job::Job;
use crate::domain::limits::checked_id;
use crate::ports::provider::{Reconciler, Reconciliation, Step, WorkContext};
use crate::ports::{JobApi, JobApiError};
use crate::providers::common::refresh::Refresh;

use super::PROVIDER;
use super::message::{ReplicateMessage, ReplicateWatchMessage, publish_key};
use super::prediction::state_of;
use super::sweep::{Sweeping, sweep_page};
use super::watch::DEFAULT_HORIZON;
use super::webhook::MAX_ID_BYTES;

/// How predictions are watched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Watching {
    /// How long a prediction is polled from its registration (`REPLICATE_POLL_HORIZON_SECS`).
    pub horizon: Duration,
    /// Whether a delivery that is not final registers the watch (`REPLICATE_AUTO_WATCH`).
    pub auto_watch: bool,
}

impl Default for Watching {
    /// A day's horizon, and the watch registered by the first delivery.
    fn default() -> Self {
        Self { horizon: DEFAULT_HORIZON, auto_watch: true }
    }
}

/// Reconciles `replicate.*` messages with Replicate's prediction API.
pub struct ReplicateReconciler {
    api: Arc<dyn JobApi>,
    watching: Watching,
    sweeping: Sweeping,
}

impl ReplicateReconciler {
    /// Reads predictions through `api`, watching them by default ([`Watching::default`]).
    pub fn new(api: Arc<dyn JobApi>) -> Self {
        Self { api, watching: Watching::default(), sweeping: Sweeping::default() }
    }

    /// The same reconciler sweeping as `sweeping` says.
    pub fn sweeping(self, sweeping: Sweeping) -> Self {
        Self { sweeping, ..self }
    }

    /// The same reconciler watching predictions as `watching` says.
    pub fn watching(self, watching: Watching) -> Self {
        Self { watching, ..self }
    }
}

#[async_trait]
impl Reconciler for ReplicateReconciler {
    fn provider(&self) -> &'static str {
        PROVIDER
    }

    async fn prepare(&self, body: &str, cx: &WorkContext) -> Result<Box<dyn Reconciliation>, Step> {
        let (id, path) = match Step::parse_message(body)? {
            ReplicateMessage::Webhook(msg) if state_of(&msg.status).is_terminal() => {
                (msg.prediction_id.clone(), Path::Final { received_at: msg.received_at, status: msg.status })
            }
            ReplicateMessage::Webhook(msg) if self.watching.auto_watch => {
                // The watch this delivery registers: from when it was received.
                let horizon_at = cx.now.unix_timestamp().saturating_add(secs(self.watching.horizon));
                let watch = ReplicateWatchMessage {
                    dedupe_key: publish_key(&msg.prediction_id),
                    prediction_id: msg.prediction_id.clone(),
                    registered_at: msg.received_at,
                    horizon_at,
                    polls: 0,
                };
                (msg.prediction_id, Path::Watch(watch))
            }
            ReplicateMessage::Webhook(msg) => {
                return Err(Step::Skip {
                    reason: format!("prediction {} is {}: progress only", msg.prediction_id, msg.status),
                });
            }
            ReplicateMessage::Watch(msg) => {
                // The message may be hand-written: its id is checked like a webhook's.
                if checked_id(&msg.prediction_id, MAX_ID_BYTES).is_none() {
                    return Err(Step::Dead {
                        reason: format!("malformed replicate.watch: the prediction id must be 1-{MAX_ID_BYTES} bytes"),
                    });
                }
                (msg.prediction_id.clone(), Path::Watch(msg))
            }
            ReplicateMessage::Refresh(req) => return Refresh::prepare(self.api.clone(), PROVIDER, req, None),
            ReplicateMessage::Sweep(msg) => return Err(sweep_page(self.api.as_ref(), msg, self.sweeping, cx).await),
        };
        Ok(Box::new(Prediction { api: self.api.clone(), key: publish_key(&id), id, path }))
    }
}

/// How the prediction came to be read.
enum Path {
    /// A final webhook (the API must agree before it publishes).
    Final { received_at: String, status: String },
    /// A watch, registered by hand or by a delivery that was not final, or a poll of one.
    Watch(ReplicateWatchMessage),
}

/// One prediction's reconciliation, under the prediction's key.
struct Prediction {
    api: Arc<dyn JobApi>,
    key: String,
    id: String,
    path: Path,
}

#[async_trait]
impl Reconciliation for Prediction {
    fn key(&self) -> &str {
        &self.key
    }

    async fn read(&self) -> Result<Job, JobApiError> {
        self.api.get_job(&self.id).await
    }

    fn assess(&self, job: &Job, cx: &WorkContext) -> Option<Step> {
        if job.state.is_terminal() {
            return None;
        }
        Some(match &self.path {
            Path::Final { status, .. } => Step::Retry {
                delay: cx.retry_delay(),
                reason: format!("the webhook says {status} but the prediction API still reports {}", job.status),
            },
            Path::Watch(watch) => {
                let what = format!("prediction {}", self.id);
                cx.next_poll(&what, &job.status, watch.polls, watch.horizon_at, |polls, delay| {
                    ReplicateWatchMessage { polls, ..watch.clone() }.outgoing(Some(delay))
                })
            }
        })
    }

    fn event(&self, job: Job, now: OffsetDateTime) -> NormalizedEvent {
        // Keyed by prediction and type: every path to one prediction gives one id.
        let event_type = terminal_type(job.state);
        NormalizedEvent::for_job(PROVIDER, &self.id, event_type, job, self.received_at(), now)
    }

    fn abandoned(&self, abandonment: &Abandonment, now: OffsetDateTime) -> Option<NormalizedEvent> {
        Some(NormalizedEvent::abandoned(PROVIDER, &self.id, abandonment, self.received_at(), now))
    }
}

impl Prediction {
    /// When genhook first heard of the prediction: the event's `received_at`.
    fn received_at(&self) -> String {
        match &self.path {
            Path::Final { received_at, .. } => received_at.clone(),
            Path::Watch(watch) => watch.registered_at.clone(),
        }
    }
}
