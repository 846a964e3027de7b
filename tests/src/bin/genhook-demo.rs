//! A local run of the whole pipeline on DynamoDB Local and the SQS emulator (started by
//! `scripts/demo.sh`): signed Katalo deliveries, duplicates and a forgery go through the
//! real receiver handler; the real worker reconciles them against a fake Katalo API and
//! publishes normalized events, printed here as JSON lines (URL credentials redacted).

use genhook::signature::sign_hex;
use genhook::signed_url::redact;
use genhook_tests::fake_katalo::{Answer, pending, succeeded};
use genhook_tests::lambda::{apigw_event, deliver};
use genhook_tests::{Harness, webhook};
use serde_json::json;

#[tokio::main]
async fn main() {
    let h = Harness::new().await;
    eprintln!("stack: table {} | inbox {} | outbox {}", h.stack.table, h.stack.inbox, h.stack.outbox);

    h.katalo.script("job_demo_1", vec![Answer::Job(succeeded("job_demo_1", 3600))]);
    h.katalo.script(
        "job_demo_2",
        vec![Answer::Job(succeeded("job_demo_2", 60)), Answer::Job(succeeded("job_demo_2", 3600))],
    );
    h.katalo.script(
        "job_demo_3",
        vec![Answer::Job(pending("job_demo_3", "processing")), Answer::Job(succeeded("job_demo_3", 3600))],
    );
    let limited =
        json!({"error": {"code": "rate_limited", "message": "slow down", "retryable": true, "retry_after": 1}});
    h.katalo.script("job_demo_4", vec![Answer::Error(429, limited, None), Answer::Job(succeeded("job_demo_4", 3600))]);
    let failed = json!({"job_id": "job_demo_5", "status": "failed", "failure": {"code": "content_policy", "message": "blocked"}});
    h.katalo.script("job_demo_5", vec![Answer::Job(failed)]);

    let deliveries = [
        ("job_demo_1", "generation.completed", "signed"),
        ("job_demo_1", "generation.completed", "signed"), // the provider's retry: a duplicate
        ("job_demo_2", "generation.completed", "signed"), // first URL expires too soon
        ("job_demo_3", "generation.completed", "signed"), // API still says processing
        ("job_demo_4", "generation.completed", "signed"), // API rate-limits once
        ("job_demo_5", "generation.failed", "signed"),
        ("job_demo_5", "generation.failed", "signed"),    // duplicate
        ("job_demo_6", "generation.completed", "forged"), // wrong secret
    ];
    let (mut accepted, mut duplicates, mut rejected) = (0, 0, 0);
    for (job, event_type, how) in deliveries {
        let body = webhook(job, event_type);
        let secret: &[u8] =
            if how == "forged" { b"an-attackers-guess" } else { genhook_tests::WEBHOOK_SECRET.as_bytes() };
        let sig = sign_hex(secret, &body);
        let (status, reply) =
            deliver(&h.receiver, apigw_event("POST", "/webhooks/katalo", &body, Some(&sig), true)).await;
        eprintln!("POST /webhooks/katalo {job} {event_type} ({how}) -> {status} {reply}");
        match (status, reply["duplicate"].as_bool()) {
            (200, Some(true)) => duplicates += 1,
            (200, _) => accepted += 1,
            _ => rejected += 1,
        }
    }

    eprintln!("worker: reconciling the inbox against the Katalo API ...");
    let pumps = h.drain().await;
    let retries: usize = pumps.iter().map(|p| p.failed.len()).sum();
    let events = h.events().await;
    for mut e in events.clone() {
        for o in e["outputs"].as_array_mut().into_iter().flatten() {
            o["url"] = json!(redact(o["url"].as_str().unwrap_or_default()));
        }
        println!("{e}");
    }
    let dead = h.aws.depth(&h.stack.inbox_dlq).await;
    eprintln!(
        "\nsummary: {} deliveries | {accepted} accepted | {duplicates} duplicates | {rejected} rejected | {retries} worker retries | {} events published | {dead} dead-lettered",
        deliveries.len(),
        events.len()
    );
    assert_eq!((accepted, events.len(), dead), (5, 5, 0), "the demo's expected outcome");
}
