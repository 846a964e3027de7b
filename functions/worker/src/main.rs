//! Worker Lambda: SQS inbox → reconcile with the provider API → SQS outbox.

use genhook::config::{Env, WorkerConfig};
use genhook_worker::function_handler;
use lambda_runtime::{Error, run, service_fn, tracing};

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing::init_default_subscriber();
    // Configuration, SDK clients and the HTTP client are built once per cold start.
    let worker = WorkerConfig::from_env(&Env::process())?.build().await?;
    let worker = &worker;
    run(service_fn(move |event| function_handler(worker, event))).await
}
