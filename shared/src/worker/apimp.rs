//! The worker's APIMP paths. Callbacks are hints and polls are timers; both end in the
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

use tracing::info;

use super::{Budget, Outcome, Worker};
use crate::domain::clock::rfc3339;
use crate::domain::dedupe::{dedupe_key, event_id};
use crate::domain::event::{EventOutput, NormalizedEvent, SCHEMA_VERSION};
use crate::domain::inbox::{ApimpCallbackMessage, ApimpWatchMessage};
use crate::domain::watch::Watch;
use crate::ports::MAX_DELAY;
use crate::providers::apimp::PROVIDER;
use crate::providers::apimp::api::{ApimpTask, media_from_url};
use crate::domain::job::JobState;
use crate::providers::apimp::watch::watch_message;
use crate::providers::katalo::{COMPLETED, FAILED};

/// What the publishing path knows besides the task itself.
struct Context<'a> {
    watch: &'a Watch,
    upstream_task_id: Option<&'a str>,
    received_at: &'a str,
}

impl Worker {
    /// The watch of a callback's reference; or why the callback cannot be worked yet.
    /// Waiting for a registration backs off with the receive count, so a late
    /// registration has hours (20 receives, up to 15 minutes apart) before the DLQ.
    pub(super) async fn resolve_callback(
        &self,
        m: &ApimpCallbackMessage,
        receive_count: u32,
    ) -> Result<Watch, Outcome> {
        if !m.state.is_terminal() {
            info!(key = %m.dedupe_key, status = %m.status, "progress callback: deduped and dropped");
            return Err(Outcome::Skip);
        }
        match self.ports.watches.get_watch(&m.reference).await {
            Ok(Some(w)) => Ok(w),
            Ok(None) => Err(Outcome::Retry {
                delay: self.settings.backoff.delay(receive_count),
                reason: format!("no task registered for reference {} yet (genhook watch)", m.reference),
            }),
            Err(e) => Err(Outcome::Retry { delay: self.settings.backoff.delay(receive_count), reason: e.to_string() }),
        }
    }

    /// Records a registration; `Err` is the retry when the store is down, or the dead
    /// letter when the reference is already registered to another task (a registration
    /// never replaces another).
    pub(super) async fn register_watch(&self, m: &ApimpWatchMessage) -> Result<(), Outcome> {
        if m.polls > 0 {
            return Ok(());
        }
        let in_force = self.ports.watches.put_watch(&m.watch).await.map_err(|e| Outcome::Retry {
            delay: self.settings.backoff.delay(1),
            reason: format!("cannot record the watch: {e}"),
        })?;
        if in_force.task_id != m.watch.task_id {
            return Err(Outcome::Dead {
                reason: format!(
                    "reference {} is already registered to task {}; not replaced by task {}",
                    m.watch.reference, in_force.task_id, m.watch.task_id
                ),
            });
        }
        Ok(())
    }

    /// One poll of a watched task.
    pub(super) async fn poll_apimp(&self, m: &ApimpWatchMessage, receive_count: u32, budget: Budget) -> Outcome {
        let cx = Context { watch: &m.watch, upstream_task_id: None, received_at: &m.watch.registered_at };
        match self.read_terminal_task(&cx, receive_count, budget).await {
            Ok(outcome) => outcome,
            Err(task) => {
                let now = self.ports.clock.now().unix_timestamp();
                if now >= m.watch.horizon_at {
                    return Outcome::Dead {
                        reason: format!("polling horizon passed; task {} is still {}", m.watch.task_id, task.status),
                    };
                }
                let polls = m.polls.saturating_add(1);
                let delay = self.settings.backoff.delay(polls).min(MAX_DELAY);
                let next = ApimpWatchMessage { polls, ..m.clone() };
                Outcome::Reschedule {
                    message: watch_message(&next, Some(delay)),
                    from: m.polls,
                    reason: format!(
                        "task is still {}; poll {} in {} s",
                        task.status,
                        polls.saturating_add(1),
                        delay.as_secs()
                    ),
                }
            }
        }
    }

