//! Worker Lambda: SQS inbox → reconcile with the provider API → SQS outbox.

use genhook::adapters::aws::load_sdk_config;
use genhook::config::emf::Metrics;
use genhook::config::{Env, SecretEnv, WorkerConfig, api_secret_names};
use genhook_worker::function_handler;
use lambda_runtime::{Error, run, service_fn, tracing};

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing::init_default_subscriber();
    let env = Env::process();
    // Metrics (CloudWatch EMF on stdout) are written after each invocation.
    let metrics = Metrics::install(&env, "worker")?;
    // Configuration, secrets, SDK clients and the HTTP client are read and built once
    // per cold start.
    let sdk = load_sdk_config().await;
    let secrets = SecretEnv::load(&sdk, env, api_secret_names()).await?;
    let worker = WorkerConfig::from_env(&secrets.env)?.build_with(&sdk)?;
    let worker = &worker;
    run(service_fn(move |event| metrics.flushed(function_handler(worker, event)))).await
}
