//! The output links' service: `GET /outputs/{provider}/{job_id}/{index}?token=…` (the
//! links the worker puts on published outputs, see [`crate::toolkit::auth::link_token`]) answers `302 Found`
//! to a freshly signed provider URL that lives at least the minimum URL lifetime.
//!
//! - The token is checked first: a forged one gets `403 invalid_token`, an expired link
//!   `403 link_expired`, a path that is no link `404`.
//! - The job's URLs are cached in the table ([`LinkCache`]) until they near expiry, so a
//!   burst of clicks costs one provider read: one request takes the refresh lease and
//!   reads the job; the others poll the cache for a moment, then get `503` with
//!   `Retry-After`.
//! - A rate-limited or failing provider API gets `503` with `Retry-After`, never a stale
//!   URL; an unknown job, a job without outputs or an index it does not have `404`; an
//!   output the provider no longer serves `410`; a provider that refuses the key `502`;
//!   a URL that is not `https` on a host the provider serves files from `502`.
//!
//! Provider-agnostic: each provider's job API is mounted by name by the composition root.

use std::sync::Arc;
use std::time::Duration;

use http::{HeaderValue, Method, Response, StatusCode, Uri, header};
use tracing::{info, warn};

use crate::domain::clock::{Clock, millis, secs, secs_ceil};
use crate::domain::dedupe::random_id;
use crate::domain::job::JobState;
use crate::domain::link_cache::CachedOutputs;
use crate::engine::answer;
use crate::engine::reload::{Reload, Reloading};
use crate::ports::link_cache::LinkCache;
use crate::ports::{JobApi, JobApiError};
use crate::toolkit::auth::link_token::{LinkError, LinkRequest, LinkSigner, ROUTE};
use crate::toolkit::http::output_hosts::OutputRule;
use crate::toolkit::telemetry::{Origin, UNKNOWN_PROVIDER, name};

/// The link service's tunables.
#[derive(Debug, Clone)]
pub struct LinkSettings {
    /// A redirect's target lives at least this long (`GENHOOK_MIN_URL_TTL_SECS`).
    pub min_url_ttl: Duration,
    /// How long one request holds the job's refresh lease: longer than a provider read.
    pub lease: Duration,
    /// How long a request waits for another one's refresh before answering 503.
    pub wait: Duration,
    /// How often a waiting request reads the cache.
    pub poll: Duration,
    /// How long a cache item outlives the URLs it holds (then the table's TTL removes it).
    pub retention: Duration,
}

impl Default for LinkSettings {
    /// 10 minutes' minimum lifetime, a 12 s lease (a 10 s provider call), 2 s of waiting
    /// in 100 ms steps, an hour's retention.
    fn default() -> Self {
        Self {
            min_url_ttl: Duration::from_secs(600),
            lease: Duration::from_secs(12),
            wait: Duration::from_secs(2),
            poll: Duration::from_millis(100),
            retention: Duration::from_secs(3600),
        }
    }
}

/// One provider's job API as the link service reads it, or why it cannot.
struct ProviderApi {
    provider: &'static str,
    api: Result<Arc<dyn JobApi>, &'static str>,
}

/// Serves output links. Build it once per cold start.
pub struct LinkService {
    signer: LinkSigner,
    cache: Arc<dyn LinkCache>,
    clock: Arc<dyn Clock>,
    settings: LinkSettings,
    providers: Vec<ProviderApi>,
    output_hosts: Vec<OutputRule>,
}

/// What a link request comes to (then an HTTP answer).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Answer {
    Redirect(String),
    NotALink,
    Forbidden {
        code: &'static str,
        message: &'static str,
    },
    NotFound(String),
    Gone(String),
    BadGateway(String),
    /// The provider refused the API key: a 502, and a reason to re-read the secrets.
    KeyRefused(String),
    /// The provider's URL is not an `https` URL on a host it serves files from: a 502.
    ForeignUrl(String),
    Unavailable {
        retry_after: Duration,
        message: &'static str,
    },
}

impl LinkService {
    /// A service minting and checking with `signer`, caching in `cache`; mount the
    /// providers with [`Self::serve`] and [`Self::unserved`].
    pub fn new(signer: LinkSigner, cache: Arc<dyn LinkCache>, clock: Arc<dyn Clock>, settings: LinkSettings) -> Self {
        Self { signer, cache, clock, settings, providers: Vec::new(), output_hosts: Vec::new() }
    }

    /// Redirects only to URLs that pass their provider's rule (a provider without one:
    /// any URL); another gets `502 output_host_refused`.
    pub fn with_output_hosts(self, rules: Vec<OutputRule>) -> Self {
        Self { output_hosts: rules, ..self }
    }

