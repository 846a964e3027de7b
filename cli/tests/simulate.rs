//! `genhook simulate` run as a user runs it: spawned processes on real loopback ports,
//! read with genhook's own Katalo client and parsers, delivering to a real receiver.
//!
//! Timing is never what passes or fails a test: waits are generous deadlines, and the one
//! "still running" check leaves the job seconds to spare.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use genhook::domain::clock::SystemClock;
use genhook::domain::job::{Job, JobState};
use genhook::ports::{JobApi, JobApiError};
use genhook::providers::katalo::api::KataloApi;
use genhook::providers::katalo::webhook::KataloWebhook;
use genhook::providers::replicate::api::ReplicateApi;
use genhook::providers::replicate::webhook::ReplicateWebhook;
use genhook::toolkit::auth::hmac::HmacSecrets;
use genhook::toolkit::auth::standard_webhooks::Secrets;
use serde_json::{Value, json};
use time::OffsetDateTime;

const SECRET: &str = "whsec_simulate_test_0123456789";
const KEY: &str = "sim-test-key";
/// The Standard Webhooks reference libraries' example secret.
const REPLICATE_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn genhook() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_genhook"));
    for var in [
        "GENHOOK_WEBHOOK_URL",
        "KATALO_WEBHOOK_SECRET",
        "KATALO_API_KEY",
        "REPLICATE_WEBHOOK_SECRET",
        "REPLICATE_API_TOKEN",
        "RUST_LOG",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

/// A `genhook simulate` in serve mode, killed when dropped.
struct Sim {
    child: Child,
    base: String,
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Sim {
    /// Starts `genhook simulate --listen 127.0.0.1:0 --api-key KEY <extra>`; the first
    /// line it prints is its base URL.
    fn start(extra: &[&str]) -> Sim {
        let mut child = genhook()
            .args(["simulate", "--listen", "127.0.0.1:0", "--api-key", KEY])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn genhook simulate");
        let mut first = String::new();
        BufReader::new(child.stdout.take().expect("piped stdout")).read_line(&mut first).expect("read the base URL");
        let base = first.trim().to_string();
        assert!(base.starts_with("http://127.0.0.1:"), "first line is the base URL: {first:?}");
        Sim { child, base }
    }

    fn api(&self, key: &str) -> KataloApi {
        KataloApi::new(&self.base, key, Duration::from_secs(5), Arc::new(SystemClock)).expect("valid base URL")
    }

    fn replicate(&self, key: &str) -> ReplicateApi {
        ReplicateApi::new(&self.base, key, Duration::from_secs(5), Arc::new(SystemClock)).expect("valid base URL")
    }

    async fn create(&self, body: Value) -> Value {
        let resp = client()
            .post(format!("{}/api/v1/generations", self.base))
            .bearer_auth(KEY)
            .json(&body)
            .send()
            .await
            .expect("POST a job");
        assert_eq!(resp.status().as_u16(), 201);
        resp.json().await.expect("job JSON")
    }

    /// Reads the job with genhook's client until it is terminal (30 s deadline).
    async fn wait_terminal(&self, job_id: &str) -> Job {
        let api = self.api(KEY);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let job = api.get_job(job_id).await.expect("job read");
            if job.state.is_terminal() {
                return job;
            }
            assert!(Instant::now() < deadline, "job {job_id} never finished: {job:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn client() -> reqwest::Client {
    genhook::toolkit::http::http_client(Duration::from_secs(5))
}

/// GET `url` → (status, headers, body text).
async fn get(url: &str, key: Option<&str>) -> (u16, reqwest::header::HeaderMap, String) {
    let mut req = client().get(url);
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    let resp = req.send().await.expect("GET");
    let (status, headers) = (resp.status().as_u16(), resp.headers().clone());
    (status, headers, resp.text().await.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_mode_runs_jobs_by_the_clock_and_serves_signed_files() {
    let sim = Sim::start(&[]);
    assert_eq!(get(&format!("{}/healthz", sim.base), None).await.0, 200);

    let created = sim.create(json!({"runs_for_ms": 4000, "reference": "order-7", "metadata": {"k": "v"}})).await;
    let job_id = created["job_id"].as_str().expect("job_id").to_string();
    assert!(job_id.starts_with("job_sim_"), "{created}");
    let early = sim.api(KEY).get_job(&job_id).await.expect("job read");
    assert_eq!(early.state, JobState::Pending, "4 s to spare: {early:?}");
    assert!(["queued", "processing"].contains(&early.status.as_str()), "{early:?}");
    assert!(early.outputs.is_empty());

    let job = sim.wait_terminal(&job_id).await;
    assert_eq!(job.state, JobState::Succeeded, "{job:?}");
    assert_eq!((job.reference.clone(), job.metadata.clone()), (Some(json!("order-7")), Some(json!({"k": "v"}))));
    assert!((1..=2).contains(&job.outputs.len()), "a primary and maybe an alternate: {job:?}");
    let url = job.outputs[0].url.clone();
    assert!(url.starts_with(&format!("{}/files/{job_id}/1.png?", sim.base)), "{url}");
    let expires_at = job.outputs[0].expires_at.expect("expiry");
    assert_eq!(
        Some(expires_at),
        genhook::toolkit::http::url_expiry::expiry_from_url(&url),
        "expires_at agrees with the URL"
    );
    let ttl = expires_at - OffsetDateTime::now_utc();
    assert!(ttl > time::Duration::minutes(55) && ttl <= time::Duration::hours(1), "default lifetime 1 h: {ttl}");

    // The URL serves a PNG; a tampered one is refused like S3 refuses it.
    let resp = client().get(&url).send().await.expect("GET file");
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(resp.headers()["content-type"], "image/png");
    assert!(resp.bytes().await.expect("PNG").starts_with(b"\x89PNG\r\n\x1a\n"));
    let (status, _, body) = get(&url.replace("/1.png?", "/7.png?"), None).await;
    assert_eq!(status, 403, "the signature covers the path: {body}");
    assert!(body.contains("<Code>SignatureDoesNotMatch</Code>"), "{body}");
    let last = url.chars().last().expect("non-empty");
    let forged = format!("{}{}", &url[..url.len() - 1], if last == '0' { '1' } else { '0' });
    assert_eq!(get(&forged, None).await.0, 403);
    let unsigned = url.split('?').next().expect("path");
    assert_eq!(get(unsigned, None).await.0, 403);

    // Every read mints fresh URLs (X-Amz-Date has one-second resolution).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let again = sim.api(KEY).get_job(&job_id).await.expect("job read");
    assert_ne!(again.outputs[0].url, url, "fresh signed URL on every read");
    assert!(again.outputs[0].expires_at > Some(expires_at));

    // Errors are Katalo's error bodies, which genhook's client classifies.
    let err = sim.api("wrong-key").get_job(&job_id).await.unwrap_err();
    assert!(matches!(err, JobApiError::Permanent { status: 401, .. }), "{err:?}");
    let (status, headers, body) = get(&format!("{}/api/v1/generations/{job_id}", sim.base), None).await;
    assert_eq!(status, 401);
    assert_eq!(headers["www-authenticate"], "Bearer");
    let body: Value = serde_json::from_str(&body).expect("JSON error body");
    assert_eq!(
        (body["error"]["code"].as_str(), body["error"]["retryable"].as_bool()),
        (Some("unauthorized"), Some(false))
    );
    let err = sim.api(KEY).get_job("job_nope").await.unwrap_err();
    assert!(
        matches!(&err, JobApiError::Permanent { status: 404, reason } if reason.starts_with("not_found")),
        "{err:?}"
    );

    // POST: an outcome, idempotency keys, bad bodies.
    let failed = sim.create(json!({"runs_for_ms": 0, "outcome": "failed"})).await;
    let failed = sim.wait_terminal(failed["job_id"].as_str().expect("job_id")).await;
    assert_eq!(failed.state, JobState::Failed);
    assert!(failed.failure.as_ref().is_some_and(|f| f["code"].is_string()), "{failed:?}");
    let post = |body: &'static str, key: &'static str| {
        client()
            .post(format!("{}/api/v1/generations", sim.base))
            .bearer_auth(KEY)
            .header("idempotency-key", key)
            .body(body)
            .send()
    };
    let first: Value = post(r#"{"runs_for_ms": 10}"#, "idem-1").await.expect("POST").json().await.expect("JSON");
    let second = post(r#"{"runs_for_ms": 10}"#, "idem-1").await.expect("POST");
    assert_eq!(second.status().as_u16(), 200);
    assert_eq!(second.json::<Value>().await.expect("JSON")["job_id"], first["job_id"], "same key, same job");
    assert_eq!(post(r#"{"runs_for_ms": 99}"#, "idem-1").await.expect("POST").status().as_u16(), 409);
    assert_eq!(post("not json", "idem-2").await.expect("POST").status().as_u16(), 400);
}

#[tokio::test(flavor = "multi_thread")]
async fn signed_urls_really_expire_and_a_new_read_gives_fresh_ones() {
    let sim = Sim::start(&["--url-ttl-secs", "1"]);
    let created = sim.create(json!({"runs_for_ms": 0})).await;
    let job = sim.wait_terminal(created["job_id"].as_str().expect("job_id")).await;
    let output = job.outputs[0].clone();
    let expires_at = output.expires_at.expect("expiry");
    // Wait until well past the expiry.
    while OffsetDateTime::now_utc() < expires_at + time::Duration::milliseconds(1500) {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (status, headers, body) = get(&output.url, None).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(headers["content-type"], "application/xml");
    assert!(body.contains("<Code>AccessDenied</Code><Message>Request has expired</Message>"), "{body}");
    let fresh = sim.api(KEY).get_job(&job.job_id).await.expect("job read");
    assert!(fresh.outputs[0].expires_at.expect("expiry") > expires_at, "re-reading the job renews the URL");
}

#[tokio::test(flavor = "multi_thread")]
async fn rate_limits_and_injected_errors_carry_retry_after() {
    // Two reads a minute (a burst of one), and every admitted read fails transiently.
    let sim = Sim::start(&["--rate-limit-per-min", "2", "--error-rate", "1"]);
    let err = sim.api(KEY).get_job("job_any").await.unwrap_err();
    assert!(
        matches!(err, JobApiError::Transient { retry_after: Some(d), .. } if d == Duration::from_secs(1)),
        "{err:?}"
    );
    let (status, headers, body) = get(&format!("{}/api/v1/generations/job_any", sim.base), Some(KEY)).await;
    assert_eq!(status, 429, "{body}");
    let header: u64 = headers["retry-after"].to_str().expect("ASCII").parse().expect("seconds");
    let body: Value = serde_json::from_str(&body).expect("JSON error body");
    assert_eq!(body["error"]["code"], "rate_limited");
    assert_eq!(body["error"]["retryable"], true);
    assert_eq!(body["error"]["retry_after"].as_u64(), Some(header));
    assert!((1..=30).contains(&header), "a slot frees within 30 s: {header}");
    let err = sim.api(KEY).get_job("job_any").await.unwrap_err();
    assert!(matches!(err, JobApiError::RateLimited { retry_after: Some(_) }), "{err:?}");
    // Authentication comes first: a bad key is 401 even when over the limit.
    assert!(matches!(sim.api("nope").get_job("job_any").await, Err(JobApiError::Permanent { status: 401, .. })));
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_jobs_can_be_adopted() {
    let sim = Sim::start(&["--adopt-unknown-jobs"]);
    let job = sim.api(KEY).get_job("job_from_trigger").await.expect("adopted");
    assert_eq!((job.job_id.as_str(), job.state), ("job_from_trigger", JobState::Succeeded));
    assert!(!job.outputs.is_empty());
}

/// What the in-test receiver saw.
#[derive(Default)]
struct Seen {
    requests: u32,
    forged: u32,
    /// Answers of 500 (the first attempt of every other distinct body).
    failed_first: u32,
    /// Attempts per distinct body.
    attempts: HashMap<Vec<u8>, u32>,
    /// Bodies answered 2xx, in order.
    acked: Vec<Vec<u8>>,
    duplicate_acks: u32,
}

type Shared = Arc<Mutex<Seen>>;

/// Verifies like genhook's receiver, fails some first attempts with 500, and answers
/// repeats with `"duplicate": true`.
async fn receiver(State(seen): State<Shared>, headers: HeaderMap, body: Bytes) -> (StatusCode, String) {
    let mut seen = seen.lock().expect("lock");
    seen.requests += 1;
    let sig = headers.get("x-katalo-signature").and_then(|v| v.to_str().ok());
    if HmacSecrets::new(SECRET, None).verify_hex(&body, sig).is_err() {
        seen.forged += 1;
        return (StatusCode::UNAUTHORIZED, r#"{"error":"invalid_signature"}"#.into());
    }
    assert_eq!(headers["content-type"], "application/json");
    let distinct = seen.attempts.len();
    let attempts = seen.attempts.entry(body.to_vec()).or_default();
    *attempts += 1;
    if *attempts == 1 && distinct % 2 == 0 {
        seen.failed_first += 1;
        return (StatusCode::INTERNAL_SERVER_ERROR, "try again".into());
    }
    let duplicate = seen.acked.contains(&body.to_vec());
    seen.duplicate_acks += u32::from(duplicate);
    seen.acked.push(body.to_vec());
    (StatusCode::OK, json!({"ok": true, "duplicate": duplicate}).to_string())
}

async fn start_receiver(secret_ok: bool) -> (String, Shared) {
    async fn refuse() -> (StatusCode, &'static str) {
        (StatusCode::UNAUTHORIZED, "no")
    }
    let seen = Shared::default();
    let app = if secret_ok {
        Router::new().route("/webhooks/katalo", post(receiver)).with_state(seen.clone())
    } else {
        Router::new().route("/webhooks/katalo", post(refuse))
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
    let url = format!("http://{}/webhooks/katalo", listener.local_addr().expect("address"));
    tokio::spawn(async move { axum::serve(listener, app).await.expect("receiver serves") });
    (url, seen)
}

async fn run(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || genhook().args(args).output().expect("run genhook")).await.expect("join")
}

/// Runs `genhook simulate` delivering 12 jobs to `url` (a quarter fail, half are sent
/// twice, 3 forgeries, reordered, short delays and run times, quick retries) plus
/// `extra`; checks it succeeded without printing the secret; returns standard output.
async fn deliver_busy(url: &str, secret: &str, extra: &[&str]) -> String {
    let args = [
        "simulate",
        "--listen",
        "127.0.0.1:0",
        "--url",
        url,
        "--secret",
        secret,
        "--jobs",
        "12",
        "--fail-rate",
        "0.25",
        "--duplicate-rate",
        "0.5",
        "--forged",
        "3",
        "--reorder",
        "--max-delay-ms",
        "50",
        "--retry-base-ms",
        "10",
        "--min-runtime-ms",
        "20",
        "--max-runtime-ms",
        "300",
    ];
    let out = run(args.iter().chain(extra).map(|s| s.to_string()).collect()).await;
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(!stdout.contains(secret) && !stderr.contains(secret), "the secret is never printed");
    stdout.into_owned()
}

/// The value of a summary row.
fn row(stdout: &str, label: &str) -> u32 {
    let line = stdout.lines().find(|l| l.starts_with(label)).unwrap_or_else(|| panic!("no `{label}` row: {stdout}"));
    line[label.len()..].trim().parse().unwrap_or_else(|_| panic!("`{label}` is not a number: {line}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn deliveries_are_signed_retried_duplicated_forged_and_summarized() {
    let (url, seen) = start_receiver(true).await;
    let stdout = deliver_busy(&url, SECRET, &["--concurrency", "4"]).await;
    assert_eq!(stdout.lines().count(), 10, "standard output is only the table: {stdout}");

    let seen = seen.lock().expect("lock");
    assert_eq!(row(&stdout, "jobs"), 12);
    assert_eq!(row(&stdout, "duplicate copies"), 6, "round(12 × 0.5)");
    assert_eq!(row(&stdout, "acknowledged"), 18, "12 originals and 6 copies: {stdout}");
    assert_eq!((row(&stdout, "forged sent"), seen.forged), (3, 3));
    assert_eq!(row(&stdout, "rejected"), 3, "the forged ones: {stdout}");
    assert_eq!(row(&stdout, "forged accepted"), 0);
    assert_eq!(row(&stdout, "gave up"), 0);
    assert!(seen.failed_first >= 1);
    assert_eq!(row(&stdout, "retried"), seen.failed_first, "each 500 was retried once: {stdout}");
    assert_eq!(row(&stdout, "attempts sent"), seen.requests, "every attempt reached the receiver");
    assert_eq!((row(&stdout, "duplicate acks"), seen.duplicate_acks), (6, 6));

    // Copies are identical bytes; 6 jobs were delivered twice; 3 jobs failed.
    let mut per_job: HashMap<String, Vec<&Vec<u8>>> = HashMap::new();
    for body in &seen.acked {
        let hook = KataloWebhook::parse(body).expect("the receiver's parser accepts it");
        per_job.entry(hook.job_id.into_owned()).or_default().push(body);
    }
    assert_eq!(per_job.len(), 12);
    assert_eq!(per_job.values().filter(|copies| copies.len() == 2).count(), 6);
    assert!(per_job.values().all(|copies| copies.iter().all(|c| *c == copies[0])), "copies are the same bytes");
    let events: Vec<Value> = per_job.values().map(|copies| serde_json::from_slice(copies[0]).expect("JSON")).collect();
    let failed: Vec<&Value> = events.iter().filter(|e| e["event_type"] == "generation.failed").collect();
    assert_eq!(failed.len(), 3, "round(12 × 0.25)");
    assert!(failed.iter().all(|e| e["failure"]["code"].is_string() && e["outputs"] == json!([])));
    for e in events.iter().filter(|e| e["event_type"] == "generation.completed") {
        assert!(e["failure"].is_null() && e["reference"].as_str().is_some_and(|r| r.starts_with("sim-")), "{e}");
        let url = e["outputs"][0]["url"].as_str().expect("a signed output URL");
        assert!(
            url.contains("/files/job_sim_") && genhook::toolkit::http::url_expiry::expiry_from_url(url).is_some(),
            "{url}"
        );
        assert!(e["source_asset_id"].is_string() && e["metadata"].is_object(), "{e}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_receiver_that_refuses_everything_fails_the_run() {
    let (url, _) = start_receiver(false).await;
    let args = [
        "simulate",
        "--listen",
        "127.0.0.1:0",
        "--url",
        &url,
        "--secret",
        SECRET,
        "--jobs",
        "2",
        "--duplicate-rate",
        "0",
        "--min-runtime-ms",
        "0",
        "--max-runtime-ms",
        "0",
    ];
    let out = run(args.iter().map(|s| s.to_string()).collect()).await;
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert_eq!((row(&stdout, "acknowledged"), row(&stdout, "rejected"), row(&stdout, "retried")), (0, 2, 0));
    assert!(stderr.contains("Not every genuine delivery was acknowledged"), "{stderr}");
}

#[test]
fn usage_errors_say_what_to_do() {
    let out = genhook().args(["simulate", "--url", "http://127.0.0.1:9/hook", "--listen", "127.0.0.1:0"]).output();
    let out = out.expect("run genhook");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("pass --secret or set KATALO_WEBHOOK_SECRET"));
    let out = genhook().args(["simulate", "--error-rate", "2"]).output().expect("run genhook");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not between 0 and 1"));
    let out = genhook().args(["simulate", "--help"]).output().expect("run genhook");
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("Examples:") && help.contains("--duplicate-rate"), "{help}");
}

#[tokio::test(flavor = "multi_thread")]
async fn replicate_mode_serves_predictions_with_replicates_error_bodies() {
    let sim = Sim::start(&["--provider", "replicate"]);
    let created = sim.create(json!({"runs_for_ms": 0})).await;
    let id = created["job_id"].as_str().expect("job_id").to_string();
    let job = sim.replicate(KEY).get_job(&id).await.expect("prediction read");
    assert_eq!((job.job_id.as_str(), job.state, job.status.as_str()), (id.as_str(), JobState::Succeeded, "succeeded"));
    for out in &job.outputs {
        assert!(out.url.starts_with(&format!("{}/files/{id}/", sim.base)), "{}", out.url);
        assert_eq!(
            out.expires_at,
            genhook::toolkit::http::url_expiry::expiry_from_url(&out.url),
            "the fake signs its URLs"
        );
    }
    let (status, _, body) = get(&format!("{}/v1/predictions/{id}", sim.base), Some(KEY)).await;
    let body: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!((status, &body["urls"]["get"]), (200, &json!(format!("{}/v1/predictions/{id}", sim.base))));
    assert!(body["output"].is_array() && body["metrics"]["predict_time"].is_number(), "{body}");

    let err = sim.replicate("wrong-key").get_job(&id).await.unwrap_err();
    assert!(matches!(err, JobApiError::Permanent { status: 401, .. }), "{err:?}");
    let err = sim.replicate(KEY).get_job("nope").await.unwrap_err();
    assert!(
        matches!(&err, JobApiError::Permanent { status: 404, reason } if reason.contains("No prediction")),
        "{err:?}"
    );
    let (_, _, body) = get(&format!("{}/v1/predictions/nope", sim.base), Some(KEY)).await;
    let body: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!((&body["title"], &body["status"]), (&json!("Not Found"), &json!(404)), "problem details: {body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn replicate_mode_throttles_like_replicate() {
    // Six reads a minute (a burst of one), and every admitted read fails transiently.
    let sim = Sim::start(&["--provider", "replicate", "--rate-limit-per-min", "6", "--error-rate", "1"]);
    let err = sim.replicate(KEY).get_job("p").await.unwrap_err();
    assert!(matches!(err, JobApiError::Transient { retry_after: None, .. }), "no retry hint from Replicate: {err:?}");
    let (status, headers, body) = get(&format!("{}/v1/predictions/p", sim.base), Some(KEY)).await;
    assert_eq!(status, 429);
    assert!(headers.get("retry-after").is_none(), "Replicate says when in the text only");
    assert!(body.contains("Request was throttled. Your rate limit resets in ~"), "{body}");
    let err = sim.replicate(KEY).get_job("p").await.unwrap_err();
    assert!(
        matches!(err, JobApiError::RateLimited { retry_after: Some(d) } if (1..=10).contains(&d.as_secs())),
        "the wait is read from the text: {err:?}"
    );
}

/// What the in-test Replicate receiver saw.
#[derive(Default)]
struct ReplicateSeen {
    requests: u32,
    forged: u32,
    /// Attempts per message id.
    attempts: HashMap<String, u32>,
    /// Final messages answered 400 on their first attempt.
    refused_first: u32,
    /// What was answered 2xx: (message id, status, body).
    acked: Vec<(String, String, Vec<u8>)>,
}

/// Verifies per Standard Webhooks like genhook's receiver will, answers the first
/// attempt of every other final message 400 (Replicate retries a final webhook on a
/// 4xx), and acknowledges the rest.
async fn replicate_receiver(
    State(seen): State<Arc<Mutex<ReplicateSeen>>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let mut seen = seen.lock().expect("lock");
    seen.requests += 1;
    let secrets = Secrets::parse([REPLICATE_SECRET]).expect("secret");
    let Ok(verified) = secrets.verify(&headers, &body, OffsetDateTime::now_utc()) else {
        seen.forged += 1;
        return StatusCode::UNAUTHORIZED;
    };
    let hook = ReplicateWebhook::parse(&body).expect("the receiver's parser accepts it");
    let finals = seen.attempts.keys().count();
    let attempts = seen.attempts.entry(verified.id.clone()).or_default();
    *attempts += 1;
    if hook.is_terminal() && *attempts == 1 && finals % 2 == 0 {
        seen.refused_first += 1;
        return StatusCode::BAD_REQUEST;
    }
    seen.acked.push((verified.id, hook.status, body.to_vec()));
    StatusCode::OK
}

#[tokio::test(flavor = "multi_thread")]
async fn replicate_deliveries_are_signed_per_standard_webhooks_retried_and_summarized() {
    let seen = Arc::new(Mutex::new(ReplicateSeen::default()));
    let app = Router::new().route("/webhooks/replicate", post(replicate_receiver)).with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
    let url = format!("http://{}/webhooks/replicate", listener.local_addr().expect("address"));
    tokio::spawn(async move { axum::serve(listener, app).await.expect("receiver serves") });
    let stdout = deliver_busy(&url, REPLICATE_SECRET, &["--provider", "replicate"]).await;
    assert_eq!(stdout.lines().count(), 11, "the table, with its progress row: {stdout}");

    let seen = seen.lock().expect("lock");
    assert_eq!((row(&stdout, "jobs"), row(&stdout, "progress sent"), row(&stdout, "duplicate copies")), (12, 12, 6));
    assert_eq!(row(&stdout, "acknowledged"), 30, "12 starting, 12 final and 6 copies: {stdout}");
    assert_eq!((row(&stdout, "forged sent"), row(&stdout, "rejected"), seen.forged), (3, 3, 3));
    assert_eq!((row(&stdout, "gave up"), row(&stdout, "forged accepted")), (0, 0));
    assert!(seen.refused_first >= 1);
    assert_eq!(row(&stdout, "retried"), seen.refused_first, "each 400 on a final webhook was retried once");
    assert_eq!(row(&stdout, "attempts sent"), seen.requests);

    // Per message id: a final message's copies and retries are the same bytes under the
    // same id; each prediction has one `starting` message with an id of its own.
    let mut messages: HashMap<&str, Vec<(&str, &Vec<u8>)>> = HashMap::new();
    for (id, status, body) in &seen.acked {
        messages.entry(id).or_default().push((status, body));
    }
    let (starting, finals): (Vec<_>, Vec<_>) = messages.values().partition(|m| m[0].0 == "starting");
    assert_eq!((starting.len(), finals.len()), (12, 12));
    assert!(starting.iter().all(|m| m.len() == 1), "starting webhooks are sent once");
    assert_eq!(finals.iter().filter(|m| m.len() == 2).count(), 6);
    assert!(finals.iter().all(|m| m.iter().all(|c| c.1 == m[0].1)), "copies are the same bytes");
    let prediction = |m: &Vec<(&str, &Vec<u8>)>| ReplicateWebhook::parse(m[0].1).expect("parses");
    let mut started: Vec<String> = starting.iter().map(|m| prediction(m).prediction_id).collect();
    let mut ended: Vec<String> = finals.iter().map(|m| prediction(m).prediction_id).collect();
    started.sort();
    ended.sort();
    assert_eq!(started, ended, "every prediction started, then ended");
    let status_count = |s: &str| finals.iter().filter(|m| m[0].0 == s).count();
    assert_eq!(
        (status_count("succeeded"), status_count("failed"), status_count("canceled")),
        (9, 2, 1),
        "round(12 × 0.25) fail, every second of them canceled"
    );
    for m in finals.iter().filter(|m| m[0].0 == "succeeded") {
        let job =
            genhook::providers::replicate::prediction::parse_prediction_bytes(m[0].1, "x", OffsetDateTime::now_utc())
                .expect("a prediction");
        assert!(!job.outputs.is_empty() && job.outputs.iter().all(|o| o.expires_at.is_some()), "{job:?}");
    }
}

#[test]
fn replicate_usage_errors_name_replicates_variables() {
    let url = ["simulate", "--provider", "replicate", "--url", "http://127.0.0.1:9/hook", "--listen", "127.0.0.1:0"];
    let out = genhook().args(url).output().expect("run genhook");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("pass --secret or set REPLICATE_WEBHOOK_SECRET"));
    let out = genhook().args(url).args(["--secret", "not-a-whsec!"]).output().expect("run genhook");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("whsec_"));
    // The Replicate variable is read in Replicate mode only.
    let out = genhook().args(url).env("REPLICATE_WEBHOOK_SECRET", "oops!").output().expect("run genhook");
    assert!(String::from_utf8_lossy(&out.stderr).contains("whsec_"), "the variable was read");
    let katalo = genhook().arg("simulate").args(&url[3..]).env("REPLICATE_WEBHOOK_SECRET", REPLICATE_SECRET).output();
    let katalo = katalo.expect("run genhook");
    assert!(String::from_utf8_lossy(&katalo.stderr).contains("pass --secret or set KATALO_WEBHOOK_SECRET"));
}
