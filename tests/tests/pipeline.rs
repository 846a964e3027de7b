//! The whole pipeline: receiver → DynamoDB Local → SQS inbox → worker (against a fake
//! Katalo API) → SQS outbox.

use std::sync::Arc;
use std::time::Duration;

use genhook::adapters::provision::MAX_RECEIVES;
use genhook::engine::worker::{DEFAULT_MAX_RECEIVES, FAILURE_REASON_ATTRIBUTE};
use genhook::toolkit::http::url_expiry::expiry_from_url;
use genhook_cli::simulate::script::Answer;
use genhook_tests::fake_katalo::{pending, succeeded};
use genhook_tests::lambda::pump;
use genhook_tests::{Harness, webhook};
use serde_json::json;

#[tokio::test]
async fn a_delivery_becomes_one_reconciled_event() {
    let h = Harness::new().await;
    h.katalo.script("job_e2e", vec![Answer::Job(succeeded("job_e2e", 3600))]);
    assert_eq!(h.post(&webhook("job_e2e", "generation.completed")).await.0, 200);
    h.drain().await;

    let events = h.events().await;
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert_eq!(e["type"], "generation.completed");
    assert_eq!(e["provider"], "katalo");
    assert_eq!(e["job_id"], "job_e2e");
    assert_eq!(e["status"], "succeeded");
    assert_eq!(e["reference"], "listing-123");
    assert_eq!(e["metadata"], json!({"tenant": "acme"}));
    assert_eq!(e["source_asset_id"], "src_01JXAMPLE");
    let url = e["outputs"][0]["url"].as_str().unwrap();
    assert!(url.contains("primary.png"), "the API's fresh URL, not the webhook's");
    let expiry = expiry_from_url(url).unwrap();
    assert!(expiry > time::OffsetDateTime::now_utc() + time::Duration::minutes(10));
    assert!(e["outputs"][0]["expires_at"].is_string());
    assert_eq!(e["event_id"], genhook::domain::dedupe::event_id("katalo#job_e2e#generation.completed"));
    let key = "katalo#job_e2e#on:generation.completed";
    // The worker published under the job's key; the delivery's own record stays ENQUEUED
    // (it answers duplicates).
    let job_key = genhook::providers::katalo::message::publish_key("job_e2e");
    assert_eq!(h.aws.attr(&h.stack.table, &job_key, "status").await.as_deref(), Some("PUBLISHED"));
    assert_eq!(h.aws.attr(&h.stack.table, key, "status").await.as_deref(), Some("ENQUEUED"));

    // SQS delivers the same inbox message again: nothing new is published.
    let inbox_msg = json!({"type": "katalo.webhook", "dedupe_key": key, "job_id": "job_e2e",
        "event_type": "generation.completed", "received_at": "2026-11-23T12:00:00Z", "payload": {}});
    h.aws.sqs.send_message().queue_url(&h.stack.inbox).message_body(inbox_msg.to_string()).send().await.unwrap();
    h.drain().await;
    assert!(h.events().await.is_empty(), "no second event");
    assert_eq!(h.katalo.calls("job_e2e"), 1);
}

#[tokio::test]
async fn fifty_concurrent_identical_deliveries_make_one_message_and_one_event() {
    let h = Arc::new(Harness::new().await);
    h.katalo.script("job_storm", vec![Answer::Job(succeeded("job_storm", 3600))]);
    let body = Arc::new(webhook("job_storm", "generation.completed"));
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let (h, body) = (h.clone(), body.clone());
        // Each delivery is retried like a provider would until it is acknowledged.
        tasks.push(tokio::spawn(async move {
            for _ in 0..100 {
                let (status, json) = h.post(&body).await;
                match status {
                    200 => return json["duplicate"].as_bool().unwrap(),
                    503 => tokio::time::sleep(Duration::from_millis(20)).await,
                    other => panic!("unexpected {other}: {json}"),
                }
            }
            panic!("never acknowledged");
        }));
    }
    let mut firsts = 0;
    for t in tasks {
        if !t.await.unwrap() {
            firsts += 1;
        }
    }
    assert_eq!(firsts, 1, "exactly one delivery is the first");
    assert_eq!(h.aws.depth(&h.stack.inbox).await, 1, "exactly one inbox message");
    h.drain().await;
    assert_eq!(h.events().await.len(), 1, "exactly one outbox event");
}

