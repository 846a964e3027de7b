//! Replicate's sweep: the safety net for predictions nobody registered and whose
//! webhooks never came. Replicate lists an account's predictions
//! (`GET /v1/predictions?created_after=…&created_before=…`, 100 a page, newest first,
//! `next` the following page's URL); a `replicate.sweep` message reads one page, and
//! registers a watch for every prediction on it that has ended, so the worker publishes
//! each under its prediction's key: once, whichever of its webhook, its watch and the
//! sweep comes first, and not at all when it already was (the lease finds the key
//! PUBLISHED without reading the prediction).
//!
//! A sweep is a chain of messages, one page each, carrying the window it started with
//! and the next page's URL, so it resumes where it stopped after any failure and reads at
//! most [`Sweeping::max_pages`] pages. The stack's schedule (and `genhook sweep`) puts
//! its first message, with only the lookback, on the inbox.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tracing::warn;

use crate::domain::clock::rfc3339;
use crate::domain::dedupe::body_sha256;
use crate::domain::inbox::to_json;
use crate::ports::provider::{Step, WorkContext};
use crate::ports::{JobApi, JobApiError, JobPage, OutgoingMessage};

use super::PROVIDER;
use super::message::ReplicateMessage;
use super::watch::registration;

/// The dedupe key every sweep message carries (a sweep publishes nothing itself).
pub const SWEEP_KEY: &str = "replicate#sweep";

/// How far back a sweep looks by default (`REPLICATE_SWEEP_LOOKBACK_SECS`): Replicate
/// removes an API prediction's files an hour after it ends.
pub const DEFAULT_LOOKBACK: Duration = Duration::from_secs(60 * 60);

/// The longest lookback a sweep message may ask for (a week).
pub const MAX_LOOKBACK: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// The most pages one sweep reads by default (`REPLICATE_SWEEP_MAX_PAGES`): 1,000
/// predictions.
pub const DEFAULT_MAX_PAGES: u32 = 10;

/// The longest page cursor (the `next` URL Replicate gives) a message carries.
pub const MAX_CURSOR_CHARS: usize = 2048;

/// How sweeps run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sweeping {
    /// The most pages one sweep reads.
    pub max_pages: u32,
    /// How long the watches it registers poll (they read once: the prediction has ended).
    pub horizon: Duration,
}

impl Default for Sweeping {
    fn default() -> Self {
        Self { max_pages: DEFAULT_MAX_PAGES, horizon: super::watch::DEFAULT_HORIZON }
    }
}

/// `replicate.sweep`: one page of a sweep of the predictions created in a window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicateSweepMessage {
    /// Always [`SWEEP_KEY`].
    pub dedupe_key: String,
    /// How far back the sweep looks from its first page (seconds, at most
    /// [`MAX_LOOKBACK`]).
    pub lookback_secs: u64,
    /// The window's start (RFC 3339), fixed by the first page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// The window's end (RFC 3339), fixed by the first page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    /// The page to read (the previous page's `next`); the first page when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    /// Pages read before this one.
    #[serde(default)]
    pub page: u32,
}

impl ReplicateSweepMessage {
    /// The first message of a sweep looking `lookback` back from when it is worked.
    pub fn start(lookback: Duration) -> Self {
        Self {
            dedupe_key: SWEEP_KEY.into(),
            lookback_secs: lookback.as_secs(),
            from: None,
            until: None,
            cursor: None,
            page: 0,
        }
    }

    /// The queue message.
    pub fn outgoing(&self) -> OutgoingMessage {
        let body = to_json(&ReplicateMessage::Sweep(self.clone()));
        OutgoingMessage {
            dedup_id: Some(body_sha256(body.as_bytes())),
            body,
            attributes: vec![("provider".into(), PROVIDER.into()), ("message_type".into(), "replicate.sweep".into())],
            group_id: Some(SWEEP_KEY.into()),
            delay: None,
        }
    }

    /// The window this page sweeps: the one the first page fixed, or `lookback` back
    /// from `now`.
    fn window(&self, now: OffsetDateTime) -> Result<(OffsetDateTime, OffsetDateTime), String> {
        let parse = |s: &String| {
            OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
                .map_err(|e| format!("malformed replicate.sweep: {s:?} is not an RFC 3339 time: {e}"))
        };
        if self.lookback_secs > MAX_LOOKBACK.as_secs() {
            return Err(format!("malformed replicate.sweep: lookback_secs must be at most {}", MAX_LOOKBACK.as_secs()));
        }
        match (&self.from, &self.until) {
            (Some(from), Some(until)) => Ok((parse(from)?, parse(until)?)),
            _ => {
                let back = time::Duration::seconds(i64::try_from(self.lookback_secs).unwrap_or(i64::MAX));
                Ok((now.checked_sub(back).unwrap_or(now), now))
            }
        }
    }
}

