//! Round trips per delivery on the real adapters (DynamoDB and SQS clients that count
//! every HTTP attempt): what one webhook costs the receiver, and one record the worker.

use std::sync::Arc;

use genhook::adapters::dynamodb::DynamoDedupeStore;
use genhook::adapters::sqs::SqsQueue;
use genhook::domain::clock::SystemClock;
use genhook::engine::worker::{WorkerPorts, WorkerSettings};
use genhook_cli::simulate::script::Answer;
use genhook_tests::calls::counted_aws;
use genhook_tests::fake_katalo::{self, succeeded};
use genhook_tests::lambda::{apigw_event, deliver, pump};
use genhook_tests::{WEBHOOK_SECRET, env, webhook};

#[tokio::test]
async fn a_delivery_costs_three_calls_a_duplicate_one_and_a_publish_four() {
    let aws = genhook_tests::aws::aws().await;
    let stack = aws.stack().await;
    let katalo = fake_katalo::start().await;
    let (counted, calls) = counted_aws().await;

    let store = Arc::new(DynamoDedupeStore::new(counted.ddb.clone(), stack.table.clone()));
    let vars = env(&[
        ("KATALO_WEBHOOK_SECRET", WEBHOOK_SECRET.into()),
        ("KATALO_API_BASE_URL", katalo.base_url()),
        ("KATALO_API_KEY", fake_katalo::API_KEY.into()),
        ("KATALO_API_MAX_RPS", "1000".into()),
        ("GENHOOK_HTTP_TIMEOUT_SECS", "2".into()),
    ]);
    let inbox = Arc::new(SqsQueue::new(counted.sqs.clone(), stack.inbox.clone()));
    let receiver = genhook::config::receiver(&vars, store.clone(), inbox.clone(), Arc::new(SystemClock)).unwrap();
    let ports = WorkerPorts {
        store: store.clone(),
        inbox,
        inbox_dlq: Some(Arc::new(SqsQueue::new(counted.sqs.clone(), stack.inbox_dlq.clone()))),
        outbox: Arc::new(SqsQueue::new(counted.sqs.clone(), stack.outbox.clone())),
        clock: Arc::new(SystemClock),
    };
    let settings = genhook::config::worker_settings(&vars, WorkerSettings::default()).unwrap();
    let worker = genhook::config::worker(&vars, ports, store.clone(), settings).unwrap();
    katalo.script("job_rt", vec![Answer::Job(succeeded("job_rt", 3600))]);
    let body = webhook("job_rt", "generation.completed");
    let post = || {
        let sig = genhook::toolkit::auth::hmac::sign_hex(WEBHOOK_SECRET.as_bytes(), &body);
        deliver(&receiver, apigw_event("POST", "/webhooks/katalo", &body, Some(&sig), true))
    };
    calls.take();

    // A new delivery: claim, inbox send, ENQUEUED mark.
    let (status, json) = post().await;
    assert_eq!((status, &json["duplicate"]), (200, &serde_json::json!(false)), "{json}");
    assert_eq!(calls.take(), ["PutItem", "SendMessage", "UpdateItem"]);

    // A duplicate: the refused claim returns the record (no read, no send).
    let (status, json) = post().await;
    assert_eq!((status, &json["duplicate"]), (200, &serde_json::json!(true)), "{json}");
    assert_eq!(calls.take(), ["PutItem"]);

    // The worker on one record (the event source's receive and delete are not its calls):
    // lease, the provider read's slot of the shared read budget, one batch to the outbox,
    // PUBLISHED mark.
    let pumped = pump(&aws, &worker, &stack.inbox).await;
    assert_eq!((pumped.received, pumped.failed.len()), (1, 0));
    assert_eq!(calls.take(), ["UpdateItem", "UpdateItem", "SendMessageBatch", "UpdateItem"]);
    let events = aws.receive_all(&stack.outbox).await;
    assert_eq!(events.len(), 1);
    genhook_tests::schema::parse_event(events[0].body().unwrap());
    assert_eq!(aws.attr(&stack.table, "katalo#job_rt#job", "status").await.as_deref(), Some("PUBLISHED"));
}