#[tokio::test]
async fn rate_limits_and_outages_are_retried_until_they_pass() {
    let h = Harness::new().await;
    let limited =
        json!({"error": {"code": "rate_limited", "message": "slow down", "retryable": true, "retry_after": 1}});
    h.katalo.script("job_429", vec![Answer::Error(429, limited, None), Answer::Job(succeeded("job_429", 3600))]);
    h.katalo.script(
        "job_5xx",
        vec![
            Answer::Error(502, json!({"error": {"code": "bad_gateway", "message": "upstream"}}), None),
            Answer::Job(succeeded("job_5xx", 3600)),
        ],
    );
    h.katalo.script(
        "job_slow",
        vec![
            Answer::Slow(Duration::from_secs(3), succeeded("job_slow", 3600)),
            Answer::Job(succeeded("job_slow", 3600)),
        ],
    );
    for job in ["job_429", "job_5xx", "job_slow"] {
        assert_eq!(h.post(&webhook(job, "generation.completed")).await.0, 200);
    }

    let first = pump(&h.aws, &h.worker, &h.stack.inbox).await;
    assert_eq!((first.received, first.failed.len()), (3, 0), "all three wait: sent anew, no receive spent");
    // Delayed for their retry, not gone.
    assert_eq!(pump(&h.aws, &h.worker, &h.stack.inbox).await.received, 0);
    assert_eq!(h.aws.depth(&h.stack.inbox).await, 3);

    h.drain().await;
    let mut jobs: Vec<String> = h.events().await.iter().map(|e| e["job_id"].as_str().unwrap().to_string()).collect();
    jobs.sort();
    assert_eq!(jobs, ["job_429", "job_5xx", "job_slow"]);
    for job in ["job_429", "job_5xx", "job_slow"] {
        assert_eq!(h.katalo.calls(job), 2, "{job}: one failed read, one good one");
    }
}

/// Issue 20, item 5: a rate limit that outlasts the inbox's `maxReceiveCount` (the
/// template's 20) dead-letters nothing: each wait is a copy sent anew with a delay, so no
/// receive is spent, and the record is published when the provider answers again.
#[tokio::test]
async fn a_rate_limit_longer_than_the_receive_limit_dead_letters_nothing() {
    assert_eq!(MAX_RECEIVES, DEFAULT_MAX_RECEIVES, "the emulator's inbox redrives as the template's does");
    let h = Harness::new().await;
    let limited =
        json!({"error": {"code": "rate_limited", "message": "slow down", "retryable": true, "retry_after": 1}});
    let storm = MAX_RECEIVES as usize + 5;
    let mut answers: Vec<Answer> = (0..storm).map(|_| Answer::Error(429, limited.clone(), None)).collect();
    answers.push(Answer::Job(succeeded("job_storm", 3600)));
    h.katalo.script("job_storm", answers);
    assert_eq!(h.post(&webhook("job_storm", "generation.completed")).await.0, 200);

    let pumps = genhook_tests::lambda::pump_until_empty(&h.aws, &h.worker, &h.stack.inbox, 600).await;
    assert!(pumps.iter().all(|p| p.failed.is_empty()), "no batch item failures: {pumps:?}");
    assert_eq!(h.katalo.calls("job_storm") as usize, storm + 1, "every wait ended in one more read");
    assert_eq!(h.aws.depth(&h.stack.inbox_dlq).await, 0, "nothing dead-lettered");
    let events = h.events().await;
    assert_eq!((events.len(), events[0]["status"].as_str()), (1, Some("succeeded")));
}

#[tokio::test]
async fn a_job_still_running_is_polled_until_it_finishes() {
    let h = Harness::new().await;
    h.katalo.script(
        "job_slowgen",
        vec![
            Answer::Job(pending("job_slowgen", "queued")),
            Answer::Job(pending("job_slowgen", "processing")),
            Answer::Job(succeeded("job_slowgen", 3600)),
        ],
    );
    h.post(&webhook("job_slowgen", "generation.completed")).await;
    let pumps = h.drain().await;
    // A running job is polled by re-sending its message with a delay, not by failing it
    // (which would count receives toward the DLQ): three messages, no failures.
    assert_eq!(pumps.iter().map(|p| p.failed.len()).sum::<usize>(), 0, "no batch item failures");
    assert_eq!(pumps.iter().map(|p| p.received).sum::<usize>(), 3, "the webhook and two scheduled polls");
    let events = h.events().await;
    assert_eq!((events.len(), events[0]["status"].as_str()), (1, Some("succeeded")));
    assert_eq!(h.katalo.calls("job_slowgen"), 3);
}