    /// Serves `provider`'s links, reading its jobs through `api`.
    pub fn serve(mut self, provider: &'static str, api: Arc<dyn JobApi>) -> Self {
        self.providers.push(ProviderApi { provider, api: Ok(api) });
        self
    }

    /// Answers `provider`'s links with 404 and `hint` (its API is not configured).
    pub fn unserved(mut self, provider: &'static str, hint: &'static str) -> Self {
        self.providers.push(ProviderApi { provider, api: Err(hint) });
        self
    }

    /// Answers one request (its method and URI: a link has no body or headers that
    /// matter). The path starts at `/outputs/`: a front end's stage is cut before
    /// ([`crate::engine::stage`]).
    /// Each answer is counted ([`crate::toolkit::telemetry`]): followed, or refused by reason.
    pub async fn handle(&self, method: &Method, uri: &Uri) -> Response<String> {
        self.handle_noting_keys(method, uri).await.0
    }

    /// [`Self::handle`], and whether a provider refused its API key.
    async fn handle_noting_keys(&self, method: &Method, uri: &Uri) -> (Response<String>, bool) {
        if !matches!(*method, Method::GET | Method::HEAD) {
            Origin::UNKNOWN.count(name::LINKS_REFUSED, &[("reason", "method_not_allowed")]);
            let mut r =
                answer::error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "output links answer GET and HEAD");
            r.headers_mut().insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            return (r, false);
        }
        let (provider, answer) = self.answer(uri.path(), uri.query()).await;
        let origin = Origin::provider(provider);
        match answer.refusal() {
            None => origin.count(name::LINKS_FOLLOWED, &[]),
            Some(reason) => origin.count(name::LINKS_REFUSED, &[("reason", reason)]),
        }
        let key_refused = matches!(answer, Answer::KeyRefused(_));
        (respond(answer), key_refused)
    }

    /// The answer, and the provider it is counted for: a mounted provider's name (never
    /// the path's own word), or [`UNKNOWN_PROVIDER`].
    async fn answer(&self, path: &str, query: Option<&str>) -> (&'static str, Answer) {
        let Ok(link) = LinkRequest::parse(path, query) else { return (UNKNOWN_PROVIDER, Answer::NotALink) };
        let (provider, job_id, index) = (link.provider.as_str(), link.job_id.as_str(), link.index);
        let mounted = self.providers.iter().find(|m| m.provider == provider);
        let name = mounted.map_or(UNKNOWN_PROVIDER, |m| m.provider);
        match self.signer.verify_request(&link, self.clock.now()) {
            Ok(()) => {}
            Err(LinkError::Expired) => {
                info!(provider, job_id, index, "link refused: expired");
                return (name, Answer::Forbidden { code: "link_expired", message: "this link has expired" });
            }
            Err(e) => {
                warn!(provider, job_id, index, reason = %e, "link refused: bad token");
                return (name, Answer::Forbidden { code: "invalid_token", message: "the link's token is not valid" });
            }
        }
        let api = match mounted.map(|m| &m.api) {
            Some(Ok(api)) => api,
            Some(Err(hint)) => {
                return (name, Answer::NotFound(format!("{provider} links are not served here: {hint}")));
            }
            None => return (name, Answer::NotFound(format!("no provider named {provider}"))),
        };
        let mut answer = self.resolve(api.as_ref(), name, job_id, index).await;
        if let Answer::Redirect(url) = &answer
            && let Some(why) = OutputRule::of(&self.output_hosts, name).and_then(|rule| rule.refusal(url))
        {
            answer = Answer::ForeignUrl(format!("the provider's URL for output {index} is not redirected to: {why}"));
        }
        match &answer {
            Answer::Redirect(_) => info!(provider, job_id, index, "link followed"),
            other => info!(provider, job_id, index, answer = ?other, "link not followed"),
        }
        (name, answer)
    }

    /// The live URL from the cache, or from the provider through the refresh lease.
    async fn resolve(&self, api: &dyn JobApi, provider: &'static str, job_id: &str, index: usize) -> Answer {
        match self.cached(provider, job_id, index).await {
            Ok(Some(url)) => return Answer::Redirect(url),
            Ok(None) => {}
            Err(answer) => return answer,
        }
        let now_ms = self.clock.now_ms();
        let until_ms = now_ms.saturating_add(millis(self.settings.lease));
        let token = random_id();
        match self.cache.lease_refresh(provider, job_id, &token, until_ms, now_ms).await {
            Ok(true) => {
                // Another request may have refreshed between the read and the lease.
                let (answer, cached) = match self.cached(provider, job_id, index).await {
                    Ok(Some(url)) => (Answer::Redirect(url), false),
                    Ok(None) => self.refresh(api, provider, job_id, index).await,
                    Err(answer) => (answer, false),
                };
                // A put frees the lease; every other ending frees it here, so the next
                // request asks the provider as soon as it may, never after the lease.
                if !cached && let Err(e) = self.cache.release_refresh(provider, job_id, &token).await {
                    warn!(provider, job_id, error = %e, "could not free the refresh lease; it runs out");
                }
                answer
            }
            Ok(false) => self.wait_for_refresh(provider, job_id, index).await,
            Err(e) => {
                warn!(provider, job_id, error = %e, "link cache unavailable");
                cache_unavailable()
            }
        }
    }

    /// The cached URL at `index` if it lives long enough.
    async fn cached(&self, provider: &str, job_id: &str, index: usize) -> Result<Option<String>, Answer> {
        let now = self.clock.now().unix_timestamp();
        match self.cache.get_outputs(provider, job_id).await {
            Ok(c) => Ok(c.and_then(|c| c.fresh_for(index, now, self.min_ttl_secs()).map(String::from))),
            Err(e) => {
                warn!(provider, job_id, error = %e, "link cache unavailable");
                Err(cache_unavailable())
            }
        }
    }

    /// Reads the job, caches its URLs (freeing the lease) and answers from them; whether
    /// they were cached.
    async fn refresh(&self, api: &dyn JobApi, provider: &'static str, job_id: &str, index: usize) -> (Answer, bool) {
        Origin::provider(provider).count(name::LINKS_PROVIDER_READS, &[]);
        let job = match api.get_job(job_id).await {
            Ok(job) => job,
            Err(e) => return (api_error_answer(e), false),
        };
        if job.state != JobState::Succeeded {
            return (Answer::NotFound(format!("job {job_id} has no outputs: it is {}", job.state.word())), false);
        }
        if job.outputs_removed {
            return (Answer::Gone(format!("the provider has removed the outputs of job {job_id}")), false);
        }
        let now = self.clock.now().unix_timestamp();
        let outputs = CachedOutputs::of_job(&job, now);
        let min = self.min_ttl_secs();
        let last_expiry =
            outputs.outputs.iter().filter_map(|o| o.expires_at).max().unwrap_or(now).max(now.saturating_add(min));
        let retention = secs(self.settings.retention);
        let cached =
            match self.cache.put_outputs(provider, job_id, &outputs, last_expiry.saturating_add(retention)).await {
                Ok(()) => true,
                Err(e) => {
                    // The answer stands; the next click reads the provider again.
                    warn!(provider, job_id, error = %e, "could not cache the job's URLs");
                    false
                }
            };
        (Self::answer_from(&outputs, job_id, index, now, min), cached)
    }

    /// The answer for output `index` of freshly read `outputs`.
    fn answer_from(outputs: &CachedOutputs, job_id: &str, index: usize, now: i64, min: i64) -> Answer {
        if let Some(url) = outputs.fresh_for(index, now, min) {
            return Answer::Redirect(url.to_string());
        }
        match outputs.outputs.get(index) {
            None => Answer::NotFound(format!("job {job_id} has no output {index}")),
            Some(o) if o.expires_at.is_some_and(|t| t <= now) => {
                Answer::Gone(format!("the provider no longer serves output {index} of job {job_id}"))
            }
            Some(_) => Answer::BadGateway(format!(
                "the provider's freshly signed URL expires within {min} s (GENHOOK_MIN_URL_TTL_SECS)"
            )),
        }
    }

    /// Polls the cache while another request refreshes it.
    async fn wait_for_refresh(&self, provider: &str, job_id: &str, index: usize) -> Answer {
        let polls = self.settings.wait.as_millis() / self.settings.poll.as_millis().max(1);
        for _ in 0..polls {
            tokio::time::sleep(self.settings.poll).await;
            match self.cached(provider, job_id, index).await {
                Ok(Some(url)) => return Answer::Redirect(url),
                Ok(None) => {}
                Err(answer) => return answer,
            }
        }
        Answer::Unavailable {
            retry_after: Duration::from_secs(1),
            message: "another request is refreshing this job's URLs; try again",
        }
    }

    fn min_ttl_secs(&self) -> i64 {
        secs(self.settings.min_url_ttl)
    }
}

