//! The fake Katalo API: `GET /api/v1/generations/{job_id}` (Bearer key, rate limit,
//! injected transient errors, fresh signed URLs on every read), `POST
//! /api/v1/generations`, the signed output files under `/files/`, and `/healthz`. The
//! same jobs are Replicate predictions at `GET /v1/predictions/{id}` (same key, limit
//! and injected errors, with Replicate's problem-details error bodies).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::files::{PNG, s3_error};
use super::jobs::{JobBook, JobOutcome, JobRecord, JobSpec, Phase};
use super::limit::{TokenBucket, retry_after_secs};
use super::script::{self, Answer, Scripts};
use super::urls::{Denied, UrlSigner};
use super::{Provider, SimulateError};

/// The API key the simulator accepts unless told otherwise (not a secret).
pub const SIM_API_KEY: &str = "sim_katalo_local_key";

/// The longest `runs_for_ms` `POST /api/v1/generations` accepts (one day).
const MAX_RUNS_FOR: Duration = Duration::from_secs(24 * 3600);

/// How the fake API behaves.
#[derive(Clone, PartialEq)]
pub struct ApiOptions {
    /// The only key `Authorization: Bearer …` accepts.
    pub api_key: String,
    /// Job reads allowed per minute for the key (token bucket, bursts of ten seconds'
    /// worth); `0` turns the limit off. Katalo's read limit is 1,200.
    pub rate_limit_per_min: u32,
    /// Fraction (0–1) of job reads answered with a retryable 5xx error body instead.
    pub error_rate: f64,
    /// Lifetime of the signed output URLs each read mints (whole seconds, at least one).
    pub url_ttl: Duration,
    /// Answer reads of unknown job ids as jobs that already succeeded (instead of 404),
    /// so webhooks the simulator did not send itself (e.g. `genhook trigger`'s) reconcile.
    pub adopt_unknown_jobs: bool,
}

impl Default for ApiOptions {
    /// The simulator key, 1,200 reads a minute, no injected errors, one-hour URLs, unknown
    /// jobs are 404.
    fn default() -> Self {
        Self {
            api_key: SIM_API_KEY.into(),
            rate_limit_per_min: 1200,
            error_rate: 0.0,
            url_ttl: Duration::from_secs(3600),
            adopt_unknown_jobs: false,
        }
    }
}

impl std::fmt::Debug for ApiOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let key = if self.api_key == SIM_API_KEY { SIM_API_KEY } else { "<redacted>" };
        f.debug_struct("ApiOptions")
            .field("api_key", &key)
            .field("rate_limit_per_min", &self.rate_limit_per_min)
            .field("error_rate", &self.error_rate)
            .field("url_ttl", &self.url_ttl)
            .field("adopt_unknown_jobs", &self.adopt_unknown_jobs)
            .finish()
    }
}

impl ApiOptions {
    fn validate(&self) -> Result<(), SimulateError> {
        if self.api_key.trim().is_empty() {
            return Err(SimulateError::invalid("api key", "must not be empty"));
        }
        super::check_fraction("error rate", self.error_rate)
    }
}

/// State shared by the handlers and the [`KataloSimulator`] handle.
struct Shared {
    opts: ApiOptions,
    base_url: String,
    book: JobBook,
    signer: UrlSigner,
    bucket: Mutex<Option<TokenBucket>>,
    /// `Idempotency-Key` → (request body, job id).
    idempotency: Mutex<HashMap<String, (Bytes, String)>>,
    /// Job reads asked for, on every route, whatever the answer.
    reads: AtomicU64,
    /// Jobs whose reads answer a script.
    scripts: Scripts,
}

/// Aborts the server task when the last handle is dropped.
struct ServerTask(tokio::task::JoinHandle<()>);

impl Drop for ServerTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A running fake Katalo API. Cheap to clone; the server stops when the last clone is
/// dropped.
#[derive(Clone)]
pub struct KataloSimulator {
    shared: Arc<Shared>,
    addr: SocketAddr,
    _server: Arc<ServerTask>,
}

impl std::fmt::Debug for KataloSimulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KataloSimulator").field("base_url", &self.shared.base_url).finish_non_exhaustive()
    }
}

