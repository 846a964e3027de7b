//! APIMP's reconciling side. Callbacks are hints and polls are timers; both end in the
//! same place: read `GET /api/generate/status/{task_id}` and, once the task is terminal
//! with URLs that live long enough, publish one event under the task's key.
//!
//! - `apimp.watch` records reference → task id (first delivery only), then polls: a
//!   running task is polled again later by sending the message anew with an SQS delay
//!   (so receive counts never push a long-running task into the DLQ), until the task
//!   is terminal or the horizon passes.
//! - `apimp.callback` finds its task through the reference's watch; before the watch is
//!   registered it waits (retry with backoff). Progress callbacks (non-terminal) are
//!   deduped by the receiver and dropped here: genhook publishes terminal events only.

use std::sync::Arc;

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::domain::abandon::Abandonment;
use crate::domain::event::{NormalizedEvent, terminal_type};
use crate::domain::job::Job;
use crate::domain::watch::Watch;
use crate::ports::provider::{Reconciler, Reconciliation, Step, WorkContext};
use crate::ports::{JobApi, JobApiError, WatchStore};
use crate::providers::apimp::upstream::Upstream;
use crate::providers::common::refresh::Refresh;

use super::PROVIDER;
use super::api::media_from_url;
use super::message::{ApimpCallbackMessage, ApimpMessage, ApimpWatchMessage, publish_key, watch_message};

/// Reconciles `apimp.*` messages with APIMP's status API and the task watches.
pub struct ApimpReconciler {
    api: Arc<dyn JobApi>,
    watches: Arc<dyn WatchStore>,
}

impl ApimpReconciler {
    /// Reads tasks through `api` (its jobs are APIMP tasks); watches live in `watches`.
    pub fn new(api: Arc<dyn JobApi>, watches: Arc<dyn WatchStore>) -> Self {
        Self { api, watches }
    }

    /// The watch of a callback's reference; or why the callback cannot be worked yet.
    /// Waiting for a registration backs off with the receive count, so a late
    /// registration has hours (20 receives, up to 15 minutes apart) before the DLQ.
    async fn resolve_callback(&self, m: &ApimpCallbackMessage, cx: &WorkContext) -> Result<Watch, Step> {
        if !m.state.is_terminal() {
            return Err(Step::Skip { reason: format!("progress callback ({}): deduped and dropped", m.status) });
        }
        match self.watches.get_watch(&m.reference).await {
            Ok(Some(w)) => Ok(w),
            Ok(None) => Err(Step::Retry {
                delay: cx.retry_delay(),
                reason: format!("no task registered for reference {} yet (genhook watch)", m.reference),
            }),
            Err(e) => Err(Step::Retry { delay: cx.retry_delay(), reason: e.to_string() }),
        }
    }

    /// Records a registration; `Err` is the retry when the store is down, or the dead
    /// letter when the reference is already registered to another task (a registration
    /// never replaces another).
    async fn register_watch(&self, m: &ApimpWatchMessage, cx: &WorkContext) -> Result<(), Step> {
        if m.polls > 0 {
            return Ok(());
        }
        let in_force = self
            .watches
            .put_watch(&m.watch)
            .await
            .map_err(|e| Step::Retry { delay: cx.backoff.delay(1), reason: format!("cannot record the watch: {e}") })?;
        if in_force.task_id != m.watch.task_id {
            return Err(Step::Dead {
                reason: format!(
                    "reference {} is already registered to task {}; not replaced by task {}",
                    m.watch.reference, in_force.task_id, m.watch.task_id
                ),
            });
        }
        Ok(())
    }
}

#[async_trait]
impl Reconciler for ApimpReconciler {
    fn provider(&self) -> &'static str {
        PROVIDER
    }

    fn upstreams(&self) -> &'static [&'static str] {
        &Upstream::NAMES
    }

    async fn prepare(&self, body: &str, cx: &WorkContext) -> Result<Box<dyn Reconciliation>, Step> {
        let message: ApimpMessage = Step::parse_message(body)?;
        let (watch, path) = match message {
            ApimpMessage::Watch(m) => {
                self.register_watch(&m, cx).await?;
                (m.watch.clone(), Path::Poll(m))
            }
            ApimpMessage::Callback(m) => (self.resolve_callback(&m, cx).await?, Path::Callback(m)),
            ApimpMessage::Refresh(req) => return Refresh::prepare(self.api.clone(), PROVIDER, req, Some(guess_media)),
        };
        Ok(Box::new(ApimpTask { api: self.api.clone(), key: publish_key(&watch.task_id), watch, path }))
    }
}