/// The link service the links function serves: rebuilt from re-read secrets on their
/// period and when a provider refuses its API key (the request is then answered once
/// more, with the new key).
pub struct Links(Reloading<LinkService>);

impl Links {
    /// Serves `service`, rebuilt through `reload` when there is one.
    pub fn new(service: LinkService, reload: Option<Arc<dyn Reload<LinkService>>>) -> Self {
        Self(Reloading::new(service, "links' secrets").with_reload(reload))
    }

    /// Answers one request ([`LinkService::handle`]).
    pub async fn handle(&self, method: &Method, uri: &Uri) -> Response<String> {
        let mut service = self.0.current();
        if self.0.due(|| service.clock.now_ms())
            && let Some(fresh) = self.0.reload().await
        {
            service = fresh;
        }
        let (response, key_refused) = service.handle_noting_keys(method, uri).await;
        if !key_refused {
            return response;
        }
        // The key may have been rotated: once more with the stored one.
        match self.0.reload().await {
            Some(fresh) => fresh.handle(method, uri).await,
            None => response,
        }
    }
}

impl Answer {
    /// Why a link was not followed (the `reason` dimension); `None` for a redirect.
    fn refusal(&self) -> Option<&'static str> {
        match self {
            Self::Redirect(url) if HeaderValue::from_str(url).is_ok() => None,
            // `respond` answers 502 for a URL that is no valid header.
            Self::Redirect(_) | Self::BadGateway(_) | Self::KeyRefused(_) => Some("bad_gateway"),
            Self::ForeignUrl(_) => Some("output_host_refused"),
            Self::NotALink => Some("not_a_link"),
            Self::Forbidden { code, .. } => Some(*code),
            Self::NotFound(_) => Some("not_found"),
            Self::Gone(_) => Some("gone"),
            Self::Unavailable { .. } => Some("unavailable"),
        }
    }
}

