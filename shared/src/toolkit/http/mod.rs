//! The provider API clients' plumbing: the HTTP client (on the process's one TLS
//! configuration, [`tls`]), request-rate limits ([`rate_limit`]), URLs, the
//! classification of API errors and `Retry-After`; and what signed output URLs need:
//! their expiry ([`url_expiry`]) and their redaction in logs ([`redact`]).

pub mod budget;
pub mod output_hosts;
pub mod rate_limit;
pub mod redact;
pub mod tls;
pub mod url_expiry;

use std::time::{Duration, Instant, SystemTime};

use reqwest::StatusCode;
use serde::Deserialize;

use crate::domain::text::clip;
use crate::ports::JobApiError;
use crate::toolkit::telemetry;

/// Builds the HTTP client used for provider APIs: the process's one rustls (ring)
/// configuration ([`crate::toolkit::http::tls::client_config`], no OpenSSL or aws-lc build), bounded
/// timeouts, no redirects to other hosts' credentials.
pub fn http_client(timeout: Duration) -> reqwest::Client {
    client_builder(timeout).build().expect("the HTTP client configuration is static and valid")
}

/// The configuration of [`http_client`], to adjust (e.g. a client that does not follow
/// redirects).
pub fn client_builder(timeout: Duration) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .tls_backend_preconfigured((*crate::toolkit::http::tls::client_config()).clone())
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(3)))
        .user_agent(concat!("genhook/", env!("CARGO_PKG_VERSION")))
}

/// The longest wait genhook takes from a provider (`retry_after`, `Retry-After`): 12 h,
/// the longest SQS can hide a message. Longer asks are clamped to it.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(12 * 60 * 60);

/// The largest API response read (2xx or error); a longer one is a transient failure.
pub const MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;

/// How much of an error body's `code` / `message` is kept (they end up in logs).
pub(crate) const MAX_CODE_CHARS: usize = 128;
pub(crate) const MAX_MESSAGE_CHARS: usize = 512;

/// A provider API's base URL: absolute, `http(s)`, able to take a path.
pub fn api_base(base_url: &str) -> Result<url::Url, url::ParseError> {
    let base = url::Url::parse(base_url)?;
    if base.cannot_be_a_base() || !matches!(base.scheme(), "http" | "https") {
        return Err(url::ParseError::RelativeUrlWithCannotBeABaseBase);
    }
    Ok(base)
}

/// `base` followed by `segments`, each percent-encoded as one path segment (a base path
/// is kept as a prefix); `None` for a base that cannot take a path (see [`api_base`]).
pub fn api_url(base: &url::Url, segments: &[&str]) -> Option<url::Url> {
    let mut url = base.clone();
    url.path_segments_mut().ok()?.pop_if_empty().extend(segments);
    Some(url)
}

/// The error for a request that was never made because its URL could not be built.
pub fn unbuildable_url() -> JobApiError {
    JobApiError::Permanent { status: 400, reason: "the API base URL cannot take a path (no request was made)".into() }
}

/// A provider's wait in (fractional) seconds as a [`Duration`], clamped to
/// [`MAX_RETRY_AFTER`]; `None` for negative, infinite or NaN values.
pub fn retry_after_secs(secs: f64) -> Option<Duration> {
    if !secs.is_finite() || secs < 0.0 {
        return None;
    }
    Duration::try_from_secs_f64(secs.min(MAX_RETRY_AFTER.as_secs_f64())).ok()
}

/// The common API error body `{"error": {"code", "message", "retryable", "retry_after"}}`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ApiErrorBody {
    /// Machine-readable code.
    pub code: String,
    /// Human-readable message.
    pub message: String,
    /// Whether the API says a retry can succeed.
    pub retryable: bool,
    /// How long to wait before retrying (at most [`MAX_RETRY_AFTER`]).
    pub retry_after: Option<Duration>,
}

impl ApiErrorBody {
    /// Parses an error body; `None` when it is not of that shape. Each field is read
    /// tolerantly (a field of the wrong type is ignored, not fatal): `code` (any JSON,
    /// else `type`), `message`, `retryable` and `retry_after` (seconds, a number or
    /// numeric text, clamped to [`MAX_RETRY_AFTER`]); `code` and `message` are clipped.
    pub fn parse(body: &[u8]) -> Option<Self> {
        #[derive(Deserialize)]
        struct Outer {
            error: serde_json::Map<String, serde_json::Value>,
        }
        use serde_json::Value;
        let e = serde_json::from_slice::<Outer>(body).ok()?.error;
        let code = match e.get("code") {
            Some(Value::String(s)) => s.clone(),
            Some(v) if !v.is_null() => v.to_string(),
            // APIMP names its error kind `type`.
            _ => e.get("type").and_then(Value::as_str).unwrap_or("error").to_string(),
        };
        let retry_after = match e.get("retry_after") {
            Some(Value::Number(n)) => n.as_f64(),
            Some(Value::String(s)) => s.trim().parse::<f64>().ok(),
            _ => None,
        };
        Some(Self {
            code: clip(&code, MAX_CODE_CHARS),
            message: clip(e.get("message").and_then(Value::as_str).unwrap_or_default(), MAX_MESSAGE_CHARS),
            retryable: e.get("retryable").and_then(Value::as_bool).unwrap_or(false),
            retry_after: retry_after.and_then(retry_after_secs),
        })
    }
}

