//! APIMP: an aggregator whose upstreams (Kling, Doubao/Ark, MiniMax, Vidu) post their own
//! callbacks to the `callback_url` we pass at submit, unchanged; other models are
//! polling-only. Callbacks are hints: the worker confirms each with APIMP's
//! `GET /api/generate/status/{task_id}` before publishing anything.
//!
//! - [`source`]: the routes; [`capability`]: minting and checking the callback URL's
//!   reference token; [`vidu`]: Vidu's `X-HMAC-*` signature; [`callback`]: each
//!   upstream's payload, parsed tolerantly.
//! - [`message`]: the `apimp.*` inbox messages; [`watch`]: registering a task for
//!   polling; [`reconcile`]: the worker's side; [`api`]: the status API client.
//!
//! Variables: `APIMP_CALLBACK_SECRET` (+ `_PREVIOUS`) and `VIDU_CALLBACK_SECRET` turn the
//! routes on; `APIMP_API_KEY`, `APIMP_API_BASE_URL` and `APIMP_API_MAX_RPS` configure the
//! reconciler.

use std::sync::Arc;

use crate::ports::JobApi;
use crate::ports::env::{ConfigError, Env};
use crate::ports::provider::{Deps, Provider, Reconciler, RouteMatch, WebhookSource};
use crate::toolkit::auth::hmac::HmacSecrets;
use crate::toolkit::http::budget::within_budget;

pub mod api;
pub mod callback;
pub mod capability;
pub mod message;
pub mod reconcile;
pub mod source;
pub mod upstream;
pub mod vidu;
pub mod watch;

/// The provider name in dedupe keys and events.
pub const PROVIDER: &str = "apimp";
/// The route prefix; the upstream's name follows.
pub const ROUTE_PREFIX: &str = "/webhooks/apimp/";

/// APIMP, as registered in [`crate::providers::ALL`].
pub struct Apimp;

/// Where APIMP's task outputs may point when `APIMP_OUTPUT_HOSTS` is unset: the
/// upstreams' file hosts seen in their answers (Kling `cdn.klingai.com`, MiniMax
/// `*.minimax.io`, Volcengine Ark `*.volces.com`, Vidu `*.vidu.com`), and the storage
/// services whose signed URLs genhook reads expiries from. APIMP does not document
/// where it serves the files it returns: add its host here if it re-hosts them.
pub const OUTPUT_HOSTS: &[&str] = &[
    "*.klingai.com",
    "*.minimax.io",
    "*.minimaxi.com",
    "*.volces.com",
    "*.vidu.com",
    "*.vidu.cn",
    "*.amazonaws.com",
    "*.cloudfront.net",
    "storage.googleapis.com",
    "*.storage.googleapis.com",
    "*.aliyuncs.com",
    "*.r2.cloudflarestorage.com",
    "*.blob.core.windows.net",
];

impl Provider for Apimp {
    fn name(&self) -> &'static str {
        PROVIDER
    }

    fn route(&self, path: &str) -> RouteMatch {
        source::route(path)
    }

    fn receive_hint(&self) -> &'static str {
        "APIMP callbacks are not configured (set APIMP_CALLBACK_SECRET)"
    }

    fn reconcile_hint(&self) -> &'static str {
        "APIMP_API_KEY is not configured: cannot confirm APIMP tasks"
    }

    fn receive_secrets(&self) -> &'static [&'static str] {
        &["APIMP_CALLBACK_SECRET", "APIMP_CALLBACK_SECRET_PREVIOUS", "VIDU_CALLBACK_SECRET"]
    }

    fn api_secrets(&self) -> &'static [&'static str] {
        &["APIMP_API_KEY"]
    }

    fn output_hosts(&self) -> (&'static str, &'static [&'static str]) {
        ("APIMP_OUTPUT_HOSTS", OUTPUT_HOSTS)
    }

    fn source(&self, env: &Env) -> Result<Option<Arc<dyn WebhookSource>>, ConfigError> {
        let Some(current) = env.optional("APIMP_CALLBACK_SECRET") else { return Ok(None) };
        let previous = env.optional("APIMP_CALLBACK_SECRET_PREVIOUS").map(String::into_bytes);
        Ok(Some(Arc::new(source::ApimpSource {
            callback_secrets: HmacSecrets::new(current, previous),
            vidu_secrets: env.optional("VIDU_CALLBACK_SECRET").map(|s| HmacSecrets::new(s, None)),
        })))
    }

    fn jobs(&self, env: &Env, deps: &Deps) -> Result<Option<Arc<dyn JobApi>>, ConfigError> {
        let Some(key) = env.optional("APIMP_API_KEY") else { return Ok(None) };
        let base = env.http_url("APIMP_API_BASE_URL", None)?;
        let client = api::ApimpApi::new(&base, key, deps.http_timeout)
            .map_err(|e| ConfigError::Invalid { name: "APIMP_API_BASE_URL", reason: e.to_string() })?
            .with_rate_limit(env.small_number("APIMP_API_MAX_RPS", 8)?);
        // APIMP documents no read limit: none is shared unless one is set.
        let per_minute = env.whole_small_number("APIMP_API_READS_PER_MIN", 0)?;
        Ok(Some(within_budget(Arc::new(client), deps, PROVIDER, per_minute)))
    }

    fn reconciler(&self, env: &Env, deps: &Deps) -> Result<Option<Arc<dyn Reconciler>>, ConfigError> {
        let Some(api) = self.jobs(env, deps)? else { return Ok(None) };
        Ok(Some(Arc::new(reconcile::ApimpReconciler::new(api, deps.watches.clone()))))
    }
}

#[cfg(test)]
mod tests;