#[tokio::test]
async fn expiring_urls_are_refreshed_before_publishing() {
    let h = Harness::new().await;
    // The first read returns a URL with a minute left (under the 600 s minimum).
    h.katalo.script("job_exp", vec![Answer::Job(succeeded("job_exp", 60)), Answer::Job(succeeded("job_exp", 3600))]);
    h.post(&webhook("job_exp", "generation.completed")).await;
    h.drain().await;
    let events = h.events().await;
    assert_eq!(events.len(), 1);
    let expiry = expiry_from_url(events[0]["outputs"][0]["url"].as_str().unwrap()).unwrap();
    assert!(expiry > time::OffsetDateTime::now_utc() + time::Duration::minutes(50));
    assert_eq!(h.katalo.calls("job_exp"), 2);
}

#[tokio::test]
async fn an_unknown_job_goes_to_the_dlq_with_the_reason() {
    let h = Harness::new().await;
    // Nothing scripted: the fake answers 404 {"error":{"code":"not_found",...}}.
    h.post(&webhook("job_ghost", "generation.completed")).await;
    let pumps = h.drain().await;
    assert!(pumps.iter().all(|p| p.failed.is_empty()), "dead-lettered at once, not retried");
    assert_eq!(h.aws.depth(&h.stack.inbox).await, 0);
    let dead = h.aws.receive_all(&h.stack.inbox_dlq).await;
    assert_eq!(dead.len(), 1);
    let reason = dead[0].message_attributes().unwrap()[FAILURE_REASON_ATTRIBUTE].string_value().unwrap();
    assert!(reason.contains("404") && reason.contains("not_found"), "{reason}");
    // The app hears of it once, with the same reason.
    let events = h.events().await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(
        (events[0]["type"].as_str(), events[0]["abandon_reason"].as_str()),
        (Some("generation.abandoned"), Some("not_found"))
    );
    assert_eq!(events[0]["abandon_detail"].as_str(), Some(reason));
    let body: serde_json::Value = serde_json::from_str(dead[0].body().unwrap()).unwrap();
    assert_eq!(body["job_id"], "job_ghost", "the original message, ready for redrive");
}

#[tokio::test]
async fn a_failed_job_publishes_a_failed_event() {
    let h = Harness::new().await;
    let failed =
        json!({"job_id": "job_bad", "status": "failed", "failure": {"code": "content_policy", "message": "blocked"}});
    h.katalo.script("job_bad", vec![Answer::Job(failed)]);
    h.post(&webhook("job_bad", "generation.failed")).await;
    h.drain().await;
    let events = h.events().await;
    assert_eq!(events[0]["type"], "generation.failed");
    assert_eq!(events[0]["failure"]["code"], "content_policy");
    assert_eq!(events[0]["outputs"], json!([]));
}

/// Registers a Katalo job through the library call, as a user would right after creating it.
async fn watch(h: &Harness, job: &str) {
    let inbox = genhook::adapters::sqs::SqsQueue::new(h.aws.sqs.clone(), h.stack.inbox.clone());
    let now = time::OffsetDateTime::now_utc();
    genhook::providers::katalo::watch::watch(&inbox, job, Duration::from_secs(3600), now).await.unwrap();
}