/// Maps an HTTP error answer to a [`JobApiError`]: 429 → rate limited; 408/5xx or an
/// error body saying `retryable: true` → transient; other 4xx → permanent.
/// Waits are clamped to [`MAX_RETRY_AFTER`].
pub fn classify(status: StatusCode, body: Option<ApiErrorBody>, header_retry: Option<Duration>) -> JobApiError {
    let retry_after = body.as_ref().and_then(|b| b.retry_after).or(header_retry).map(|d| d.min(MAX_RETRY_AFTER));
    let reason = body.as_ref().map_or_else(
        || status.canonical_reason().unwrap_or("error").to_string(),
        |b| format!("{}: {}", b.code, b.message),
    );
    if status == StatusCode::TOO_MANY_REQUESTS {
        JobApiError::RateLimited { retry_after }
    } else if status.is_server_error()
        || status == StatusCode::REQUEST_TIMEOUT
        || body.as_ref().is_some_and(|b| b.retryable)
    {
        JobApiError::Transient { reason: format!("HTTP {}: {reason}", status.as_u16()), retry_after }
    } else {
        JobApiError::Permanent { status: status.as_u16(), reason }
    }
}

/// GETs `url` with a bearer key and accepts JSON: a 2xx body parsed, or the failure
/// classified (connection errors, bodies over [`MAX_RESPONSE_BYTES`] and unparsable
/// 2xx bodies are transient). The call is counted for `provider`, by status class, with
/// its duration ([`telemetry::provider_api_call`]).
pub async fn get_json(
    client: &reqwest::Client,
    provider: &'static str,
    url: url::Url,
    api_key: &str,
) -> Result<serde_json::Value, JobApiError> {
    get_json_with(client, provider, url, api_key, ApiErrorBody::parse).await
}

/// [`get_json`] for an API whose error bodies have another shape: `parse_error` reads
/// them (`None` when a body is not of that shape).
pub async fn get_json_with(
    client: &reqwest::Client,
    provider: &'static str,
    url: url::Url,
    api_key: &str,
    parse_error: fn(&[u8]) -> Option<ApiErrorBody>,
) -> Result<serde_json::Value, JobApiError> {
    let started = Instant::now();
    let mut answered = None;
    let result = fetch_json(client, url, api_key, parse_error, &mut answered).await;
    telemetry::provider_api_call(provider, answered.map(|s: StatusCode| s.as_u16()), started.elapsed());
    result
}

/// [`get_json_with`]'s request; `answered` is set once an answer's status line arrives.
async fn fetch_json(
    client: &reqwest::Client,
    url: url::Url,
    api_key: &str,
    parse_error: fn(&[u8]) -> Option<ApiErrorBody>,
    answered: &mut Option<StatusCode>,
) -> Result<serde_json::Value, JobApiError> {
    let transient = |reason: String, retry_after| JobApiError::Transient { reason, retry_after };
    let mut resp = client
        .get(url)
        .bearer_auth(api_key)
        .header("accept", "application/json")
        .send()
        .await
        .map_err(|e| transient(e.without_url().to_string(), None))?;
    let status = resp.status();
    *answered = Some(status);
    let header_retry = retry_after_header(resp.headers());
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| transient(e.without_url().to_string(), header_retry))? {
        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(transient(format!("response larger than {MAX_RESPONSE_BYTES} bytes"), header_retry));
        }
        body.extend_from_slice(&chunk);
    }
    if status.is_success() {
        return serde_json::from_slice(&body).map_err(|e| transient(format!("response is not JSON: {e}"), None));
    }
    Err(classify(status, parse_error(&body), header_retry))
}

/// The `Retry-After` header as a wait from now (see [`parse_retry_after`]).
pub fn retry_after_header(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    parse_retry_after(headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?, SystemTime::now())
}

/// A `Retry-After` value read at `now`: delay seconds (any number of digits) or an
/// HTTP date (a past date means "now", zero). Clamped to [`MAX_RETRY_AFTER`]; `None`
/// when it is neither.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let v = value.trim();
    let wait = if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        Duration::from_secs(v.parse::<u64>().unwrap_or(u64::MAX))
    } else {
        httpdate::parse_http_date(v).ok()?.duration_since(now).unwrap_or(Duration::ZERO)
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

#[cfg(test)]
mod tests;
