//! Receiver Lambda: HTTP API / Function URL (or REST API, ALB) → verify → dedupe → SQS inbox.

use std::sync::Arc;

use genhook::adapters::aws::load_sdk_config;
use genhook::config::emf::Metrics;
use genhook::config::{Env, ReceiverConfig, SecretEnv, receiver_secret_names};
use genhook::domain::clock::SystemClock;
use genhook_receiver::function_handler;
use lambda_http::{Error, run, service_fn, tracing};

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing::init_default_subscriber();
    let env = Env::process();
    // Metrics (CloudWatch EMF on stdout) are written after each invocation.
    let metrics = Metrics::install(&env, "receiver")?;
    // Configuration, secrets and SDK clients are read and built once per cold start; a
    // delivery that fails authentication re-reads the webhook secrets (rate-limited).
    let sdk = load_sdk_config().await;
    let secrets = SecretEnv::load(&sdk, env, receiver_secret_names()).await?;
    let mut receiver = ReceiverConfig::from_env(&secrets.env)?.build_with(&sdk);
    if let Some(reload) = secrets.receiver_reload(Arc::new(SystemClock))? {
        receiver = receiver.with_reload(reload);
    }
    let receiver = &receiver;
    run(service_fn(move |event| metrics.flushed(function_handler(receiver, event)))).await
}
