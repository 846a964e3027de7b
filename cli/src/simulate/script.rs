//! Scripted job reads: for the jobs a test names, the job API answers exactly the
//! answers given, in order, the last one repeating, and counts the reads. A scripted
//! job's reads skip the job book; the rest of the API (the key, the rate limit, injected
//! errors) applies as to any read.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use tokio::sync::watch;

/// One scripted answer to a job read.
#[derive(Debug, Clone)]
pub enum Answer {
    /// 200 with this job JSON.
    Job(Value),
    /// This status with this body, and a `Retry-After` header (seconds) if given.
    Error(u16, Value, Option<u64>),
    /// Sleeps, then answers 200 with the job (to trip client timeouts).
    Slow(Duration, Value),
    /// Waits until the gate opens, then answers 200 with the job (to keep a reader busy
    /// for exactly as long as a test needs).
    Gated(Gate, Value),
}

/// A one-way gate: closed until [`Gate::open`], then open for good.
#[derive(Clone, Debug)]
pub struct Gate(Arc<watch::Sender<bool>>);

impl Default for Gate {
    fn default() -> Self {
        Self::new()
    }
}

impl Gate {
    /// A closed gate.
    pub fn new() -> Self {
        Self(Arc::new(watch::channel(false).0))
    }

    /// Opens the gate, releasing every waiter.
    pub fn open(&self) {
        self.0.send_replace(true);
    }

    /// Waits until the gate is open.
    pub async fn wait(&self) {
        let mut rx = self.0.subscribe();
        // The sender lives in `self`, so the channel cannot close while this waits.
        let _ = rx.wait_for(|open| *open).await;
    }
}

#[derive(Default)]
struct Script {
    answers: VecDeque<Answer>,
    calls: u32,
}

/// The scripted jobs of one API.
#[derive(Default)]
pub(super) struct Scripts(Mutex<HashMap<String, Script>>);

impl Scripts {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Script>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sets the answers for `job_id` (and its read count back to zero).
    pub(super) fn set(&self, job_id: &str, answers: Vec<Answer>) {
        self.lock().insert(job_id.to_string(), Script { answers: answers.into(), calls: 0 });
    }

    /// How many times `job_id`'s script was read.
    pub(super) fn calls(&self, job_id: &str) -> u32 {
        self.lock().get(job_id).map_or(0, |s| s.calls)
    }

    /// The next answer for `job_id`, counted; `None` when it has no script.
    pub(super) fn next(&self, job_id: &str) -> Option<Answer> {
        let mut scripts = self.lock();
        let script = scripts.get_mut(job_id)?;
        script.calls = script.calls.saturating_add(1);
        if script.answers.len() > 1 { script.answers.pop_front() } else { script.answers.front().cloned() }
    }
}

/// The HTTP answer of a scripted read.
pub(super) async fn respond(answer: Answer) -> Response {
    let job = |v: Value| {
        let mut r = axum::Json(v).into_response();
        r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        r
    };
    match answer {
        Answer::Job(v) => job(v),
        Answer::Error(status, body, retry_after) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut r = (status, axum::Json(body)).into_response();
            if let Some(s) = retry_after {
                r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(s));
            }
            r
        }
        Answer::Slow(d, v) => {
            tokio::time::sleep(d).await;
            job(v)
        }
        Answer::Gated(gate, v) => {
            gate.wait().await;
            job(v)
        }
    }
}
