//! Worker Lambda: SQS inbox → reconcile with the provider API → SQS outbox.

use genhook::config::emf::Metrics;
use genhook::config::{Env, WorkerConfig};
use genhook_worker::function_handler;
use lambda_runtime::{Error, run, service_fn, tracing};

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing::init_default_subscriber();
    let env = Env::process();
    // Metrics (CloudWatch EMF on stdout) are written after each invocation.
    let metrics = Metrics::install(&env, "worker")?;
    // Configuration, SDK clients and the HTTP client are built once per cold start.
    let worker = WorkerConfig::from_env(&env)?.build().await?;
    let worker = &worker;
    run(service_fn(move |event| metrics.flushed(function_handler(worker, event)))).await
}
