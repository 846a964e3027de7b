//! Receiver Lambda: HTTP API / Function URL (or REST API, ALB) → verify → dedupe → SQS inbox.

use genhook::config::{Env, ReceiverConfig};
use genhook_receiver::function_handler;
use lambda_http::{Error, run, service_fn, tracing};

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing::init_default_subscriber();
    // Configuration and SDK clients are built once per cold start.
    let receiver = ReceiverConfig::from_env(&Env::process())?.build().await;
    let receiver = &receiver;
    run(service_fn(move |event| function_handler(receiver, event))).await
}
