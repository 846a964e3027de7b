//! A fake Katalo API on loopback: `GET /api/v1/generations/{job_id}` answers from a
//! per-job script (the last answer repeats) and counts calls.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::proxy::Gate;

/// The API key the fake expects.
pub const API_KEY: &str = "test-katalo-api-key";

/// One scripted answer.
#[derive(Debug, Clone)]
pub enum Answer {
    /// 200 with this job JSON.
    Job(Value),
    /// This status with this body, and a `Retry-After` header if given.
    Error(u16, Value, Option<u64>),
    /// Sleep, then answer 200 with the job (to trip client timeouts).
    Slow(Duration, Value),
    /// Wait until the gate opens, then answer 200 with the job (to keep a worker busy
    /// reconciling for exactly as long as a test needs).
    Gated(Gate, Value),
}

#[derive(Default)]
struct Script {
    answers: VecDeque<Answer>,
    calls: u32,
}

type Jobs = Arc<Mutex<HashMap<String, Script>>>;

/// The running fake.
pub struct FakeKatalo {
    /// Base URL to configure as `KATALO_API_BASE_URL`.
    pub base_url: String,
    jobs: Jobs,
}

impl FakeKatalo {
    /// Starts the fake on an ephemeral loopback port.
    pub async fn start() -> Self {
        let jobs: Jobs = Arc::default();
        let app = Router::new().route("/api/v1/generations/{job_id}", get(job)).with_state(jobs.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.expect("fake Katalo serves") });
        Self { base_url, jobs }
    }

    /// Sets the answers for `job_id`.
    pub fn script(&self, job_id: &str, answers: Vec<Answer>) {
        self.jobs.lock().unwrap().insert(job_id.to_string(), Script { answers: answers.into(), calls: 0 });
    }

    /// How many times `job_id` was read.
    pub fn calls(&self, job_id: &str) -> u32 {
        self.jobs.lock().unwrap().get(job_id).map_or(0, |s| s.calls)
    }
}

async fn job(State(jobs): State<Jobs>, Path(job_id): Path<String>, headers: HeaderMap) -> Response {
    if headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) != Some(&format!("Bearer {API_KEY}")) {
        return error(
            401,
            json!({"error": {"code": "unauthorized", "message": "bad API key", "retryable": false}}),
            None,
        );
    }
    let answer = {
        let mut jobs = jobs.lock().unwrap();
        match jobs.get_mut(&job_id) {
            None => None,
            Some(s) => {
                s.calls += 1;
                if s.answers.len() > 1 { s.answers.pop_front() } else { s.answers.front().cloned() }
            }
        }
    };
    match answer {
        None => {
            error(404, json!({"error": {"code": "not_found", "message": "job not found", "retryable": false}}), None)
        }
        Some(Answer::Job(v)) => ([(header::CACHE_CONTROL, "no-store")], axum::Json(v)).into_response(),
        Some(Answer::Error(status, body, retry_after)) => error(status, body, retry_after),
        Some(Answer::Slow(d, v)) => {
            tokio::time::sleep(d).await;
            axum::Json(v).into_response()
        }
        Some(Answer::Gated(gate, v)) => {
            gate.wait().await;
            axum::Json(v).into_response()
        }
    }
}

fn error(status: u16, body: Value, retry_after: Option<u64>) -> Response {
    let mut r = (StatusCode::from_u16(status).unwrap(), axum::Json(body)).into_response();
    if let Some(s) = retry_after {
        r.headers_mut().insert(header::RETRY_AFTER, s.into());
    }
    r
}

/// An S3 SigV4-style presigned URL signed at `signed_at`, valid for `expires_in` seconds.
pub fn s3_url(object: &str, signed_at: OffsetDateTime, expires_in: i64) -> String {
    let date = format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        signed_at.year(),
        u8::from(signed_at.month()),
        signed_at.day(),
        signed_at.hour(),
        signed_at.minute(),
        signed_at.second()
    );
    format!(
        "https://katalo-outputs.s3.amazonaws.com/{object}?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAEXAMPLE%2F20261123%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date={date}&X-Amz-Expires={expires_in}&X-Amz-SignedHeaders=host&X-Amz-Signature=deadbeef"
    )
}

/// A succeeded job whose one output URL was signed now and lives `ttl` seconds.
pub fn succeeded(job_id: &str, ttl: i64) -> Value {
    json!({
        "job_id": job_id,
        "status": "succeeded",
        "source_asset_id": "src_01JXAMPLE",
        "reference": "listing-123",
        "metadata": {"tenant": "acme"},
        "outputs": [{"url": s3_url(&format!("{job_id}/primary.png"), OffsetDateTime::now_utc(), ttl)}]
    })
}

/// A job in a non-terminal state.
pub fn pending(job_id: &str, status: &str) -> Value {
    json!({"job_id": job_id, "status": status, "outputs": []})
}
