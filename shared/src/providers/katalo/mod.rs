//! Katalo: signed `generation.*` webhooks and `GET /api/v1/generations/{job_id}`.
//!
//! - [`source`]: the route and its signature check; [`webhook`]: the body's fields.
//! - [`message`]: the `katalo.webhook` and `katalo.watch` inbox messages; [`watch`]: the
//!   registration of a job (the safety net); [`reconcile`]: the worker's side.
//! - [`api`]: the job API client; [`job`]: its tolerant job parser.
//!
//! Variables: `KATALO_WEBHOOK_SECRET` (+ `_PREVIOUS`) turn the route on;
//! `KATALO_API_KEY`, `KATALO_API_BASE_URL`, `KATALO_API_MAX_RPS` and
//! `KATALO_POLL_HORIZON_SECS` configure the reconciler.

use std::sync::Arc;
use std::time::Duration;

use crate::ports::JobApi;
use crate::ports::env::{ConfigError, Env};
use crate::ports::provider::{Deps, Provider, Reconciler, RouteMatch, WebhookSource};
use crate::toolkit::auth::hmac::HmacSecrets;
use crate::toolkit::http::budget::within_budget;

pub mod api;
pub mod job;
pub mod message;
pub mod reconcile;
pub mod source;
pub mod watch;
pub mod webhook;

/// The provider name used in dedupe keys and events.
pub const PROVIDER: &str = "katalo";
/// The webhook route.
pub const ROUTE: &str = "/webhooks/katalo";
/// The signature header (matched case-insensitively, as all HTTP headers).
pub const SIGNATURE_HEADER: &str = "x-katalo-signature";

/// Katalo, as registered in [`crate::providers::ALL`].
pub struct Katalo;

/// Where Katalo's signed output URLs may point when `KATALO_OUTPUT_HOSTS` is unset.
/// Katalo does not document its file host: its own domain, and the storage services whose
/// signed URLs genhook reads expiries from (S3, CloudFront, Google Cloud Storage,
/// Cloudflare R2, Azure Blob Storage).
pub const OUTPUT_HOSTS: &[&str] = &[
    "katalo.ai",
    "*.katalo.ai",
    "*.amazonaws.com",
    "*.cloudfront.net",
    "storage.googleapis.com",
    "*.storage.googleapis.com",
    "*.r2.cloudflarestorage.com",
    "*.blob.core.windows.net",
];

impl Provider for Katalo {
    fn name(&self) -> &'static str {
        PROVIDER
    }

    fn route(&self, path: &str) -> RouteMatch {
        source::route(path)
    }

    fn receive_hint(&self) -> &'static str {
        "Katalo webhooks are not configured (set KATALO_WEBHOOK_SECRET)"
    }

    fn reconcile_hint(&self) -> &'static str {
        "KATALO_API_KEY is not configured"
    }

    fn receive_secrets(&self) -> &'static [&'static str] {
        &["KATALO_WEBHOOK_SECRET", "KATALO_WEBHOOK_SECRET_PREVIOUS"]
    }

    fn api_secrets(&self) -> &'static [&'static str] {
        &["KATALO_API_KEY"]
    }

    fn output_hosts(&self) -> (&'static str, &'static [&'static str]) {
        ("KATALO_OUTPUT_HOSTS", OUTPUT_HOSTS)
    }

    fn source(&self, env: &Env) -> Result<Option<Arc<dyn WebhookSource>>, ConfigError> {
        let Some(current) = env.optional("KATALO_WEBHOOK_SECRET") else { return Ok(None) };
        let previous = env.optional("KATALO_WEBHOOK_SECRET_PREVIOUS").map(String::into_bytes);
        Ok(Some(Arc::new(source::KataloSource::new(HmacSecrets::new(current, previous)))))
    }

    fn jobs(&self, env: &Env, deps: &Deps) -> Result<Option<Arc<dyn JobApi>>, ConfigError> {
        let Some(key) = env.optional("KATALO_API_KEY") else { return Ok(None) };
        let base = env.http_url("KATALO_API_BASE_URL", Some(api::DEFAULT_BASE_URL))?;
        let client = api::KataloApi::new(&base, key, deps.http_timeout, deps.clock.clone())
            .map_err(|e| ConfigError::Invalid { name: "KATALO_API_BASE_URL", reason: e.to_string() })?
            .with_rate_limit(env.small_number("KATALO_API_MAX_RPS", 8)?);
        // Katalo allows 1,200 reads a minute per organization: the worker and the links
        // share it.
        let per_minute = env.whole_small_number("KATALO_API_READS_PER_MIN", 1_200)?;
        Ok(Some(within_budget(Arc::new(client), deps, PROVIDER, per_minute)))
    }

    fn reconciler(&self, env: &Env, deps: &Deps) -> Result<Option<Arc<dyn Reconciler>>, ConfigError> {
        let horizon = env.number("KATALO_POLL_HORIZON_SECS", reconcile::DEFAULT_POLL_HORIZON.as_secs())?;
        let Some(api) = self.jobs(env, deps)? else { return Ok(None) };
        Ok(Some(Arc::new(reconcile::KataloReconciler::new(api, Duration::from_secs(horizon)))))
    }
}

#[cfg(test)]
mod tests;