/// What one sweep message does: reads its page and returns the messages to send (a
/// watch for each prediction that has ended, then the next page), or the step to take
/// instead.
pub async fn sweep_page(api: &dyn JobApi, msg: ReplicateSweepMessage, sweeping: Sweeping, cx: &WorkContext) -> Step {
    if msg.page >= sweeping.max_pages {
        return Step::Skip {
            reason: format!(
                "the sweep stopped after {} pages (REPLICATE_SWEEP_MAX_PAGES); older predictions in its window are left to their webhooks and watches",
                msg.page
            ),
        };
    }
    if msg.cursor.as_ref().is_some_and(|c| c.chars().count() > MAX_CURSOR_CHARS) {
        return Step::Dead {
            reason: format!("malformed replicate.sweep: the cursor is over {MAX_CURSOR_CHARS} characters"),
        };
    }
    let (from, until) = match msg.window(cx.now) {
        Ok(w) => w,
        Err(reason) => return Step::Dead { reason },
    };
    let JobPage { jobs, next } = match api.list_jobs(from, until, msg.cursor.as_deref()).await {
        Ok(page) => page,
        Err(JobApiError::RateLimited { retry_after }) => {
            let delay = retry_after.unwrap_or(cx.retry_delay()).max(cx.retry_delay());
            return Step::Retry { delay, reason: "rate limited listing predictions".into() };
        }
        Err(JobApiError::Transient { reason, retry_after }) => {
            let delay = retry_after.unwrap_or(cx.retry_delay()).max(cx.retry_delay());
            return Step::Retry { delay, reason: format!("listing predictions: {reason}") };
        }
        Err(e @ JobApiError::Permanent { .. }) => return Step::Dead { reason: format!("listing predictions: {e}") },
    };
    let listed = jobs.len();
    // Each ended prediction is registered as `genhook watch` would register it.
    let mut messages: Vec<OutgoingMessage> = jobs
        .into_iter()
        .filter(|j| j.state.is_terminal())
        .filter_map(|j| match registration(&j.id, sweeping.horizon, cx.now) {
            Ok(watch) => Some(watch.outgoing(None)),
            Err(e) => {
                warn!(provider = PROVIDER, error = %e, "the prediction list has an id genhook cannot take: skipped");
                None
            }
        })
        .collect();
    let ended = messages.len();
    if let Some(cursor) = next {
        let following = ReplicateSweepMessage {
            from: Some(rfc3339(from)),
            until: Some(rfc3339(until)),
            cursor: Some(cursor),
            page: msg.page.saturating_add(1),
            ..msg
        };
        messages.push(following.outgoing());
    }
    Step::Fanout {
        messages,
        reason: format!(
            "swept page {}: {listed} predictions listed, {ended} ended and registered",
            msg.page.saturating_add(1)
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use async_trait::async_trait;
    use time::macros::datetime;

    use super::*;
    use crate::domain::backoff::Backoff;
    use crate::domain::job::{Job, JobState};
    use crate::ports::ListedJob;

    const NOW: OffsetDateTime = datetime!(2026-12-07 12:00:00 UTC);

    /// Lists one page of predictions and records what it was asked.
    struct Lister {
        page: Result<JobPage, JobApiError>,
        asked: Mutex<Vec<(OffsetDateTime, OffsetDateTime, Option<String>)>>,
    }

    #[async_trait]
    impl JobApi for Lister {
        async fn get_job(&self, _: &str) -> Result<Job, JobApiError> {
            unreachable!("a sweep page reads no prediction")
        }

        async fn list_jobs(
            &self,
            from: OffsetDateTime,
            until: OffsetDateTime,
            cursor: Option<&str>,
        ) -> Result<JobPage, JobApiError> {
            self.asked.lock().unwrap().push((from, until, cursor.map(str::to_string)));
            self.page.clone()
        }
    }

    fn cx() -> WorkContext {
        WorkContext { attempt: 1, now: NOW, backoff: Backoff::default(), poll_seq: 0 }
    }

    fn listed(id: &str, state: JobState) -> ListedJob {
        ListedJob { id: id.into(), state }
    }

    #[tokio::test]
    async fn a_page_registers_the_ended_predictions_and_the_next_page() {
        let page = JobPage {
            jobs: vec![
                listed("p_done", JobState::Succeeded),
                listed("p_running", JobState::Pending),
                listed("p_failed", JobState::Failed),
                listed("", JobState::Succeeded),
            ],
            next: Some("https://api.replicate.com/v1/predictions?cursor=abc".into()),
        };
        let api = Lister { page: Ok(page), asked: Mutex::default() };
        let step = sweep_page(&api, ReplicateSweepMessage::start(DEFAULT_LOOKBACK), Sweeping::default(), &cx()).await;
        let Step::Fanout { messages, reason } = step else { panic!("{step:?}") };
        assert!(reason.contains("4 predictions listed, 2 ended"), "{reason}");
        let bodies: Vec<serde_json::Value> = messages.iter().map(|m| serde_json::from_str(&m.body).unwrap()).collect();
        assert_eq!(bodies.len(), 3);
        assert_eq!(
            (bodies[0]["type"].as_str(), bodies[0]["prediction_id"].as_str()),
            (Some("replicate.watch"), Some("p_done"))
        );
        assert_eq!(bodies[1]["prediction_id"], "p_failed");
        // The next page keeps the window the first fixed.
        let next: ReplicateSweepMessage = serde_json::from_value(bodies[2].clone())
            .map(|m| match m {
                ReplicateMessage::Sweep(s) => s,
                other => panic!("{other:?}"),
            })
            .unwrap();
        assert_eq!(
            (next.page, next.cursor.as_deref()),
            (1, Some("https://api.replicate.com/v1/predictions?cursor=abc"))
        );
        assert_eq!(
            (next.from.as_deref(), next.until.as_deref()),
            (Some("2026-12-07T11:00:00Z"), Some("2026-12-07T12:00:00Z"))
        );
        assert_eq!(api.asked.lock().unwrap()[0], (NOW - time::Duration::hours(1), NOW, None));
        // Worked later, the next page asks for the same window.
        let api = Lister { page: Ok(JobPage::default()), asked: Mutex::default() };
        let later = WorkContext { now: NOW + time::Duration::minutes(5), ..cx() };
        let Step::Fanout { messages, .. } = sweep_page(&api, next, Sweeping::default(), &later).await else { panic!() };
        assert!(messages.is_empty());
        let asked = api.asked.lock().unwrap()[0].clone();
        assert_eq!((asked.0, asked.1), (NOW - time::Duration::hours(1), NOW));
    }

    #[tokio::test]
    async fn sweeps_are_bounded_and_odd_messages_refused() {
        let api = Lister { page: Ok(JobPage::default()), asked: Mutex::default() };
        let last = ReplicateSweepMessage { page: DEFAULT_MAX_PAGES, ..ReplicateSweepMessage::start(DEFAULT_LOOKBACK) };
        assert!(matches!(sweep_page(&api, last, Sweeping::default(), &cx()).await, Step::Skip { .. }));
        let long = ReplicateSweepMessage {
            lookback_secs: MAX_LOOKBACK.as_secs() + 1,
            ..ReplicateSweepMessage::start(DEFAULT_LOOKBACK)
        };
        assert!(matches!(sweep_page(&api, long, Sweeping::default(), &cx()).await, Step::Dead { .. }));
        let odd = ReplicateSweepMessage {
            from: Some("yesterday".into()),
            until: Some("today".into()),
            ..ReplicateSweepMessage::start(DEFAULT_LOOKBACK)
        };
        assert!(matches!(sweep_page(&api, odd, Sweeping::default(), &cx()).await, Step::Dead { .. }));
        assert!(api.asked.lock().unwrap().is_empty(), "none of them read a page");
        // A rate limit waits; a refusal is dead-lettered.
        let limited = Lister {
            page: Err(JobApiError::RateLimited { retry_after: Some(Duration::from_secs(30)) }),
            asked: Mutex::default(),
        };
        let step =
            sweep_page(&limited, ReplicateSweepMessage::start(DEFAULT_LOOKBACK), Sweeping::default(), &cx()).await;
        assert!(matches!(step, Step::Retry { delay, .. } if delay >= Duration::from_secs(30)), "{step:?}");
    }
}