impl KataloSimulator {
    /// Binds `listen` (port 0 picks a free port) and serves the API on the current tokio
    /// runtime.
    pub async fn start(listen: SocketAddr, opts: ApiOptions) -> Result<KataloSimulator, SimulateError> {
        opts.validate()?;
        let bind_err = |source| SimulateError::Bind { addr: listen.to_string(), source };
        let listener = tokio::net::TcpListener::bind(listen).await.map_err(bind_err)?;
        let addr = listener.local_addr().map_err(bind_err)?;
        let host = match addr.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        let shared = Arc::new(Shared {
            base_url: format!("http://{}", SocketAddr::new(host, addr.port())),
            book: JobBook::default(),
            signer: UrlSigner::new(opts.url_ttl),
            bucket: Mutex::new(
                (opts.rate_limit_per_min > 0).then(|| TokenBucket::per_minute(opts.rate_limit_per_min, Instant::now())),
            ),
            idempotency: Mutex::default(),
            reads: AtomicU64::new(0),
            scripts: Scripts::default(),
            opts,
        });
        let app = router(shared.clone());
        let server = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "the Katalo simulator stopped serving");
            }
        });
        Ok(KataloSimulator { shared, addr, _server: Arc::new(ServerTask(server)) })
    }

    /// The API's base URL, e.g. `http://127.0.0.1:41234` (use it as `KATALO_API_BASE_URL`).
    pub fn base_url(&self) -> String {
        self.shared.base_url.clone()
    }

    /// How many job reads the API was asked for (Katalo, Replicate and APIMP routes,
    /// whatever the answer).
    pub fn reads(&self) -> u64 {
        self.shared.reads.load(Ordering::Relaxed)
    }

    /// The address the server is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Scripts `job_id`'s reads: each read answers the next of `answers`, the last one
    /// repeating, instead of the job book (see [`script`]).
    pub fn script(&self, job_id: &str, answers: Vec<Answer>) {
        self.shared.scripts.set(job_id, answers);
    }

    /// How many times `job_id`'s scripted reads were answered.
    pub fn calls(&self, job_id: &str) -> u32 {
        self.shared.scripts.calls(job_id)
    }

    /// Creates a job that starts now; returns its id (`job_sim_<random>`).
    pub fn create_job(&self, spec: JobSpec) -> String {
        self.shared.book.create(spec, None)
    }

    /// Creates a Replicate prediction that starts now (listed by `GET /v1/predictions`);
    /// returns its id (`p_sim_<random>`).
    pub fn create_prediction(&self, spec: JobSpec) -> String {
        self.shared.book.create_prediction(spec)
    }

    /// The job's final webhook body as `provider` sends it (Katalo's
    /// `generation.completed` / `generation.failed` event, or the Replicate prediction),
    /// with output URLs minted now; `None` while the job runs or when there is no such job.
    pub fn webhook_body_for(&self, provider: Provider, job_id: &str) -> Option<Vec<u8>> {
        let job = self.shared.book.get(job_id)?;
        let phase = job.phase();
        let body = match provider {
            Provider::Katalo => job.webhook_json(phase, self.shared.outputs(&job, OffsetDateTime::now_utc()))?,
            Provider::Replicate if phase.is_terminal() => self.shared.prediction_json(&job, phase),
            Provider::Replicate => return None,
        };
        serde_json::to_vec(&body).ok()
    }

    /// The job's Katalo webhook body (see [`webhook_body_for`](Self::webhook_body_for)).
    pub fn webhook_body(&self, job_id: &str) -> Option<Vec<u8>> {
        self.webhook_body_for(Provider::Katalo, job_id)
    }

    /// Replicate's first webhook for the job: the prediction as it starts (`starting`).
    pub fn start_body(&self, job_id: &str) -> Option<Vec<u8>> {
        let job = self.shared.book.get(job_id)?;
        serde_json::to_vec(&self.shared.prediction_json(&job, Phase::Queued)).ok()
    }

    /// Waits until the job is finished and returns its final webhook body (see
    /// [`webhook_body_for`](Self::webhook_body_for)); `None` when there is no such job.
    pub async fn wait_for_webhook_body_for(&self, provider: Provider, job_id: &str) -> Option<Vec<u8>> {
        let finishes_at = self.shared.book.get(job_id)?.finishes_at();
        tokio::time::sleep_until(finishes_at.into()).await;
        loop {
            if let Some(body) = self.webhook_body_for(provider, job_id) {
                return Some(body);
            }
            // Only reachable if the clock reads a hair early.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// [`wait_for_webhook_body_for`](Self::wait_for_webhook_body_for) Katalo.
    pub async fn wait_for_webhook_body(&self, job_id: &str) -> Option<Vec<u8>> {
        self.wait_for_webhook_body_for(Provider::Katalo, job_id).await
    }
}

impl Shared {
    /// Fresh signed output URLs for a job (empty unless it succeeded).
    fn outputs(&self, job: &JobRecord, now: OffsetDateTime) -> Vec<Value> {
        (1..=job.outputs)
            .map(|n| {
                let path = format!("/files/{}/{n}.png", job.id);
                let (query, expires_at) = self.signer.sign(&path, now);
                json!({
                    "url": format!("{}{path}?{query}", self.base_url),
                    "expires_at": expires_at.format(&time::format_description::well_known::Rfc3339).ok(),
                    "role": if n == 1 { "primary" } else { "alternate" },
                    "content_type": "image/png",
                })
            })
            .collect()
    }

    /// The job as `provider`'s API answers it now.
    fn job_json(&self, job: &JobRecord, provider: Provider) -> Value {
        let phase = job.phase();
        match provider {
            Provider::Katalo => job.to_json(phase, self.outputs(job, OffsetDateTime::now_utc())),
            Provider::Replicate => self.prediction_json(job, phase),
        }
    }

    /// The job as a Replicate prediction in `phase`, its output URLs minted now.
    fn prediction_json(&self, job: &JobRecord, phase: Phase) -> Value {
        let urls = self.outputs(job, OffsetDateTime::now_utc()).into_iter().map(|o| o["url"].clone()).collect();
        job.prediction_json(phase, urls, &self.base_url)
    }

    /// Whether the request carries the API key.
    fn authorized(&self, headers: &HeaderMap) -> bool {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, key)| key.trim());
        given == Some(self.opts.api_key.as_str())
    }

    /// Takes a token from the key's bucket, or says how long until one is available.
    fn over_limit(&self) -> Option<Duration> {
        lock(&self.bucket).as_mut()?.try_take(Instant::now()).err()
    }

    /// The 429 answer after a refused [`over_limit`](Self::over_limit): Katalo's names
    /// the limit and gives `retry_after`; Replicate's says when it resets, in its text.
    fn rate_limited(&self, provider: Provider, wait: Duration) -> Response {
        let secs = retry_after_secs(wait);
        match provider {
            Provider::Katalo => {
                let message = format!("Read limit of {} requests per minute exceeded.", self.opts.rate_limit_per_min);
                api_error(StatusCode::TOO_MANY_REQUESTS, "rate_limited", &message, Some(secs))
            }
            Provider::Replicate => problem(
                StatusCode::TOO_MANY_REQUESTS,
                &format!("Request was throttled. Your rate limit resets in ~{secs}s."),
            ),
        }
    }

    /// A job read through `provider`'s API: auth, then the rate limit, then injected
    /// errors, then the job's script, or the job (or an adopted one, or 404).
    async fn read(&self, provider: Provider, job_id: &str, headers: &HeaderMap) -> Response {
        self.reads.fetch_add(1, Ordering::Relaxed);
        if !self.authorized(headers) {
            return unauthorized(provider);
        }
        if let Some(wait) = self.over_limit() {
            return self.rate_limited(provider, wait);
        }
        if self.opts.error_rate > 0.0 && rand::random::<f64>() < self.opts.error_rate {
            let (status, code) = [
                (StatusCode::INTERNAL_SERVER_ERROR, "internal_error"),
                (StatusCode::BAD_GATEWAY, "upstream_unavailable"),
                (StatusCode::SERVICE_UNAVAILABLE, "service_unavailable"),
            ][rand::random_range(0..3)];
            return error_response(provider, status, code, "Simulated transient failure; retry later.", Some(1));
        }
        if let Some(answer) = self.scripts.next(job_id) {
            return script::respond(answer).await;
        }
        let adoptable = self.opts.adopt_unknown_jobs
            && job_id.len() <= 128
            && job_id.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b));
        match self.book.get(job_id) {
            Some(job) => job_response(StatusCode::OK, self.job_json(&job, provider)),
            None if adoptable => job_response(StatusCode::OK, self.job_json(&self.book.get_or_adopt(job_id), provider)),
            None => {
                let what = if provider == Provider::Katalo { "generation job" } else { "prediction" };
                error_response(provider, StatusCode::NOT_FOUND, "not_found", &format!("No {what} `{job_id}`."), None)
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { axum::Json(json!({"ok": true})) }))
        .route("/api/v1/generations", axum::routing::post(create))
        .route("/api/v1/generations/{job_id}", get(read))
        .route("/v1/predictions", get(list_predictions).post(create_prediction))
        .route("/v1/predictions/{prediction_id}", get(read_prediction))
        .route("/files/{job_id}/{file}", get(file))
        .route("/api/generate/status/{task_id}", get(apimp_status))
        .fallback(|| async {
            api_error(StatusCode::NOT_FOUND, "not_found", "No such endpoint on the Katalo simulator.", None)
        })
        .with_state(shared)
}

