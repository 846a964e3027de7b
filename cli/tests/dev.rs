//! `genhook dev`, `tail`, `redrive` and `init` run as a user runs them: spawned
//! processes, real loopback ports, the embedded store in a temporary directory (and
//! DynamoDB Local + the SQS emulator for `--aws`).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

const SECRET: &str = "whsec_cli_dev_test_0001";
const API_KEY: &str = "cli-test-key";
/// Generous: a pass never depends on speed, only a hang fails.
const PATIENCE: Duration = Duration::from_secs(60);

/// An event line, checked against the published schema (every event the CLI prints is).
fn event(line: &str) -> Value {
    static SCHEMA: std::sync::OnceLock<jsonschema::Validator> = std::sync::OnceLock::new();
    let validator = SCHEMA.get_or_init(|| {
        let schema: Value = serde_json::from_str(include_str!("../../schema/event.schema.json")).unwrap();
        jsonschema::options().should_validate_formats(true).build(&schema).unwrap()
    });
    let event: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
    let errors: Vec<String> = validator.iter_errors(&event).map(|e| format!("{}: {e}", e.instance_path())).collect();
    assert!(errors.is_empty(), "event does not match schema/event.schema.json: {errors:?}\n{line}");
    event
}

/// How the fake Katalo API answers.
#[derive(Clone, Copy)]
#[repr(u8)]
enum Mode {
    /// 503 with a retryable error body.
    Down = 0,
    /// Every job succeeded.
    Up = 1,
    /// 404 for every job.
    Gone = 2,
}

/// A fake Katalo API whose answers the test switches.
struct FakeApi {
    base_url: String,
    mode: Arc<AtomicU8>,
    _runtime: tokio::runtime::Runtime,
}

impl FakeApi {
    fn start(mode: Mode) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let mode = Arc::new(AtomicU8::new(mode as u8));
        let app = Router::new().route("/api/v1/generations/{job_id}", get(job)).with_state(mode.clone());
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        runtime.spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { base_url, mode, _runtime: runtime }
    }

    fn set(&self, mode: Mode) {
        self.mode.store(mode as u8, Ordering::SeqCst);
    }
}

async fn job(State(mode): State<Arc<AtomicU8>>, Path(job_id): Path<String>) -> Response {
    match mode.load(Ordering::SeqCst) {
        0 => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({"error": {"code": "unavailable", "message": "try later", "retryable": true}})),
        )
            .into_response(),
        2 => (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"error": {"code": "not_found", "message": "no such job", "retryable": false}})),
        )
            .into_response(),
        _ => {
            let expires = time::OffsetDateTime::now_utc() + time::Duration::hours(1);
            let expires = expires.format(&time::format_description::well_known::Rfc3339).unwrap();
            axum::Json(json!({
                "job_id": job_id,
                "status": "succeeded",
                "outputs": [{"url": format!("https://files.katalo.ai/{job_id}.png?sig=abc"), "expires_at": expires}],
            }))
            .into_response()
        }
    }
}

/// A running `genhook dev`, with its output lines collected.
struct Dev {
    child: Child,
    url: String,
    /// The built-in simulator's base URL, when dev started one.
    simulator: Option<String>,
    events: mpsc::Receiver<String>,
    log: mpsc::Receiver<String>,
}

fn genhook() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_genhook"));
    for var in ["KATALO_WEBHOOK_SECRET", "KATALO_API_KEY", "KATALO_API_BASE_URL", "GENHOOK_TABLE", "GENHOOK_STATE_DIR"]
    {
        cmd.env_remove(var);
    }
    cmd.env("RUST_LOG", "warn");
    cmd
}

