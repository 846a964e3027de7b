//! Output links Lambda: API Gateway `GET /outputs/...` → 302 to a live provider URL.

use genhook::adapters::aws::load_sdk_config;
use genhook::config::emf::Metrics;
use genhook::config::{Env, LinksConfig, SecretEnv, api_secret_names};
use genhook_links::function_handler;
use lambda_http::{Error, run, service_fn, tracing};

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing::init_default_subscriber();
    let env = Env::process();
    // Metrics (CloudWatch EMF on stdout) are written after each invocation.
    let metrics = Metrics::install(&env, "links")?;
    // Configuration, secrets, the SDK client and the providers' HTTP clients are read and
    // built once per cold start.
    let sdk = load_sdk_config().await;
    let secrets = SecretEnv::load(&sdk, env, api_secret_names()).await?;
    let service = LinksConfig::from_env(&secrets.env)?.build_with(&sdk)?;
    let service = &service;
    run(service_fn(move |event| metrics.flushed(function_handler(service, event)))).await
}
