//! Output links Lambda: API Gateway `GET /outputs/...` → 302 to a live provider URL.

use genhook::config::{Env, LinksConfig};
use genhook_links::function_handler;
use lambda_http::{Error, run, service_fn, tracing};

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing::init_default_subscriber();
    // Configuration, the SDK client and the providers' HTTP clients are built once per
    // cold start.
    let service = LinksConfig::from_env(&Env::process())?.build().await?;
    let service = &service;
    run(service_fn(move |event| function_handler(service, event))).await
}
