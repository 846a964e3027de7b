//! Replicate: prediction webhooks signed per Standard Webhooks, and
//! `GET /v1/predictions/{id}`.
//!
//! Replicate POSTs the prediction object itself (the same JSON as its API returns) when
//! a prediction starts, has new output or logs, and when it ends; only the final
//! delivery (`succeeded`, `failed`, `canceled`) is retried. Deliveries are signed with
//! the account's `whsec_` secret (`GET /v1/webhooks/default/secret`) and verified with
//! [`crate::toolkit::auth::standard_webhooks`]. Output files are removed an hour after an API-created
//! prediction (see [`prediction::OUTPUT_RETENTION`]), so outputs are read back from the
//! API and published quickly. Sources: `docs/providers/replicate.md`.
//!
//! - [`source`]: the route and its Standard Webhooks check; [`webhook`]: the body's fields.
//! - [`message`]: the `replicate.webhook` inbox message; [`reconcile`]: the worker's side.
//! - [`api`]: the [`crate::ports::JobApi`] client; [`prediction`]: the prediction read
//!   into a [`crate::domain::job::Job`] (its status words mapped to the job states).
//!
//! Variables: `REPLICATE_WEBHOOK_SECRET` (+ `_PREVIOUS`) turn the route on;
//! `REPLICATE_API_TOKEN`, `REPLICATE_API_BASE_URL` and `REPLICATE_API_MAX_RPS` configure
//! the reconciler.

use std::sync::Arc;
use std::time::Duration;

use crate::ports::JobApi;
use crate::ports::env::{ConfigError, Env};
use crate::ports::provider::{Deps, Provider, Reconciler, RouteMatch, WebhookSource};
use crate::toolkit::auth::standard_webhooks::Secrets;
use crate::toolkit::http::budget::within_budget;

pub mod api;
pub mod message;
pub mod prediction;
pub mod reconcile;
pub mod source;
pub mod sweep;
pub mod watch;
pub mod webhook;

/// The provider name used in dedupe keys and events.
pub const PROVIDER: &str = "replicate";
/// The receiver route Replicate is pointed at.
pub const ROUTE: &str = "/webhooks/replicate";
/// Replicate's API base URL when none is configured.
pub const DEFAULT_BASE_URL: &str = "https://api.replicate.com";
/// The headers a delivery is verified with (Standard Webhooks').
pub const SIGNATURE_HEADERS: [&str; 3] = [
    crate::toolkit::auth::standard_webhooks::ID_HEADER,
    crate::toolkit::auth::standard_webhooks::TIMESTAMP_HEADER,
    crate::toolkit::auth::standard_webhooks::SIGNATURE_HEADER,
];

/// Replicate, as registered in [`crate::providers::ALL`].
pub struct Replicate;

/// Where Replicate serves prediction output files (`replicate.delivery`), used when
/// `REPLICATE_OUTPUT_HOSTS` is unset; a URL a model merely wrote in its text output is
/// no file of Replicate's.
pub const OUTPUT_HOSTS: &[&str] = &["replicate.delivery", "*.replicate.delivery"];

impl Provider for Replicate {
    fn name(&self) -> &'static str {
        PROVIDER
    }

    fn route(&self, path: &str) -> RouteMatch {
        source::route(path)
    }

    fn receive_hint(&self) -> &'static str {
        "Replicate webhooks are not configured (set REPLICATE_WEBHOOK_SECRET)"
    }

    fn reconcile_hint(&self) -> &'static str {
        "REPLICATE_API_TOKEN is not configured"
    }

    fn receive_secrets(&self) -> &'static [&'static str] {
        &["REPLICATE_WEBHOOK_SECRET", "REPLICATE_WEBHOOK_SECRET_PREVIOUS"]
    }

    fn api_secrets(&self) -> &'static [&'static str] {
        &["REPLICATE_API_TOKEN"]
    }

    fn output_hosts(&self) -> (&'static str, &'static [&'static str]) {
        ("REPLICATE_OUTPUT_HOSTS", OUTPUT_HOSTS)
    }

    fn source(&self, env: &Env) -> Result<Option<Arc<dyn WebhookSource>>, ConfigError> {
        let Some(current) = env.optional("REPLICATE_WEBHOOK_SECRET") else { return Ok(None) };
        let previous = env.optional("REPLICATE_WEBHOOK_SECRET_PREVIOUS");
        let secrets = Secrets::parse(std::iter::once(current.as_str()).chain(previous.as_deref())).map_err(|e| {
            ConfigError::Invalid { name: "REPLICATE_WEBHOOK_SECRET", reason: format!("{e} (expected whsec_<base64>)") }
        })?;
        Ok(Some(Arc::new(source::ReplicateSource::new(secrets))))
    }

    fn jobs(&self, env: &Env, deps: &Deps) -> Result<Option<Arc<dyn JobApi>>, ConfigError> {
        let Some(token) = env.optional("REPLICATE_API_TOKEN") else { return Ok(None) };
        let base = env.http_url("REPLICATE_API_BASE_URL", Some(DEFAULT_BASE_URL))?;
        let client = api::ReplicateApi::new(&base, token, deps.http_timeout, deps.clock.clone())
            .map_err(|e| ConfigError::Invalid { name: "REPLICATE_API_BASE_URL", reason: e.to_string() })?
            .with_rate_limit(env.small_number("REPLICATE_API_MAX_RPS", 10)?);
        // Replicate allows 3,000 reads a minute per account.
        let per_minute = env.whole_small_number("REPLICATE_API_READS_PER_MIN", 3_000)?;
        Ok(Some(within_budget(Arc::new(client), deps, PROVIDER, per_minute)))
    }

    fn reconciler(&self, env: &Env, deps: &Deps) -> Result<Option<Arc<dyn Reconciler>>, ConfigError> {
        let horizon = env.number("REPLICATE_POLL_HORIZON_SECS", watch::DEFAULT_HORIZON.as_secs())?;
        let auto_watch = env.flag("REPLICATE_AUTO_WATCH", true)?;
        let Some(api) = self.jobs(env, deps)? else { return Ok(None) };
        let max_pages = env.whole_small_number("REPLICATE_SWEEP_MAX_PAGES", sweep::DEFAULT_MAX_PAGES)?;
        let horizon = Duration::from_secs(horizon);
        let watching = reconcile::Watching { horizon, auto_watch };
        let sweeping = sweep::Sweeping { max_pages, horizon };
        Ok(Some(Arc::new(reconcile::ReplicateReconciler::new(api).watching(watching).sweeping(sweeping))))
    }
}

#[cfg(test)]
mod tests;
