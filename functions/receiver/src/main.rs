//! Receiver Lambda: HTTP API / Function URL (or REST API, ALB) → verify → dedupe → SQS inbox.

use std::sync::Arc;

use genhook::adapters::aws::lambda_sdk_config;
use genhook::config::emf::Metrics;
use genhook::config::{self, Env, ReceiverConfig, SecretEnv, receiver_secret_names};
use genhook::domain::clock::SystemClock;
use genhook_receiver::function_handler;
use lambda_http::{Error, run, service_fn};

// One thread: a function serves one invocation at a time, and its concurrency (the
// worker's records of a batch) is asynchronous I/O; no worker threads to start.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let env = Env::process();
    config::logging::init(&env);
    // Metrics (CloudWatch EMF on stdout) are written after each invocation.
    let metrics = Metrics::install(&env, "receiver")?;
    // Configuration, secrets and SDK clients are read and built once per cold start; a
    // delivery that fails authentication re-reads the webhook secrets (rate-limited).
    let sdk = lambda_sdk_config(&env);
    // The connections to DynamoDB and SQS are opened meanwhile (bounded, never failing the
    // start), so the first invocation does not pay their handshakes.
    let warm_up = config::warm_up(&env, Some("GENHOOK_INBOX_QUEUE_URL"))?;
    let (secrets, ()) = tokio::join!(SecretEnv::load(&sdk, env, receiver_secret_names()), warm_up.run(&sdk));
    let secrets = secrets?;
    let mut receiver = ReceiverConfig::from_env(&secrets.env)?.build_with(&sdk);
    if let Some(reload) = secrets.receiver_reload(Arc::new(SystemClock))? {
        receiver = receiver.with_reload(reload);
    }
    let receiver = &receiver;
    run(service_fn(move |event| metrics.flushed(function_handler(receiver, event)))).await
}