    /// Confirms a terminal callback with APIMP.
    pub(super) async fn confirm_apimp_callback(
        &self,
        m: &ApimpCallbackMessage,
        watch: &Watch,
        receive_count: u32,
        budget: Budget,
    ) -> Outcome {
        let cx = Context { watch, upstream_task_id: Some(&m.upstream_task_id), received_at: &m.received_at };
        let mut outcome =
            self.read_terminal_task(&cx, receive_count, budget).await.unwrap_or_else(|task| Outcome::Retry {
                delay: self.settings.backoff.delay(receive_count),
                reason: format!("the upstream says {} but APIMP still reports {}", m.status, task.status),
            });
        if let Outcome::Publish(e) = &mut outcome {
            e.upstream = Some(m.upstream.as_str().to_string());
        }
        outcome
    }

    /// Reads the task; the outcome when it is terminal (publish, or an error's retry /
    /// dead letter), or the still-running task.
    async fn read_terminal_task(
        &self,
        cx: &Context<'_>,
        receive_count: u32,
        budget: Budget,
    ) -> Result<Outcome, ApimpTask> {
        let Some(api) = &self.ports.apimp else {
            return Ok(Outcome::Dead { reason: "APIMP_API_KEY is not configured: cannot confirm APIMP tasks".into() });
        };
        let mut refreshes = 0;
        loop {
            if !self.can_call_provider(budget) {
                return Ok(Outcome::Deferred);
            }
            let task = match api.get_task(&cx.watch.task_id).await {
                Ok(t) => t,
                Err(e) => return Ok(self.api_error_outcome(e, receive_count)),
            };
            if !task.state.is_terminal() {
                return Err(task);
            }
            let now = self.ports.clock.now();
            if !self.urls_live_long_enough(&task.files, now) {
                if refreshes < self.settings.max_url_refreshes {
                    refreshes += 1;
                    continue;
                }
                let reason = format!(
                    "output URLs expire within {} s even after re-reading the task",
                    self.settings.min_url_ttl.as_secs()
                );
                return Ok(Outcome::Retry { delay: self.settings.backoff.delay(receive_count), reason });
            }
            return Ok(Outcome::Publish(Box::new(apimp_event(cx, task, now))));
        }
    }
}

fn apimp_event(cx: &Context<'_>, task: ApimpTask, now: time::OffsetDateTime) -> NormalizedEvent {
    let event_type = if task.state == JobState::Succeeded { COMPLETED } else { FAILED };
    NormalizedEvent {
        schema_version: SCHEMA_VERSION.into(),
        // Keyed by task and type: a callback and a poll of one task give one id.
        event_id: event_id(&dedupe_key(PROVIDER, &cx.watch.task_id, event_type)),
        event_type: event_type.into(),
        provider: PROVIDER.into(),
        job_id: cx.watch.task_id.clone(),
        status: task.status,
        outputs: task
            .files
            .into_iter()
            .map(|f| EventOutput {
                media: media_from_url(&f.url).map(str::to_string),
                expires_at: f.expires_at.map(rfc3339),
                url: f.url,
            })
            .collect(),
        failure: (task.state == JobState::Failed)
            .then(|| serde_json::json!({"message": task.error_message.unwrap_or_else(|| "the task failed".into())})),
        reference: Some(serde_json::Value::String(cx.watch.reference.clone())),
        metadata: task.progress.map(|p| serde_json::json!({"progress": p})),
        source_asset_id: None,
        received_at: cx.received_at.to_string(),
        reconciled_at: rfc3339(now),
        upstream: cx.watch.upstream.map(|u| u.as_str().to_string()),
        upstream_task_id: cx.upstream_task_id.map(str::to_string),
    }
}