/// Katalo's error body `{"error": {code, message, retryable, retry_after}}`; retryable
/// when `retry_after` is given, which also sets a `Retry-After` header.
fn api_error(status: StatusCode, code: &str, message: &str, retry_after: Option<u64>) -> Response {
    let body = json!({"error": {
        "code": code,
        "message": message,
        "retryable": retry_after.is_some(),
        "retry_after": retry_after,
    }});
    let mut resp = (status, axum::Json(body)).into_response();
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(secs) = retry_after {
        resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    resp
}

/// Replicate's error body: RFC 7807 problem details `{title, detail, status}`.
fn problem(status: StatusCode, detail: &str) -> Response {
    let body =
        json!({"title": status.canonical_reason().unwrap_or("Error"), "detail": detail, "status": status.as_u16()});
    let mut resp = (status, axum::Json(body)).into_response();
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// An error answer in `provider`'s shape (Replicate's has no retry hint).
fn error_response(
    provider: Provider,
    status: StatusCode,
    code: &str,
    message: &str,
    retry_after: Option<u64>,
) -> Response {
    match provider {
        Provider::Katalo => api_error(status, code, message, retry_after),
        Provider::Replicate => problem(status, message),
    }
}

/// The answer to a request without the API key.
fn unauthorized(provider: Provider) -> Response {
    let message = "Missing or invalid API key: send `Authorization: Bearer <api key>`.";
    let mut resp = error_response(provider, StatusCode::UNAUTHORIZED, "unauthorized", message, None);
    resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    resp
}

fn job_response(status: StatusCode, job: Value) -> Response {
    let mut resp = (status, axum::Json(job)).into_response();
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// `GET /api/v1/generations/{job_id}`: the job as Katalo's API answers it.
async fn read(State(s): State<Arc<Shared>>, Path(job_id): Path<String>, headers: HeaderMap) -> Response {
    s.read(Provider::Katalo, &job_id, &headers).await
}

/// `GET /v1/predictions/{prediction_id}`: the job as a Replicate prediction.
async fn read_prediction(State(s): State<Arc<Shared>>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    s.read(Provider::Replicate, &id, &headers).await
}

/// `POST /v1/predictions`: creates a prediction (its input's `runs_for_ms`, default
/// 1000, says how long it runs) and answers it as Replicate does, `starting`.
async fn create_prediction(State(s): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    if !s.authorized(&headers) {
        return unauthorized(Provider::Replicate);
    }
    let input: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let runs_for = input.pointer("/input/runs_for_ms").and_then(Value::as_u64).unwrap_or(1000);
    let runs_for = Duration::from_millis(runs_for).min(MAX_RUNS_FOR);
    let id = s.book.create_prediction(JobSpec { runs_for, ..JobSpec::default() });
    match s.book.get(&id) {
        Some(job) => job_response(StatusCode::CREATED, s.prediction_json(&job, job.phase())),
        None => api_error(StatusCode::INTERNAL_SERVER_ERROR, "internal", "the prediction was not kept", None),
    }
}

/// How many predictions a page of `GET /v1/predictions` holds (Replicate's 100).
pub const PREDICTIONS_PER_PAGE: usize = 100;

/// `GET /v1/predictions`: the job book as Replicate's prediction list, newest first,
/// [`PREDICTIONS_PER_PAGE`] a page, filtered by `created_after` (inclusive) and
/// `created_before` (exclusive), `next` the following page's absolute URL (an offset
/// `cursor`).
async fn list_predictions(State(s): State<Arc<Shared>>, uri: Uri, headers: HeaderMap) -> Response {
    s.reads.fetch_add(1, Ordering::Relaxed);
    if !s.authorized(&headers) {
        return unauthorized(Provider::Replicate);
    }
    if let Some(wait) = s.over_limit() {
        return s.rate_limited(Provider::Replicate, wait);
    }
    let query: HashMap<String, String> =
        uri.query().map(|q| url::form_urlencoded::parse(q.as_bytes()).into_owned().collect()).unwrap_or_default();
    let time = |k: &str| {
        query.get(k).map(|v| OffsetDateTime::parse(v, &time::format_description::well_known::Rfc3339)).transpose()
    };
    let (Ok(from), Ok(until)) = (time("created_after"), time("created_before")) else {
        let body = json!({"title": "Invalid query", "detail": "created_after and created_before must be ISO 8601 date-times", "status": 400});
        return (StatusCode::BAD_REQUEST, axum::Json(body)).into_response();
    };
    let offset: usize = query.get("cursor").and_then(|c| c.parse().ok()).unwrap_or(0);
    let jobs = s.book.created_between(
        from.unwrap_or(OffsetDateTime::UNIX_EPOCH),
        until.unwrap_or_else(|| OffsetDateTime::now_utc() + time::Duration::days(1)),
    );
    let page: Vec<Value> =
        jobs.iter().skip(offset).take(PREDICTIONS_PER_PAGE).map(|job| s.prediction_json(job, job.phase())).collect();
    let end = offset.saturating_add(PREDICTIONS_PER_PAGE);
    let list_url = url::Url::parse(&format!("{}/v1/predictions", s.base_url.trim_end_matches('/'))).ok();
    let next = list_url.filter(|_| end < jobs.len()).map(|mut next| {
        {
            let mut pairs = next.query_pairs_mut();
            for k in ["created_after", "created_before"] {
                if let Some(v) = query.get(k) {
                    pairs.append_pair(k, v);
                }
            }
            pairs.append_pair("cursor", &end.to_string());
        }
        next.to_string()
    });
    job_response(StatusCode::OK, json!({"next": next, "previous": null, "results": page}))
}

/// `GET /api/generate/status/{task_id}`: the same jobs seen through APIMP's status API
/// (`not_started` / `running` / `finished` / `failed`, `files[].file_url` with
/// `file_type` always "image", as APIMP does). Unknown ids are adopted under
/// `adopt_unknown_jobs`, as on the Katalo route.
async fn apimp_status(State(s): State<Arc<Shared>>, Path(task_id): Path<String>, headers: HeaderMap) -> Response {
    let apimp_error = |status: StatusCode, kind: &str, message: &str| {
        let body = json!({"code": status.as_u16(), "error": {"message": message, "type": kind}});
        (status, axum::Json(body)).into_response()
    };
    s.reads.fetch_add(1, Ordering::Relaxed);
    if !s.authorized(&headers) {
        return apimp_error(StatusCode::UNAUTHORIZED, "unauthorized", "invalid api key");
    }
    if let Some(wait) = s.over_limit() {
        return s.rate_limited(Provider::Katalo, wait);
    }
    let job = match s.book.get(&task_id) {
        Some(job) => job,
        None if s.opts.adopt_unknown_jobs && task_id.len() <= 128 => s.book.get_or_adopt(&task_id),
        None => return apimp_error(StatusCode::NOT_FOUND, "not_found", "task not found"),
    };
    let phase = job.phase();
    let (status, progress) = match phase {
        Phase::Queued => ("not_started", 0),
        Phase::Processing { progress } => ("running", progress),
        Phase::Succeeded => ("finished", 100),
        Phase::Failed => ("failed", 100),
    };
    let files: Vec<Value> = if phase == Phase::Succeeded {
        s.outputs(&job, OffsetDateTime::now_utc())
            .into_iter()
            .map(|o| json!({"file_url": o["url"], "file_type": "image"}))
            .collect()
    } else {
        Vec::new()
    };
    let error_message = (phase == Phase::Failed).then_some("The source image was rejected by the safety filter.");
    job_response(
        StatusCode::OK,
        json!({"code": 200, "data": {"task_id": task_id, "status": status, "progress": progress,
            "error_message": error_message, "files": files}}),
    )
}

/// The body of `POST /api/v1/generations` (every field optional).
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct CreateRequest {
    runs_for_ms: Option<u64>,
    outcome: JobOutcome,
    reference: Option<String>,
    metadata: Option<Value>,
}

/// `POST /api/v1/generations`: creates a job from `{runs_for_ms, outcome, reference,
/// metadata}`. An `Idempotency-Key` seen before returns the same job for the same body
/// and 409 for a different one, as Katalo does.
async fn create(State(s): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    if !s.authorized(&headers) {
        return unauthorized(Provider::Katalo);
    }
    let req: CreateRequest = if body.iter().all(u8::is_ascii_whitespace) {
        CreateRequest::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(req) => req,
            Err(e) => {
                let message = format!(
                    "Body must be JSON like {{\"runs_for_ms\": 2000, \"outcome\": \"completed\"|\"failed\"}}: {e}"
                );
                return api_error(StatusCode::BAD_REQUEST, "invalid_request", &message, None);
            }
        }
    };
    let runs_for = Duration::from_millis(req.runs_for_ms.unwrap_or(1000));
    if runs_for > MAX_RUNS_FOR {
        return api_error(StatusCode::BAD_REQUEST, "invalid_request", "`runs_for_ms` must be at most one day.", None);
    }
    let key = headers.get("idempotency-key").and_then(|v| v.to_str().ok()).map(str::to_string);
    let mut seen = lock(&s.idempotency);
    if let Some((earlier, job_id)) = key.as_ref().and_then(|k| seen.get(k)) {
        if *earlier != body {
            let message = "This Idempotency-Key was used with a different body; use a new key.";
            return api_error(StatusCode::CONFLICT, "idempotency_key_reused", message, None);
        }
        if let Some(job) = s.book.get(job_id) {
            return job_response(StatusCode::OK, s.job_json(&job, Provider::Katalo));
        }
    }
    let spec = JobSpec { outcome: req.outcome, runs_for, reference: req.reference };
    let job_id = s.book.create(spec, req.metadata);
    if let Some(key) = key {
        seen.insert(key, (body, job_id.clone()));
    }
    drop(seen);
    match s.book.get(&job_id) {
        Some(job) => job_response(StatusCode::CREATED, s.job_json(&job, Provider::Katalo)),
        None => api_error(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", "The job vanished.", Some(1)),
    }
}

/// `GET /files/{job_id}/{n}.png?X-Amz-…`: the PNG while the signature holds and the URL
/// has not expired; S3-style 403/404 XML otherwise.
async fn file(State(s): State<Arc<Shared>>, Path((job_id, file)): Path<(String, String)>, uri: Uri) -> Response {
    let now = OffsetDateTime::now_utc();
    let rfc1123 = |t: OffsetDateTime| httpdate::fmt_http_date(t.into());
    let denied = match s.signer.check(uri.path(), uri.query().unwrap_or(""), now) {
        Ok(()) => None,
        Err(Denied::Missing) => Some(s3_error(
            "AccessDenied",
            "Query-string authentication requires the X-Amz-Date, X-Amz-Expires and X-Amz-Signature parameters",
            &[],
        )),
        Err(Denied::BadSignature) => Some(s3_error(
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided.",
            &[],
        )),
        Err(Denied::Expired { at, expires_secs }) => Some(s3_error(
            "AccessDenied",
            "Request has expired",
            &[("X-Amz-Expires", expires_secs.to_string()), ("Expires", rfc1123(at)), ("ServerTime", rfc1123(now))],
        )),
    };
    if let Some(xml) = denied {
        return xml_response(StatusCode::FORBIDDEN, xml);
    }
    let n = file.strip_suffix(".png").and_then(|n| n.parse::<u8>().ok());
    let job = s.book.get(&job_id).filter(|j| j.phase() == super::jobs::Phase::Succeeded);
    match (job, n) {
        (Some(job), Some(n)) if (1..=job.outputs).contains(&n) => {
            ([(header::CONTENT_TYPE, "image/png"), (header::CACHE_CONTROL, "private, max-age=60")], PNG).into_response()
        }
        _ => xml_response(StatusCode::NOT_FOUND, s3_error("NoSuchKey", "The specified key does not exist.", &[])),
    }
}

fn xml_response(status: StatusCode, xml: String) -> Response {
    (status, [(header::CONTENT_TYPE, "application/xml")], xml).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn outputs_are_minted_fresh_and_parse_as_katalo_jobs() {
        let sim = KataloSimulator::start("127.0.0.1:0".parse().unwrap(), ApiOptions::default()).await.unwrap();
        assert!(sim.base_url().starts_with("http://127.0.0.1:"));
        let id = sim.create_job(JobSpec { runs_for: Duration::ZERO, ..JobSpec::default() });
        let job = sim.shared.book.get(&id).unwrap();
        let value = sim.shared.job_json(&job, Provider::Katalo);
        let parsed = genhook::providers::katalo::job::parse_job(&value, &id, OffsetDateTime::now_utc()).unwrap();
        assert_eq!(parsed.state, genhook::domain::job::JobState::Succeeded);
        assert!(!parsed.outputs.is_empty() && parsed.outputs.len() <= 2);
        for out in &parsed.outputs {
            assert!(out.url.starts_with(&format!("{}/files/{id}/", sim.base_url())));
            assert_eq!(out.expires_at, genhook::toolkit::http::url_expiry::expiry_from_url(&out.url));
        }
        let body = sim.webhook_body(&id).unwrap();
        let hook = genhook::providers::katalo::webhook::KataloWebhook::parse(&body).unwrap();
        assert_eq!(hook.event_type, "generation.completed");
        assert!(sim.webhook_body("job_nope").is_none());
    }

    #[tokio::test]
    async fn the_same_jobs_are_replicate_predictions() {
        use genhook::providers::replicate::prediction::parse_prediction;
        use genhook::providers::replicate::webhook::ReplicateWebhook;
        let sim = KataloSimulator::start("127.0.0.1:0".parse().unwrap(), ApiOptions::default()).await.unwrap();
        let done = sim.create_job(JobSpec { runs_for: Duration::ZERO, ..JobSpec::default() });
        let job = sim.shared.book.get(&done).unwrap();
        let value = sim.shared.job_json(&job, Provider::Replicate);
        assert_eq!(value["urls"]["get"], format!("{}/v1/predictions/{done}", sim.base_url()));
        let parsed = parse_prediction(&value, "x", OffsetDateTime::now_utc()).unwrap();
        assert_eq!((parsed.job_id.as_str(), parsed.state), (done.as_str(), genhook::domain::job::JobState::Succeeded));
        for out in &parsed.outputs {
            assert_eq!(
                out.expires_at,
                genhook::toolkit::http::url_expiry::expiry_from_url(&out.url),
                "the signed URL's own expiry"
            );
        }
        let hook = ReplicateWebhook::parse(&sim.webhook_body_for(Provider::Replicate, &done).unwrap()).unwrap();
        assert_eq!((hook.prediction_id.as_str(), hook.status.as_str()), (done.as_str(), "succeeded"));
        let start = ReplicateWebhook::parse(&sim.start_body(&done).unwrap()).unwrap();
        assert_eq!(start.status, "starting");
        assert!(start.body["output"].is_null() && start.body["started_at"].is_null());

        let canceled =
            sim.create_job(JobSpec { outcome: JobOutcome::Canceled, runs_for: Duration::ZERO, reference: None });
        let hook = ReplicateWebhook::parse(&sim.webhook_body_for(Provider::Replicate, &canceled).unwrap()).unwrap();
        assert_eq!((hook.status.as_str(), &hook.body["error"]), ("canceled", &Value::Null));
        let katalo = sim.webhook_body(&canceled).unwrap();
        assert!(String::from_utf8_lossy(&katalo).contains("generation.failed"), "Katalo has no cancel event");
        let running = sim.create_job(JobSpec { runs_for: Duration::from_secs(3600), ..JobSpec::default() });
        assert!(sim.webhook_body_for(Provider::Replicate, &running).is_none());
    }

    #[tokio::test]
    async fn invalid_options_are_refused() {
        let opts = ApiOptions { error_rate: 1.5, ..ApiOptions::default() };
        let err = KataloSimulator::start("127.0.0.1:0".parse().unwrap(), opts).await.unwrap_err();
        assert!(err.to_string().contains("error rate"), "{err}");
        let opts = ApiOptions { api_key: " ".into(), ..ApiOptions::default() };
        assert!(KataloSimulator::start("127.0.0.1:0".parse().unwrap(), opts).await.is_err());
    }

    #[test]
    fn debug_hides_a_real_key() {
        let shown = format!("{:?}", ApiOptions { api_key: "sk_live_secret".into(), ..ApiOptions::default() });
        assert!(!shown.contains("sk_live_secret"));
    }
}