/// How a task came to be read.
enum Path {
    /// A registration or a scheduled poll.
    Poll(ApimpWatchMessage),
    /// A terminal callback from an upstream.
    Callback(ApimpCallbackMessage),
}

/// One task's reconciliation, under the task's key.
struct ApimpTask {
    api: Arc<dyn JobApi>,
    key: String,
    watch: Watch,
    path: Path,
}

#[async_trait]
impl Reconciliation for ApimpTask {
    fn key(&self) -> &str {
        &self.key
    }

    async fn read(&self) -> Result<Job, JobApiError> {
        self.api.get_job(&self.watch.task_id).await
    }

    fn assess(&self, task: &Job, cx: &WorkContext) -> Option<Step> {
        if task.state.is_terminal() {
            return None;
        }
        Some(match &self.path {
            Path::Callback(m) => Step::Retry {
                delay: cx.retry_delay(),
                reason: format!("the upstream says {} but APIMP still reports {}", m.status, task.status),
            },
            Path::Poll(m) => {
                let what = format!("task {}", m.watch.task_id);
                cx.next_poll(&what, &task.status, m.polls, m.watch.horizon_at, |polls, delay| {
                    watch_message(&ApimpWatchMessage { polls, ..m.clone() }, Some(delay))
                })
            }
        })
    }

    fn event(&self, task: Job, now: OffsetDateTime) -> NormalizedEvent {
        let (received_at, upstream_task_id, upstream) = match &self.path {
            Path::Poll(_) => {
                (self.watch.registered_at.as_str(), None, self.watch.upstream.as_deref().and_then(Upstream::parse))
            }
            // The upstream that called back, over the one registered.
            Path::Callback(m) => (m.received_at.as_str(), Some(m.upstream_task_id.clone()), Some(m.upstream)),
        };
        apimp_event(&self.watch, task, received_at, upstream_task_id, upstream, now)
    }

    fn abandoned(&self, abandonment: &Abandonment, now: OffsetDateTime) -> Option<NormalizedEvent> {
        let (received_at, upstream_task_id, upstream) = match &self.path {
            Path::Poll(_) => (self.watch.registered_at.clone(), None, self.watch.upstream.clone()),
            Path::Callback(m) => {
                (m.received_at.clone(), Some(m.upstream_task_id.clone()), Some(m.upstream.as_str().to_string()))
            }
        };
        let mut e = NormalizedEvent::abandoned(PROVIDER, &self.watch.task_id, abandonment, received_at, now);
        e.reference = Some(serde_json::Value::String(self.watch.reference.clone()));
        e.upstream = upstream;
        e.upstream_task_id = upstream_task_id;
        Some(e)
    }
}

/// APIMP's `file_type` is always "image": each output's media is guessed from its URL.
fn guess_media(e: &mut NormalizedEvent) {
    for output in &mut e.outputs {
        output.media = media_from_url(&output.url).map(str::to_string);
    }
}

fn apimp_event(
    watch: &Watch,
    task: Job,
    received_at: &str,
    upstream_task_id: Option<String>,
    upstream: Option<Upstream>,
    now: OffsetDateTime,
) -> NormalizedEvent {
    // Keyed by task and type: a callback and a poll of one task give one id.
    let event_type = terminal_type(task.state);
    let mut e = NormalizedEvent::for_job(PROVIDER, &watch.task_id, event_type, task, received_at.to_string(), now);
    guess_media(&mut e);
    e.reference = Some(serde_json::Value::String(watch.reference.clone()));
    e.upstream = upstream.map(|u| u.as_str().to_string());
    e.upstream_task_id = upstream_task_id;
    e
}
