//! Output links Lambda: API Gateway `GET /outputs/...` → 302 to a live provider URL.

use genhook::config::lambda::cold_start;
use genhook::config::{LinksConfig, api_secret_names};
use genhook_links::function_handler;
use lambda_http::{Error, run, service_fn};

// One thread: a function serves one invocation at a time, and its work is asynchronous
// I/O; no worker threads to start.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    // Logs, metrics, the SDK configuration and the secrets, once per cold start, while
    // the connection to DynamoDB is opened.
    let start = cold_start("links", None, api_secret_names()).await?;
    let service = LinksConfig::from_env(&start.secrets.env)?.build_with(&start.sdk, Some(&start.secrets))?;
    let (service, metrics) = (&service, start.metrics);
    run(service_fn(move |event| metrics.flushed(function_handler(service, event)))).await
}
