//! Worker Lambda: SQS inbox → reconcile with the provider API → SQS outbox.

use genhook::config::lambda::cold_start;
use genhook::config::{WorkerConfig, api_secret_names};
use genhook_worker::function_handler;
use lambda_runtime::{Error, run, service_fn};

// One thread: a function serves one invocation at a time, and its concurrency (the
// worker's records of a batch) is asynchronous I/O; no worker threads to start.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    // Logs, metrics, the SDK configuration and the secrets, once per cold start, while
    // the connections to DynamoDB and the inbox are opened.
    let start = cold_start("worker", Some("GENHOOK_INBOX_QUEUE_URL"), api_secret_names()).await?;
    let worker = WorkerConfig::from_env(&start.secrets.env)?.build_with(&start.sdk, Some(&start.secrets))?;
    let (worker, metrics) = (&worker, start.metrics);
    run(service_fn(move |event| metrics.flushed(function_handler(worker, event)))).await
}