fn lines(stream: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

impl Dev {
    fn start(state: &std::path::Path, api: Option<&FakeApi>, extra: &[&str]) -> Self {
        let mut cmd = genhook();
        cmd.args(["dev", "--listen", "127.0.0.1:0", "--visibility-timeout-secs", "1", "--state-dir"])
            .arg(state)
            .args(extra)
            .env("KATALO_WEBHOOK_SECRET", SECRET)
            .env("GENHOOK_RETRY_BASE_SECS", "1")
            .env("GENHOOK_RETRY_MAX_SECS", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(api) = api {
            cmd.env("KATALO_API_KEY", API_KEY).env("KATALO_API_BASE_URL", &api.base_url);
        }
        let mut child = cmd.spawn().expect("spawn genhook dev");
        let events = lines(child.stdout.take().unwrap());
        let log = lines(child.stderr.take().unwrap());
        let mut seen = Vec::new();
        let mut simulator = None;
        let url = loop {
            let line = log.recv_timeout(PATIENCE).unwrap_or_else(|_| panic!("genhook dev did not start: {seen:?}"));
            if let Some(url) = line.split("receiving Katalo webhooks at ").nth(1) {
                break url.trim().to_string();
            }
            if let Some(sim) = line.split("read from the built-in simulator at ").nth(1) {
                simulator = Some(sim.trim().to_string());
            }
            seen.push(line);
        };
        Self { child, url, simulator, events, log }
    }

    /// Waits for `n` event lines.
    fn events(&self, n: usize) -> Vec<Value> {
        let deadline = Instant::now() + PATIENCE;
        (0..n)
            .map(|i| {
                let left = deadline.saturating_duration_since(Instant::now());
                let line = self.events.recv_timeout(left).unwrap_or_else(|_| panic!("only {i} of {n} events"));
                event(&line)
            })
            .collect()
    }

    fn no_more_events(&self, within: Duration) {
        if let Ok(extra) = self.events.recv_timeout(within) {
            panic!("unexpected extra event: {extra}");
        }
    }

    /// SIGKILL: no chance to tidy up.
    fn crash(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM, then the log lines it printed.
    fn stop(mut self) -> Vec<String> {
        Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        let status = self.child.wait().unwrap();
        assert!(status.success(), "genhook dev exits cleanly on SIGTERM: {status}");
        // Every line up to the reader's end of file: it may still be forwarding the last
        // ones (the summary) when the process is gone, so waiting on the channel, not
        // taking what is there, keeps a loaded machine from losing them.
        std::iter::from_fn(|| self.log.recv_timeout(PATIENCE).ok()).collect()
    }
}

impl Drop for Dev {
    /// A failing test must not leave a server running.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn trigger(url: &str, job_id: &str, extra: &[&str]) -> Output {
    genhook()
        .args(["trigger", "completed", "--url", url, "--secret", SECRET, "--job-id", job_id])
        .args(extra)
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

fn job_ids(events: &[Value]) -> Vec<String> {
    let mut ids: Vec<String> = events.iter().map(|e| e["job_id"].as_str().unwrap().to_string()).collect();
    ids.sort();
    ids
}

#[test]
fn a_restart_mid_stream_loses_nothing_and_publishes_each_job_once() {
    let state = tempfile::tempdir().unwrap();
    let api = FakeApi::start(Mode::Down);
    let dev = Dev::start(state.path(), Some(&api), &[]);
    let jobs: Vec<String> = (0..5).map(|i| format!("job_restart_{i}")).collect();
    for job in &jobs {
        let out = trigger(&dev.url, job, &["--repeat", "2"]);
        assert!(out.status.success(), "acknowledged: {}", stdout(&out));
        assert!(stdout(&out).contains("\"duplicate\":true"), "the second copy is a duplicate: {}", stdout(&out));
    }
    // Accepted and queued, but the provider API is down: nothing can be published yet.
    dev.no_more_events(Duration::from_millis(1500));
    dev.crash();

    api.set(Mode::Up);
    let dev = Dev::start(state.path(), Some(&api), &[]);
    let events = dev.events(jobs.len());
    assert_eq!(job_ids(&events), jobs);
    for e in &events {
        assert_eq!(e["type"], "generation.completed");
        assert_eq!(e["provider"], "katalo");
    }
    // Deliveries repeated after the restart are still duplicates.
    let again = trigger(&dev.url, &jobs[0], &[]);
    assert!(stdout(&again).contains("\"duplicate\":true"), "{}", stdout(&again));
    dev.no_more_events(Duration::from_millis(1500));
    let log = dev.stop();
    assert!(log.iter().any(|l| l.contains("5 events published")), "summary on exit: {log:?}");

    // `tail` reads the same events back from the embedded outbox.
    let tail = genhook().args(["tail", "--state-dir"]).arg(state.path()).output().unwrap();
    assert!(tail.status.success());
    let tailed: Vec<Value> = stdout(&tail).lines().map(event).collect();
    assert_eq!(job_ids(&tailed), jobs);
}

#[test]
fn forged_deliveries_are_rejected_and_never_queued() {
    let state = tempfile::tempdir().unwrap();
    let api = FakeApi::start(Mode::Up);
    let dev = Dev::start(state.path(), Some(&api), &[]);
    let forged = trigger(&dev.url, "job_forged", &["--forge"]);
    assert!(!forged.status.success());
    assert!(stdout(&forged).starts_with("401"), "{}", stdout(&forged));
    let real = trigger(&dev.url, "job_real", &[]);
    assert!(real.status.success());
    assert_eq!(job_ids(&dev.events(1)), ["job_real"]);
    dev.no_more_events(Duration::from_millis(1000));
    dev.stop();
}

#[test]
fn dead_letters_are_redriven_with_a_count_and_a_dry_run() {
    let state = tempfile::tempdir().unwrap();
    let api = FakeApi::start(Mode::Gone);
    let dev = Dev::start(state.path(), Some(&api), &[]);
    for job in ["job_dead_1", "job_dead_2"] {
        assert!(trigger(&dev.url, job, &[]).status.success());
    }
    // A 404 can never succeed: straight to the DLQ with the reason.
    let deadline = Instant::now() + PATIENCE;
    let redrive = |extra: &[&str]| genhook().arg("redrive").args(extra).arg("--state-dir").arg(state.path()).output();
    loop {
        let out = redrive(&["--dry-run"]).unwrap();
        if stdout(&out).starts_with("would move 2 of 2") {
            assert!(stdout(&out).contains("404"), "the reason is shown: {}", stdout(&out));
            break;
        }
        assert!(Instant::now() < deadline, "never dead-lettered: {}", stdout(&out));
        std::thread::sleep(Duration::from_millis(200));
    }
    dev.stop();

    api.set(Mode::Up);
    let out = redrive(&["--max", "1"]).unwrap();
    assert!(out.status.success());
    assert!(stdout(&out).starts_with("moved 1 "), "{}", stdout(&out));
    assert!(stdout(&redrive(&["--dry-run"]).unwrap()).starts_with("would move 1 of 1"));
    assert!(stdout(&redrive(&[]).unwrap()).starts_with("moved 1 "));

    let dev = Dev::start(state.path(), Some(&api), &[]);
    assert_eq!(job_ids(&dev.events(2)), ["job_dead_1", "job_dead_2"]);
    dev.stop();
}

#[test]
fn the_demo_runs_end_to_end_on_a_fresh_state_dir_and_again() {
    let state = tempfile::tempdir().unwrap();
    let out = genhook()
        .args(["dev", "--demo", "--demo-jobs", "6", "--listen", "127.0.0.1:0", "--state-dir"])
        .arg(state.path())
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "demo failed: {log}");
    let events: Vec<Value> = stdout(&out).lines().map(event).collect();
    assert_eq!(
        events.len(),
        11,
        "one event per Katalo job (6 + 1 watched), per APIMP task and per Replicate prediction: {}",
        stdout(&out)
    );
    let apimp: Vec<&Value> = events.iter().filter(|e| e["provider"] == "apimp").collect();
    assert_eq!(apimp.len(), 2, "a called-back task and a polling-only one");
    assert_eq!(apimp.iter().filter(|e| e["upstream"] == "kling").count(), 1);
    // Two Replicate predictions without their final webhook: one found by its watch, the
    // other (which sent nothing) by a sweep.
    let replicate: Vec<&Value> = events.iter().filter(|e| e["provider"] == "replicate").collect();
    assert_eq!(replicate.len(), 2, "{replicate:?}");
    assert!(log.contains("the watch it registered publishes it") && log.contains("a sweep of the last hour"), "{log}");
    assert!(log.contains("exactly once"), "{log}");
    assert!(log.contains("2 rejected"), "the forged deliveries were refused: {log}");
    assert!(log.contains("watched only"), "{log}");
    assert!(log.contains("followed output link") && log.contains("-> 302 ->") && log.contains("(HTTP 200)"), "{log}");
    assert!(!log.contains("token="), "links are credentials: never logged whole: {log}");
    for output in events.iter().flat_map(|e| e["outputs"].as_array().unwrap()) {
        let link = output["link"].as_str().unwrap();
        assert!(link.starts_with("http://127.0.0.1:") && link.contains("/outputs/"), "{link}");
    }
    // The README's first command, run a second time in the same place, works again.
    let again = genhook()
        .args(["dev", "--demo", "--demo-jobs", "2", "--listen", "127.0.0.1:0", "--state-dir"])
        .arg(state.path())
        .output()
        .unwrap();
    assert!(again.status.success(), "a second demo failed: {}", String::from_utf8_lossy(&again.stderr));
}

#[test]
fn init_then_dev_and_tail_on_dynamodb_local_and_the_sqs_emulator() {
    for var in ["AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL_SQS"] {
        assert!(std::env::var(var).is_ok(), "{var} must be set: run the suite with scripts/test.sh");
    }
    let prefix = format!("genhook-cli-{}", std::process::id());
    let init = genhook().args(["init", "--prefix", &prefix]).output().unwrap();
    assert!(init.status.success(), "{}", String::from_utf8_lossy(&init.stderr));
    let vars: Vec<(String, String)> = stdout(&init)
        .lines()
        .filter_map(|l| l.strip_prefix("export ")?.split_once('=').map(|(k, v)| (k.into(), v.into())))
        .collect();
    let names: Vec<&str> = vars.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        names,
        [
            "GENHOOK_TABLE",
            "GENHOOK_INBOX_QUEUE_URL",
            "GENHOOK_INBOX_DLQ_URL",
            "GENHOOK_OUTBOX_QUEUE_URL",
            "GENHOOK_OUTBOX_DLQ_URL"
        ]
    );
    // Idempotent: a second run finds the same resources.
    let again = genhook().args(["init", "--prefix", &prefix]).output().unwrap();
    assert_eq!(stdout(&again), stdout(&init));

    let api = FakeApi::start(Mode::Up);
    let state = tempfile::tempdir().unwrap();
    let mut cmd_env = vars.clone();
    cmd_env.push(("KATALO_API_KEY".into(), API_KEY.into()));
    let dev = {
        let mut cmd = genhook();
        cmd.args(["dev", "--aws", "--listen", "127.0.0.1:0", "--state-dir"])
            .arg(state.path())
            .envs(cmd_env.iter().map(|(k, v)| (k, v)))
            .env("KATALO_API_BASE_URL", &api.base_url)
            .env("KATALO_WEBHOOK_SECRET", SECRET)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let events = lines(child.stdout.take().unwrap());
        let log = lines(child.stderr.take().unwrap());
        let line = log.recv_timeout(PATIENCE).unwrap();
        let mut url = None;
        for l in std::iter::once(line).chain(std::iter::from_fn(|| log.recv_timeout(PATIENCE).ok())) {
            assert!(!l.contains("embedded"), "--aws must not use the embedded store: {l}");
            if let Some(u) = l.split("receiving Katalo webhooks at ").nth(1) {
                url = Some(u.trim().to_string());
                break;
            }
        }
        Dev { child, url: url.unwrap(), simulator: None, events, log }
    };
    assert!(trigger(&dev.url, "job_aws_1", &["--repeat", "3"]).status.success());
    assert_eq!(job_ids(&dev.events(1)), ["job_aws_1"]);
    dev.stop();
    assert!(!state.path().join("genhook.sqlite").exists(), "nothing embedded was written");

    // Reading SQS counts receives toward the outbox DLQ: a bare tail refuses and says why.
    let bare = genhook().args(["tail", "--aws"]).envs(vars.iter().map(|(k, v)| (k, v))).output().unwrap();
    assert!(!bare.status.success() && String::from_utf8_lossy(&bare.stderr).contains("--ack"));
    let peek = genhook().args(["tail", "--aws", "--peek"]).envs(vars.iter().map(|(k, v)| (k, v))).output().unwrap();
    assert!(peek.status.success(), "{}", String::from_utf8_lossy(&peek.stderr));
    assert_eq!(job_ids(&stdout(&peek).lines().map(event).collect::<Vec<Value>>()), ["job_aws_1"]);
    let tail = genhook().args(["tail", "--aws", "--ack"]).envs(vars.iter().map(|(k, v)| (k, v))).output().unwrap();
    assert!(tail.status.success(), "{}", String::from_utf8_lossy(&tail.stderr));
    let tailed: Vec<Value> = stdout(&tail).lines().map(event).collect();
    assert_eq!(job_ids(&tailed), ["job_aws_1"]);
}

async fn apimp_status(Path(task_id): Path<String>) -> axum::Json<Value> {
    axum::Json(json!({"code": 200, "data": {"task_id": task_id, "status": "finished", "progress": 100,
        "files": [{"file_url": format!("https://cdn.klingai.com/{task_id}.mp4"), "file_type": "image"}]}}))
}

#[test]
fn callback_urls_and_watches_drive_apimp_tasks_through_dev() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let app = Router::new().route("/api/generate/status/{task_id}", get(apimp_status));
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let apimp_url = format!("http://{}", listener.local_addr().unwrap());
    runtime.spawn(async move { axum::serve(listener, app).await.unwrap() });
    let state = tempfile::tempdir().unwrap();

    // A polling-only task registered before dev runs: dev polls it and publishes.
    let watch = genhook()
        .args(["watch", "--ref", "render-1", "--task-id", "task_cli_1", "--state-dir"])
        .arg(state.path())
        .output()
        .unwrap();
    assert!(watch.status.success(), "{}", String::from_utf8_lossy(&watch.stderr));
    let mut cmd = genhook();
    cmd.args(["dev", "--listen", "127.0.0.1:0", "--state-dir"])
        .arg(state.path())
        .env("KATALO_WEBHOOK_SECRET", SECRET)
        .env("APIMP_CALLBACK_SECRET", "cli-apimp-key")
        .env("APIMP_API_KEY", "sk-cli")
        .env("APIMP_API_BASE_URL", &apimp_url)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let events = lines(child.stdout.take().unwrap());
    let log = lines(child.stderr.take().unwrap());
    let url = loop {
        let line = log.recv_timeout(PATIENCE).expect("dev starts");
        if let Some(u) = line.split("receiving Katalo webhooks at ").nth(1) {
            break u.trim().to_string();
        }
    };
    let dev = Dev { child, url, simulator: None, events, log };
    let first: Value = event(&dev.events.recv_timeout(PATIENCE).unwrap());
    assert_eq!((first["provider"].as_str(), first["job_id"].as_str()), (Some("apimp"), Some("task_cli_1")));

    // A callback URL minted by the CLI is accepted by dev's receiver.
    let base = dev.url.trim_end_matches("/webhooks/katalo").to_string();
    let minted = genhook()
        .args(["callback-url", "--upstream", "kling", "--ref", "order-2", "--base-url", &base])
        .env("APIMP_CALLBACK_SECRET", "cli-apimp-key")
        .output()
        .unwrap();
    let callback_url = stdout(&minted).trim().to_string();
    assert!(callback_url.starts_with(&format!("{base}/webhooks/apimp/kling?ref=order-2&token=")), "{callback_url}");
    let watch = genhook()
        .args(["watch", "--ref", "order-2", "--task-id", "task_cli_2", "--upstream", "kling", "--state-dir"])
        .arg(state.path())
        .output()
        .unwrap();
    assert!(watch.status.success());
    let body = r#"{"task_id":"kt_2","task_status":"succeed"}"#;
    let sent = runtime.block_on(async {
        let resp = genhook::toolkit::http::http_client(Duration::from_secs(5))
            .post(&callback_url)
            .body(body)
            .send()
            .await
            .unwrap();
        resp.status().as_u16()
    });
    assert_eq!(sent, 200);
    let second: Value = event(&dev.events.recv_timeout(PATIENCE).unwrap());
    assert_eq!(second["job_id"], "task_cli_2");
    dev.no_more_events(Duration::from_millis(1500));
    dev.stop();
}

#[test]
fn without_an_apimp_key_dev_reads_apimp_tasks_from_the_simulator() {
    let state = tempfile::tempdir().unwrap();
    let watch = genhook()
        .args(["watch", "--ref", "sim-1", "--task-id", "task_sim_cli", "--state-dir"])
        .arg(state.path())
        .output()
        .unwrap();
    assert!(watch.status.success());
    let dev = Dev::start(state.path(), None, &[]);
    let e = &dev.events(1)[0];
    assert_eq!(
        (e["provider"].as_str(), e["job_id"].as_str(), e["status"].as_str(), e["provider_status"].as_str()),
        (Some("apimp"), Some("task_sim_cli"), Some("succeeded"), Some("finished"))
    );
    assert!(e["outputs"][0]["url"].as_str().unwrap().contains("X-Amz-Signature="), "a simulator-signed URL");
    dev.stop();
}

/// Issue 21: a Replicate prediction registered with `genhook watch --provider replicate`
/// is polled by dev (the built-in simulator's jobs are Replicate predictions too) and
/// published once, as its final webhook would have been.
#[test]
fn a_replicate_watch_through_dev_publishes_the_prediction() {
    let state = tempfile::tempdir().unwrap();
    let dev = Dev::start(state.path(), None, &[]);
    let watch = genhook()
        .args(["watch", "--provider", "replicate", "--job-id", "pred_watch_cli", "--state-dir"])
        .arg(state.path())
        .output()
        .unwrap();
    assert!(watch.status.success(), "{}", String::from_utf8_lossy(&watch.stderr));
    assert!(String::from_utf8_lossy(&watch.stdout).contains("watching Replicate prediction pred_watch_cli"));
    let e = &dev.events(1)[0];
    assert_eq!(
        (e["provider"].as_str(), e["job_id"].as_str(), e["type"].as_str()),
        (Some("replicate"), Some("pred_watch_cli"), Some("generation.completed"))
    );
    dev.stop();
}

/// Issue 21: a prediction that ended with no delivery at all is published by
/// `genhook sweep` through dev (which reads the built-in simulator's prediction list).
#[test]
fn a_sweep_through_dev_publishes_a_prediction_nobody_delivered() {
    let state = tempfile::tempdir().unwrap();
    let dev = Dev::start(state.path(), None, &[]);
    let sim = dev.simulator.clone().expect("dev runs the built-in simulator");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let job: Value = runtime.block_on(async {
        let client = genhook::toolkit::http::client_builder(Duration::from_secs(5)).build().unwrap();
        let resp = client
            .post(format!("{sim}/v1/predictions"))
            .bearer_auth(genhook_cli::simulate::SIM_API_KEY)
            .json(&json!({"version": "v1", "input": {"runs_for_ms": 10}}))
            .send()
            .await
            .unwrap();
        resp.json().await.unwrap()
    });
    let id = job["id"].as_str().unwrap().to_string();
    assert_eq!(job["status"], "starting");
    std::thread::sleep(Duration::from_millis(50));
    let sweep = genhook().args(["sweep", "--state-dir"]).arg(state.path()).output().unwrap();
    assert!(sweep.status.success(), "{}", String::from_utf8_lossy(&sweep.stderr));
    assert!(String::from_utf8_lossy(&sweep.stdout).contains("sweeping Replicate's predictions of the last 3600 s"));
    let e = &dev.events(1)[0];
    assert_eq!(
        (e["provider"].as_str(), e["job_id"].as_str(), e["type"].as_str()),
        (Some("replicate"), Some(id.as_str()), Some("generation.completed"))
    );
    // Providers without a list say so.
    let katalo = genhook().args(["sweep", "--provider", "katalo", "--state-dir"]).arg(state.path()).output().unwrap();
    assert!(!katalo.status.success());
    assert!(String::from_utf8_lossy(&katalo.stderr).contains("only Replicate lists its jobs"), "{katalo:?}");
    dev.stop();
}

#[test]
fn katalo_watch_refresh_and_output_links_through_dev() {
    let api = FakeApi::start(Mode::Up);
    let state = tempfile::tempdir().unwrap();
    // A Katalo job registered before dev runs, whose webhook never comes: dev polls it.
    let watch = genhook()
        .args(["watch", "--provider", "katalo", "--job-id", "job_watch_cli", "--horizon-secs", "600", "--state-dir"])
        .arg(state.path())
        .output()
        .unwrap();
    assert!(watch.status.success(), "{}", String::from_utf8_lossy(&watch.stderr));
    let dev = Dev::start(state.path(), Some(&api), &[]);
    let completed = &dev.events(1)[0];
    assert_eq!(
        (completed["type"].as_str(), completed["job_id"].as_str(), completed["status"].as_str()),
        (Some("generation.completed"), Some("job_watch_cli"), Some("succeeded"))
    );

    // Its output link, served by dev itself, redirects to the provider's current URL.
    let link = completed["outputs"][0]["link"].as_str().unwrap().to_string();
    assert!(link.contains("/outputs/katalo/job_watch_cli/0?token="), "{link}");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (status, location) = runtime.block_on(async {
        let client = genhook::toolkit::http::client_builder(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let resp = client.get(&link).send().await.unwrap();
        let location = resp.headers().get("location").map(|v| v.to_str().unwrap().to_string());
        (resp.status().as_u16(), location)
    });
    assert_eq!(status, 302);
    assert!(location.unwrap().starts_with("https://files.katalo.ai/job_watch_cli.png?sig="));

    // A refresh request: one generation.urls_refreshed event per request id.
    for _ in 0..2 {
        let refresh = genhook()
            .args(["refresh", "--provider", "katalo", "--job-id", "job_watch_cli", "--request-id", "r-1"])
            .arg("--state-dir")
            .arg(state.path())
            .output()
            .unwrap();
        assert!(refresh.status.success(), "{}", String::from_utf8_lossy(&refresh.stderr));
    }
    let refreshed = &dev.events(1)[0];
    assert_eq!(refreshed["type"], "generation.urls_refreshed");
    assert_eq!(refreshed["original_event_id"], completed["event_id"]);
    assert_ne!(refreshed["event_id"], completed["event_id"]);
    dev.no_more_events(Duration::from_millis(1500));
    dev.stop();
}
