//! The `genhook` binary run as a user runs it: spawned processes, real loopback ports.

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use genhook::toolkit::auth::hmac::HmacSecrets;
use genhook::toolkit::auth::standard_webhooks::{Secrets, TIMESTAMP_HEADER};

const SECRET: &str = "whsec_test_katalo_0123456789";
const BODY: &str = r#"{"event_type":"generation.completed","job_id":"job_123"}"#;
// printf '%s' "$BODY" | openssl dgst -sha256 -hmac "$SECRET"
const SIG: &str = "9c4623404befccba8bd7b03e78e30ef7bb005078a65abc381ab0fe262c83cc66";

fn genhook(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_genhook"))
        .args(args)
        .env_remove("KATALO_WEBHOOK_SECRET")
        .env_remove("REPLICATE_WEBHOOK_SECRET")
        .env_remove("GENHOOK_WEBHOOK_URL")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn genhook");
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

#[test]
fn sign_matches_openssl() {
    let out = genhook(&["sign", "--secret", SECRET], BODY);
    assert!(out.status.success());
    assert_eq!(stdout(&out), SIG);
    let file = std::env::temp_dir().join(format!("genhook-sign-{}.json", std::process::id()));
    std::fs::write(&file, BODY).unwrap();
    let out = genhook(&["sign", "--secret", SECRET, file.to_str().unwrap()], "");
    assert_eq!(stdout(&out), SIG);
}

#[test]
fn verify_says_valid_or_invalid_by_exit_code() {
    let ok = genhook(&["verify", "--secret", SECRET, "--signature", &SIG.to_uppercase()], BODY);
    assert_eq!((ok.status.code(), stdout(&ok).as_str()), (Some(0), "valid"));
    let bad = genhook(&["verify", "--secret", "other", "--signature", SIG], BODY);
    assert_eq!(bad.status.code(), Some(1));
    assert_eq!(stdout(&bad), "invalid: signature does not match");
}

#[test]
fn helpful_errors() {
    let out = genhook(&["sign"], BODY);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--secret"), "says what is missing");
    let out = genhook(&["sign", "--secret", "s", "/no/such/file.json"], "");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read /no/such/file.json"));
    let out = genhook(&["send", "--secret", "s", "--url", "http://127.0.0.1:9/webhooks/katalo"], BODY);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot reach"));
}

type Seen = Arc<Mutex<Vec<Vec<u8>>>>;

/// A receiver on loopback that checks the signature like genhook's does.
async fn receiver() -> (String, Seen) {
    async fn hook(State(seen): State<Seen>, headers: HeaderMap, body: Bytes) -> (StatusCode, &'static str) {
        let sig = headers.get("x-katalo-signature").and_then(|v| v.to_str().ok());
        if HmacSecrets::new(SECRET, None).verify_hex(&body, sig).is_err() {
            return (StatusCode::UNAUTHORIZED, r#"{"error":"invalid_signature"}"#);
        }
        seen.lock().unwrap().push(body.to_vec());
        (StatusCode::OK, r#"{"ok":true}"#)
    }
    let seen: Seen = Arc::default();
    let app = Router::new().route("/webhooks/katalo", post(hook)).with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/webhooks/katalo", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

async fn run(args: Vec<String>, stdin: &'static str) -> Output {
    tokio::task::spawn_blocking(move || genhook(&args.iter().map(String::as_str).collect::<Vec<_>>(), stdin))
        .await
        .unwrap()
}

#[tokio::test]
async fn trigger_and_send_deliver_signed_webhooks() {
    let (url, seen) = receiver().await;
    let args = |extra: &[&str]| {
        let mut a: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        a.extend(["--url".into(), url.clone(), "--secret".into(), SECRET.into()]);
        a
    };
    let out = run(args(&["trigger", "completed", "--job-id", "job_cli", "--repeat", "2"]), "").await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(stdout(&out).lines().count(), 2, "one answer line per delivery");
    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[0], seen[1], "a repeat is the identical delivery");
        let body: serde_json::Value = serde_json::from_slice(&seen[0]).unwrap();
        assert_eq!(
            (body["event_type"].as_str(), body["job_id"].as_str()),
            (Some("generation.completed"), Some("job_cli"))
        );
    }
    let failed = run(args(&["trigger", "failed"]), "").await;
    assert!(failed.status.success());
    let forged = run(args(&["trigger", "completed", "--forge"]), "").await;
    assert_eq!(forged.status.code(), Some(2));
    assert!(stdout(&forged).starts_with("401"));
    let sent = run(args(&["send"]), BODY).await;
    assert!(sent.status.success());
    assert_eq!(seen.lock().unwrap().last().unwrap(), BODY.as_bytes());
}

/// (message id, timestamp, body) of each delivery a Replicate receiver acknowledged.
type Deliveries = Arc<Mutex<Vec<(String, String, Vec<u8>)>>>;

#[tokio::test]
async fn trigger_sends_standard_webhooks_signed_replicate_predictions() {
    const WHSEC: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    async fn hook(State(seen): State<Deliveries>, headers: HeaderMap, body: Bytes) -> StatusCode {
        let Ok(v) = Secrets::parse([WHSEC]).unwrap().verify(&headers, &body, time::OffsetDateTime::now_utc()) else {
            return StatusCode::UNAUTHORIZED;
        };
        let ts = headers[TIMESTAMP_HEADER].to_str().unwrap().to_string();
        seen.lock().unwrap().push((v.id, ts, body.to_vec()));
        StatusCode::OK
    }
    let seen = Deliveries::default();
    let app = Router::new().route("/webhooks/replicate", post(hook)).with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/webhooks/replicate", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let args = |extra: &[&str]| {
        let mut a: Vec<String> = ["trigger", "--provider", "replicate", "--url", &url].map(String::from).to_vec();
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };

    let out = run(args(&["completed", "--secret", WHSEC, "--job-id", "p_cli", "--repeat", "2"]), "").await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(stdout(&out).lines().count(), 2, "one answer line per delivery");
    let out = run(args(&["failed", "--secret", WHSEC]), "").await;
    assert!(out.status.success());
    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 3);
        assert_eq!((&seen[0].0, &seen[0].2), (&seen[1].0, &seen[1].2), "a repeat is the same message, same body");
        assert_ne!(seen[2].0, seen[0].0, "another trigger is another message");
        assert!(seen.iter().all(|(id, ts, _)| id.starts_with("msg_") && ts.parse::<i64>().is_ok()));
        let parse = |b: &[u8]| genhook::providers::replicate::webhook::ReplicateWebhook::parse(b).unwrap();
        let done = parse(&seen[0].2);
        assert_eq!((done.prediction_id.as_str(), done.status.as_str()), ("p_cli", "succeeded"));
        assert!(done.body["output"][0].as_str().unwrap().starts_with("https://replicate.delivery/"));
        let failed = parse(&seen[2].2);
        assert_eq!((failed.status.as_str(), failed.prediction_id.len()), ("failed", 26));
        assert!(failed.body["error"].is_string());
    }

    let forged = run(args(&["completed", "--secret", WHSEC, "--forge"]), "").await;
    assert_eq!(forged.status.code(), Some(2));
    assert!(stdout(&forged).starts_with("401"));
    let missing = run(args(&["completed"]), "").await;
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("pass --secret or set REPLICATE_WEBHOOK_SECRET"));
    let bad = run(args(&["completed", "--secret", "whsec_!!"]), "").await;
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("invalid --secret"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
    assert_eq!(seen.lock().unwrap().len(), 3, "nothing else was accepted");
}
