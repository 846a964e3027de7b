//! Receiver Lambda: API Gateway → verify → dedupe → SQS inbox.

use genhook::config::emf::Metrics;
use genhook::config::{Env, ReceiverConfig};
use genhook_receiver::function_handler;
use lambda_http::{Error, run, service_fn, tracing};

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing::init_default_subscriber();
    let env = Env::process();
    // Metrics (CloudWatch EMF on stdout) are written after each invocation.
    let metrics = Metrics::install(&env, "receiver")?;
    // Configuration and SDK clients are built once per cold start.
    let receiver = ReceiverConfig::from_env(&env)?.build().await;
    let receiver = &receiver;
    run(service_fn(move |event| metrics.flushed(function_handler(receiver, event)))).await
}
