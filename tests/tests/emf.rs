//! The functions' CloudWatch metrics, as the Lambdas write them: the EMF recorder is
//! installed as `main` installs it, the real handlers run over the in-memory store and
//! queues (and a fake Katalo API over HTTP), and the EMF documents flushed after each
//! scenario are parsed and checked (the `_aws.CloudWatchMetrics` directive, the metric
//! names, units, dimensions and values). No emulator is needed.
//!
//! One process has one recorder: the tests take turns (`SERIAL`) and each reads only
//! what it recorded (it drains the recorder first).

use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use genhook::adapters::memory::{MemoryQueue, MemoryStore};
use genhook::config;
use genhook::config::emf::Metrics;
use genhook::domain::clock::SystemClock;
use genhook::engine::receiver::Receiver;
use genhook::engine::worker::{WorkerPorts, WorkerSettings};
use genhook::ports::Queue;
use genhook::ports::env::Env;
use genhook::toolkit::auth::hmac::sign_hex;
use genhook_cli::simulate::script::Answer;
use genhook_tests::fake_katalo;
use genhook_tests::lambda::{apigw_event, deliver};
use genhook_tests::{APIMP_CALLBACK_SECRET, WEBHOOK_SECRET, webhook};
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{Value, json};

const NAMESPACE: &str = "genhook-test";

/// Tests take turns on the process's one recorder.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The recorder, installed once as the receiver's `main` does, and what it wrote right
/// after (the cold start).
fn recorder() -> &'static (Metrics, Vec<Value>) {
    static RECORDER: OnceLock<(Metrics, Vec<Value>)> = OnceLock::new();
    RECORDER.get_or_init(|| {
        let env = Env::from_pairs([("GENHOOK_METRICS_NAMESPACE", NAMESPACE)]);
        let metrics = Metrics::install(&env, "receiver").unwrap();
        let first = flushed(metrics);
        (metrics, first)
    })
}