#[tokio::test]
async fn a_katalo_job_whose_webhook_never_comes_is_published_by_the_poller() {
    let h = Harness::new().await;
    let job = "job_no_webhook";
    h.katalo.script(
        job,
        vec![
            Answer::Job(pending(job, "queued")),
            Answer::Job(pending(job, "processing")),
            Answer::Job(succeeded(job, 3600)),
        ],
    );
    watch(&h, job).await;
    h.drain().await;
    let events = h.events().await;
    assert_eq!(events.len(), 1, "{events:?}");
    let e = &events[0];
    assert_eq!((e["type"].as_str(), e["status"].as_str()), (Some("generation.completed"), Some("succeeded")));
    // Exactly as if its webhook had come: same id, the API's fields.
    let webhook_key = format!("katalo#{job}#generation.completed");
    assert_eq!(e["event_id"], genhook::domain::dedupe::event_id(&webhook_key));
    assert_eq!(e["reference"], "listing-123");
    assert_eq!(h.katalo.calls(job), 3, "polled until terminal, then no more");
    let job_key = genhook::providers::katalo::message::publish_key(job);
    assert_eq!(h.aws.attr(&h.stack.table, &job_key, "status").await.as_deref(), Some("PUBLISHED"));

    // The webhook arrives after all (Katalo retried it): acknowledged, nothing new.
    assert_eq!(h.post(&webhook(job, "generation.completed")).await.0, 200);
    h.drain().await;
    assert!(h.events().await.is_empty(), "no second event");
    assert_eq!(h.katalo.calls(job), 3);
}

#[tokio::test]
async fn a_webhook_and_a_watch_poll_race_to_one_event() {
    let h = Harness::new().await;
    for round in 0..3 {
        let job = format!("job_race_{round}");
        h.katalo.script(&job, vec![Answer::Job(succeeded(&job, 3600))]);
        // Both on the inbox at once: one batch works them concurrently.
        let body = webhook(&job, "generation.completed");
        let (posted, ()) = tokio::join!(h.post(&body), watch(&h, &job));
        assert_eq!(posted.0, 200);
    }
    h.drain().await;
    let events = h.events().await;
    let mut jobs: Vec<&str> = events.iter().filter_map(|e| e["job_id"].as_str()).collect();
    jobs.sort_unstable();
    assert_eq!(jobs, ["job_race_0", "job_race_1", "job_race_2"], "one event per job");
    assert_eq!(h.aws.depth(&h.stack.inbox_dlq).await, 0);
}

#[tokio::test]
async fn a_refresh_yields_fresh_urls_in_a_urls_refreshed_event() {
    let h = Harness::new().await;
    let job = "job_refresh";
    h.katalo.script(job, vec![Answer::Job(succeeded(job, 3600))]);
    assert_eq!(h.post(&webhook(job, "generation.completed")).await.0, 200);
    h.drain().await;
    let first = h.events().await;
    assert_eq!(first.len(), 1);
    // A second later the API signs a fresh URL (X-Amz-Date is whole seconds).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    h.katalo.script(job, vec![Answer::Job(succeeded(job, 7200))]);

    let inbox = genhook::adapters::sqs::SqsQueue::new(h.aws.sqs.clone(), h.stack.inbox.clone());
    let now = time::OffsetDateTime::now_utc();
    genhook::providers::common::refresh::request(&inbox, "katalo", job, "req-1", now).await.unwrap();
    genhook::providers::common::refresh::request(&inbox, "katalo", job, "req-1", now).await.unwrap();
    h.drain().await;
    let refreshed = h.events().await;
    assert_eq!(refreshed.len(), 1, "one event per request: {refreshed:?}");
    let e = &refreshed[0];
    assert_eq!(e["type"], "generation.urls_refreshed");
    assert_eq!(e["original_event_id"], first[0]["event_id"]);
    assert_ne!(e["event_id"], first[0]["event_id"]);
    assert_ne!(e["outputs"][0]["url"], first[0]["outputs"][0]["url"], "a freshly signed URL");
    assert!(e["outputs"][0]["expires_at"].as_str() > first[0]["outputs"][0]["expires_at"].as_str());

    // A job that failed has nothing to refresh: dead-lettered with the reason.
    h.katalo
        .script("job_refresh_failed", vec![Answer::Job(json!({"job_id": "job_refresh_failed", "status": "failed"}))]);
    genhook::providers::common::refresh::request(&inbox, "katalo", "job_refresh_failed", "req-2", now).await.unwrap();
    h.drain().await;
    assert!(h.events().await.is_empty());
    let dead = h.aws.receive_all(&h.stack.inbox_dlq).await;
    let reason = dead[0].message_attributes().unwrap()[FAILURE_REASON_ATTRIBUTE].string_value().unwrap().to_string();
    assert!(reason.contains("ended failed and has no outputs"), "{reason}");
}
