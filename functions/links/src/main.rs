//! Output links Lambda: API Gateway `GET /outputs/...` → 302 to a live provider URL.

use genhook::adapters::aws::lambda_sdk_config;
use genhook::config::emf::Metrics;
use genhook::config::{self, Env, LinksConfig, SecretEnv, api_secret_names};
use genhook_links::function_handler;
use lambda_http::{Error, run, service_fn};

// One thread: a function serves one invocation at a time, and its concurrency (the
// worker's records of a batch) is asynchronous I/O; no worker threads to start.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let env = Env::process();
    config::logging::init(&env);
    // Metrics (CloudWatch EMF on stdout) are written after each invocation.
    let metrics = Metrics::install(&env, "links")?;
    // Configuration, secrets, the SDK client and the providers' HTTP clients are read and
    // built once per cold start.
    let sdk = lambda_sdk_config(&env);
    // The connections to DynamoDB are opened meanwhile (bounded, never failing the
    // start), so the first invocation does not pay their handshakes.
    let warm_up = config::warm_up(&env, None)?;
    let (secrets, ()) = tokio::join!(SecretEnv::load(&sdk, env, api_secret_names()), warm_up.run(&sdk));
    let secrets = secrets?;
    let service = LinksConfig::from_env(&secrets.env)?.build_with(&sdk)?;
    let service = &service;
    run(service_fn(move |event| metrics.flushed(function_handler(service, event)))).await
}