/// What the recorder holds now, as EMF documents (each line checked against the
/// format); the recorder is empty afterwards.
fn flushed(metrics: Metrics) -> Vec<Value> {
    let mut out = Vec::new();
    metrics.flush_to(&mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    text.lines()
        .map(|line| checked_document(serde_json::from_str(line).expect("each line is one JSON document")))
        .collect()
}

/// An EMF document as CloudWatch reads it: `_aws` with a millisecond `Timestamp` and one
/// directive (namespace, one dimension set, metrics with units); every dimension a
/// string member, every metric a number or an array of at most 100 numbers.
fn checked_document(doc: Value) -> Value {
    let aws = &doc["_aws"];
    assert!(aws["Timestamp"].as_u64().is_some_and(|t| t > 1_700_000_000_000), "{doc}");
    let directives = aws["CloudWatchMetrics"].as_array().expect("CloudWatchMetrics");
    assert_eq!(directives.len(), 1, "{doc}");
    let directive = &directives[0];
    assert_eq!(directive["Namespace"], NAMESPACE);
    let sets = directive["Dimensions"].as_array().expect("Dimensions");
    assert_eq!(sets.len(), 1, "{doc}");
    for dim in sets[0].as_array().unwrap() {
        assert!(doc[dim.as_str().unwrap()].is_string(), "dimension {dim} has a string value: {doc}");
    }
    let metrics = directive["Metrics"].as_array().unwrap();
    assert!(!metrics.is_empty(), "{doc}");
    for metric in metrics {
        let name = metric["Name"].as_str().unwrap();
        assert!(["Count", "Milliseconds"].contains(&metric["Unit"].as_str().unwrap_or("none")), "{doc}");
        match &doc[name] {
            Value::Number(_) => {}
            Value::Array(values) => assert!(values.len() <= 100 && values.iter().all(Value::is_number), "{doc}"),
            other => panic!("metric {name} is {other}: {doc}"),
        }
    }
    doc
}

/// Every value of metric `name` recorded under exactly the dimensions `dims`, and the
/// metric's unit.
fn values(docs: &[Value], name: &str, dims: &[(&str, &str)]) -> (Vec<f64>, Option<String>) {
    let (mut found, mut unit) = (Vec::new(), None);
    for doc in docs {
        let directive = &doc["_aws"]["CloudWatchMetrics"][0];
        let mut set: Vec<&str> =
            directive["Dimensions"][0].as_array().unwrap().iter().map(|d| d.as_str().unwrap()).collect();
        set.sort_unstable();
        let mut wanted: Vec<&str> = dims.iter().map(|(k, _)| *k).collect();
        wanted.sort_unstable();
        if set != wanted || dims.iter().any(|(k, v)| doc[*k] != *v) {
            continue;
        }
        let Some(metric) = directive["Metrics"].as_array().unwrap().iter().find(|m| m["Name"] == name) else {
            continue;
        };
        unit = metric["Unit"].as_str().map(String::from);
        match &doc[name] {
            Value::Array(vs) => found.extend(vs.iter().map(|v| v.as_f64().unwrap())),
            v => found.push(v.as_f64().unwrap()),
        }
    }
    (found, unit)
}

/// The count of counter `name` under `dims` (0 when not written).
fn count(docs: &[Value], name: &str, dims: &[(&str, &str)]) -> f64 {
    let (values, unit) = values(docs, name, dims);
    if !values.is_empty() {
        assert_eq!(unit.as_deref(), Some("Count"), "{name}");
    }
    values.iter().sum()
}

/// The metric names written at all.
fn names(docs: &[Value]) -> Vec<String> {
    let mut names: Vec<String> = docs
        .iter()
        .flat_map(|d| d["_aws"]["CloudWatchMetrics"][0]["Metrics"].as_array().unwrap().clone())
        .map(|m| m["Name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    names.dedup();
    names
}

fn receiver(env: &Env, inbox: Arc<MemoryQueue>) -> Receiver {
    config::receiver(env, Arc::new(MemoryStore::default()), inbox, Arc::new(SystemClock)).unwrap()
}

fn signed(body: &[u8], secret: &str) -> lambda_http::Request {
    apigw_event("POST", "/webhooks/katalo", body, Some(&sign_hex(secret.as_bytes(), body)), true)
}

#[tokio::test]
async fn the_cold_start_is_counted_once_per_function() {
    let _turn = SERIAL.lock().await;
    let (_, first) = recorder();
    assert_eq!(names(first), ["cold_starts"]);
    assert_eq!(count(first, "cold_starts", &[("function", "receiver")]), 1.0);
}

#[tokio::test]
async fn the_receiver_counts_each_answer() {
    let _turn = SERIAL.lock().await;
    let (metrics, _) = recorder();
    flushed(*metrics);
    let env =
        Env::from_pairs([("KATALO_WEBHOOK_SECRET", WEBHOOK_SECRET), ("APIMP_CALLBACK_SECRET", APIMP_CALLBACK_SECRET)]);
    let inbox = Arc::new(MemoryQueue::default());
    let r = receiver(&env, inbox.clone());
    let body = webhook("job_emf_1", "generation.completed");

    assert_eq!(deliver(&r, signed(&body, WEBHOOK_SECRET)).await, (200, json!({"ok": true, "duplicate": false})));
    assert_eq!(deliver(&r, signed(&body, WEBHOOK_SECRET)).await, (200, json!({"ok": true, "duplicate": true})));
    for _ in 0..2 {
        assert_eq!(deliver(&r, signed(&body, "whsec_rotated_on_one_side")).await.0, 401);
    }
    let kling = apigw_event("POST", "/webhooks/apimp/kling?ref=r1&token=00", b"{}", None, false);
    assert_eq!(deliver(&r, kling).await.0, 401);
    assert_eq!(deliver(&r, apigw_event("GET", "/webhooks/katalo", b"", None, false)).await.0, 405);
    assert_eq!(deliver(&r, apigw_event("POST", "/nowhere", b"{}", None, false)).await.0, 404);
    inbox.fail.store(true, Ordering::SeqCst);
    assert_eq!(deliver(&r, signed(&webhook("job_emf_2", "generation.completed"), WEBHOOK_SECRET)).await.0, 503);

    let docs = flushed(*metrics);
    let katalo = [("provider", "katalo")];
    assert_eq!(count(&docs, "deliveries_accepted", &katalo), 1.0);
    assert_eq!(count(&docs, "deliveries_duplicate", &katalo), 1.0);
    let rejected = |dims: &[(&str, &str)]| count(&docs, "deliveries_rejected", dims);
    assert_eq!(rejected(&[("provider", "katalo"), ("reason", "bad_signature")]), 2.0);
    assert_eq!(rejected(&[("provider", "apimp"), ("upstream", "kling"), ("reason", "bad_token")]), 1.0);
    assert_eq!(rejected(&[("provider", "katalo"), ("reason", "method_not_allowed")]), 1.0);
    assert_eq!(rejected(&[("provider", "unknown"), ("reason", "not_found")]), 1.0);
    assert_eq!(count(&docs, "deliveries_5xx", &[("provider", "katalo"), ("reason", "inbox_unavailable")]), 1.0);
    assert_eq!(
        names(&docs),
        ["deliveries_5xx", "deliveries_accepted", "deliveries_duplicate", "deliveries_rejected"],
        "nothing else, and no cold start again"
    );
    // Neither job ids nor keys nor secrets in any document.
    let text = docs.iter().map(Value::to_string).collect::<String>();
    for secret in ["job_emf", "katalo#", WEBHOOK_SECRET, "whsec_rotated"] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }
    assert!(flushed(*metrics).is_empty(), "a flush resets the counters");
}

/// An SQS event of these inbox messages, as Lambda delivers it to the worker.
fn sqs_event(bodies: &[String]) -> LambdaEvent<SqsEvent> {
    let mut event = SqsEvent::default();
    event.records = bodies
        .iter()
        .enumerate()
        .map(|(i, body)| {
            let mut m = SqsMessage::default();
            m.message_id = Some(format!("msg-{i}"));
            m.receipt_handle = Some(format!("rh-{i}"));
            m.body = Some(body.clone());
            m.attributes.insert("ApproximateReceiveCount".into(), "1".into());
            m
        })
        .collect();
    LambdaEvent::new(event, Context::default())
}

#[tokio::test]
async fn the_worker_and_the_links_count_their_outcomes_and_provider_calls() {
    let _turn = SERIAL.lock().await;
    let (metrics, _) = recorder();
    let katalo = fake_katalo::start().await;
    katalo.script("job_emf_ok", vec![Answer::Job(fake_katalo::succeeded("job_emf_ok", 3600))]);
    katalo
        .script("job_emf_busy", vec![Answer::Error(503, json!({"error": {"code": "busy", "retryable": true}}), None)]);
    let env = Env::from_pairs([
        ("KATALO_WEBHOOK_SECRET", WEBHOOK_SECRET.to_string()),
        ("KATALO_API_BASE_URL", katalo.base_url()),
        ("KATALO_API_KEY", fake_katalo::API_KEY.to_string()),
        ("KATALO_API_MAX_RPS", "1000".into()),
        ("GENHOOK_HTTP_TIMEOUT_SECS", "2".into()),
        ("GENHOOK_PUBLIC_URL", "https://links.example".into()),
        ("GENHOOK_LINK_SECRET", "links_emf_secret_0001".into()),
    ]);
    // The inbox messages, as the receiver queues them, and a refresh request.
    let inbox = Arc::new(MemoryQueue::default());
    let r = receiver(&env, inbox.clone());
    for job in ["job_emf_ok", "job_emf_gone", "job_emf_busy"] {
        assert_eq!(deliver(&r, signed(&webhook(job, "generation.completed"), WEBHOOK_SECRET)).await.0, 200);
    }
    let refresh =
        genhook::providers::common::refresh::message("katalo", "job_emf_ok", "req-1", time::OffsetDateTime::now_utc())
            .unwrap();
    inbox.send(refresh).await.unwrap();
    let mut bodies: Vec<String> = inbox.messages().into_iter().map(|m| m.body).collect();
    bodies.push(json!({"type": "elsewhere.webhook", "dedupe_key": "elsewhere#j#k"}).to_string());

    flushed(*metrics);
    let store = Arc::new(MemoryStore::default());
    let (outbox, dlq) = (Arc::new(MemoryQueue::default()), Arc::new(MemoryQueue::default()));
    let ports = WorkerPorts {
        store: store.clone(),
        inbox: Arc::new(MemoryQueue::default()),
        inbox_dlq: Some(dlq.clone()),
        outbox: outbox.clone(),
        clock: Arc::new(SystemClock),
    };
    let settings = config::worker_settings(&env, WorkerSettings::default()).unwrap();
    let worker = config::worker(&env, ports, store.clone(), settings).unwrap();
    let response = genhook_worker::function_handler(&worker, sqs_event(&bodies)).await.unwrap();
    assert_eq!(response.batch_item_failures.len(), 0, "the busy job waits as a copy, no failure");
    // The job the provider does not know is abandoned: an event besides its dead letter.
    assert_eq!((outbox.messages().len(), dlq.messages().len()), (3, 2));

    let docs = flushed(*metrics);
    let k = [("provider", "katalo")];
    assert_eq!(count(&docs, "events_published", &k), 3.0);
    assert_eq!(count(&docs, "jobs_abandoned", &[("provider", "katalo"), ("reason", "not_found")]), 1.0);
    assert_eq!(count(&docs, "urls_refreshed", &k), 1.0);
    assert_eq!(count(&docs, "records_retried", &k), 1.0);
    assert_eq!(count(&docs, "records_dead_lettered", &k), 1.0);
    assert_eq!(count(&docs, "records_dead_lettered", &[("provider", "unknown")]), 1.0, "never the message's word");
    let calls = |class| count(&docs, "provider_api_calls", &[("provider", "katalo"), ("status_class", class)]);
    assert_eq!((calls("2xx"), calls("4xx"), calls("5xx")), (2.0, 1.0, 1.0));
    let (latencies, unit) = values(&docs, "provider_api_latency_ms", &k);
    assert_eq!((latencies.len(), unit.as_deref()), (4, Some("Milliseconds")));
    assert!(latencies.iter().all(|ms| (0.0..2_000.0).contains(ms)), "{latencies:?}");
    let (lags, unit) = values(&docs, "event_lag_ms", &k);
    assert_eq!((lags.len(), unit.as_deref()), (2, Some("Milliseconds")));
    assert!(lags.iter().all(|ms| (0.0..60_000.0).contains(ms)), "{lags:?}");

    // The links function: the published link followed (a provider read), a forged one,
    // and a path that is no link.
    let event: Value = serde_json::from_str(&outbox.messages()[0].body).unwrap();
    let link = event["outputs"][0]["link"].as_str().unwrap().to_string();
    let links = genhook::engine::links::Links::new(
        config::link_service(&env, store.clone(), store, Arc::new(SystemClock)).unwrap(),
        None,
    );
    let get = |uri: &str| {
        let request = http::Request::get(uri).body(lambda_http::Body::Empty).unwrap();
        genhook_links::function_handler(&links, request)
    };
    assert_eq!(get(&link).await.unwrap().status(), 302);
    let forged = format!("{}{}", &link[..link.len() - 1], if link.ends_with('0') { '1' } else { '0' });
    assert_eq!(get(&forged).await.unwrap().status(), 403);
    assert_eq!(get("https://links.example/outputs/nothing").await.unwrap().status(), 404);

    let docs = flushed(*metrics);
    assert_eq!(count(&docs, "links_followed", &k), 1.0);
    assert_eq!(count(&docs, "links_provider_reads", &k), 1.0);
    assert_eq!(count(&docs, "links_refused", &[("provider", "katalo"), ("reason", "invalid_token")]), 1.0);
    assert_eq!(count(&docs, "links_refused", &[("provider", "unknown"), ("reason", "not_a_link")]), 1.0);
    assert_eq!(count(&docs, "provider_api_calls", &[("provider", "katalo"), ("status_class", "2xx")]), 1.0);
    let text = docs.iter().map(Value::to_string).collect::<String>();
    assert!(!text.contains("job_emf") && !text.contains("https://"), "no job id or URL in {text}");
}
