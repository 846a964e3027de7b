//! Receiver Lambda: HTTP API / Function URL (or REST API, ALB) → verify → dedupe → SQS inbox.

use std::sync::Arc;

use genhook::config::lambda::cold_start;
use genhook::config::{ReceiverConfig, receiver_secret_names};
use genhook::domain::clock::SystemClock;
use genhook_receiver::function_handler;
use lambda_http::{Error, run, service_fn};

// One thread: a function serves one invocation at a time, and its concurrency (the
// worker's records of a batch) is asynchronous I/O; no worker threads to start.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    // Logs, metrics, the SDK configuration and the secrets, once per cold start, while
    // the connections to DynamoDB and the inbox are opened.
    let start = cold_start("receiver", Some("GENHOOK_INBOX_QUEUE_URL"), receiver_secret_names()).await?;
    let mut receiver = ReceiverConfig::from_env(&start.secrets.env)?.build_with(&start.sdk);
    // A delivery that fails authentication re-reads the webhook secrets (rate-limited).
    if let Some(reload) = start.secrets.receiver_reload(Arc::new(SystemClock))? {
        receiver = receiver.with_reload(reload);
    }
    let (receiver, metrics) = (&receiver, start.metrics);
    run(service_fn(move |event| metrics.flushed(function_handler(receiver, event)))).await
}