fn api_error_answer(e: JobApiError) -> Answer {
    match e {
        JobApiError::RateLimited { retry_after } => Answer::Unavailable {
            retry_after: retry_after.unwrap_or(Duration::from_secs(1)),
            message: "the provider's rate limit is reached; try again",
        },
        JobApiError::Transient { retry_after, .. } => Answer::Unavailable {
            retry_after: retry_after.unwrap_or(Duration::from_secs(2)),
            message: "the provider API is unavailable; try again",
        },
        JobApiError::Permanent { status: 404, .. } => Answer::NotFound("the provider knows no such job".into()),
        JobApiError::Permanent { status: status @ (401 | 403), .. } => {
            Answer::KeyRefused(format!("the provider API refused genhook's API key (HTTP {status})"))
        }
        JobApiError::Permanent { status, .. } => {
            Answer::BadGateway(format!("the provider API refused to read the job (HTTP {status})"))
        }
    }
}

fn cache_unavailable() -> Answer {
    Answer::Unavailable { retry_after: Duration::from_secs(1), message: "the link cache is unavailable; try again" }
}

fn respond(answer: Answer) -> Response<String> {
    let mut r = match answer {
        Answer::Redirect(url) => {
            let mut r = Response::new(String::new());
            *r.status_mut() = StatusCode::FOUND;
            match HeaderValue::from_str(&url) {
                Ok(v) => {
                    r.headers_mut().insert(header::LOCATION, v);
                }
                Err(_) => {
                    return answer::error(
                        StatusCode::BAD_GATEWAY,
                        "bad_gateway",
                        "the provider's URL is not a valid header",
                    );
                }
            }
            r
        }
        Answer::NotALink => answer::error(
            StatusCode::NOT_FOUND,
            "not_found",
            &format!("not an output link: expected /{ROUTE}/{{provider}}/{{job_id}}/{{index}}?token=…"),
        ),
        Answer::Forbidden { code, message } => answer::error(StatusCode::FORBIDDEN, code, message),
        Answer::NotFound(message) => answer::error(StatusCode::NOT_FOUND, "not_found", &message),
        Answer::Gone(message) => answer::error(StatusCode::GONE, "gone", &message),
        Answer::BadGateway(message) | Answer::KeyRefused(message) => {
            answer::error(StatusCode::BAD_GATEWAY, "bad_gateway", &message)
        }
        Answer::ForeignUrl(message) => answer::error(StatusCode::BAD_GATEWAY, "output_host_refused", &message),
        Answer::Unavailable { retry_after, message } => {
            let mut r = answer::error(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message);
            let secs = secs_ceil(retry_after).max(1);
            r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
            r
        }
    };
    // The target is a credential that changes: never cached, never sent on as a referrer.
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r.headers_mut().insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    r
}

#[cfg(test)]
mod tests;
