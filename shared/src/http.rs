//! Shared HTTP client plumbing for provider APIs.

use std::time::Duration;

use reqwest::StatusCode;
use serde::Deserialize;

use crate::ports::JobApiError;

/// Builds the HTTP client used for provider APIs: rustls with the ring provider (no
/// OpenSSL or aws-lc build), bounded timeouts, no redirects to other hosts' credentials.
pub fn http_client(timeout: Duration) -> reqwest::Client {
    // reqwest is built without a bundled crypto provider; install ring once per process.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(3)))
        .user_agent(concat!("genhook/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("the HTTP client configuration is static and valid")
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
    /// How long to wait before retrying.
    pub retry_after: Option<Duration>,
}

impl ApiErrorBody {
    /// Parses an error body; `None` when it is not of that shape.
    pub fn parse(body: &[u8]) -> Option<Self> {
        #[derive(Deserialize)]
        struct Outer {
            error: Inner,
        }
        #[derive(Deserialize)]
        struct Inner {
            #[serde(default)]
            code: Option<serde_json::Value>,
            /// APIMP names its error kind `type`.
            #[serde(default, rename = "type")]
            kind: Option<String>,
            #[serde(default)]
            message: Option<String>,
            #[serde(default)]
            retryable: Option<bool>,
            #[serde(default)]
            retry_after: Option<f64>,
        }
        let e = serde_json::from_slice::<Outer>(body).ok()?.error;
        Some(Self {
            code: match e.code {
                Some(serde_json::Value::String(s)) => s,
                Some(other) => other.to_string(),
                None => e.kind.unwrap_or_else(|| "error".into()),
            },
            message: e.message.unwrap_or_default(),
            retryable: e.retryable.unwrap_or(false),
            retry_after: e.retry_after.filter(|s| s.is_finite() && *s >= 0.0).map(Duration::from_secs_f64),
        })
    }
}

/// Maps an HTTP error answer to a [`JobApiError`]: 429 → rate limited; 408/5xx or an
/// error body saying `retryable: true` → transient; other 4xx → permanent.
pub fn classify(status: StatusCode, body: Option<ApiErrorBody>, header_retry: Option<Duration>) -> JobApiError {
    let retry_after = body.as_ref().and_then(|b| b.retry_after).or(header_retry);
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
/// classified (connection errors and unparsable 2xx bodies are transient).
pub async fn get_json(
    client: &reqwest::Client,
    url: url::Url,
    api_key: &str,
) -> Result<serde_json::Value, JobApiError> {
    let transient = |reason: String, retry_after| JobApiError::Transient { reason, retry_after };
    let resp = client
        .get(url)
        .bearer_auth(api_key)
        .header("accept", "application/json")
        .send()
        .await
        .map_err(|e| transient(e.without_url().to_string(), None))?;
    let status = resp.status();
    let header_retry = retry_after_header(resp.headers());
    let body = resp.bytes().await.map_err(|e| transient(e.without_url().to_string(), header_retry))?;
    if status.is_success() {
        return serde_json::from_slice(&body).map_err(|e| transient(format!("response is not JSON: {e}"), None));
    }
    Err(classify(status, ApiErrorBody::parse(&body), header_retry))
}

/// The `Retry-After` header in seconds, if present and numeric.
pub fn retry_after_header(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim().parse::<u64>().ok().map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies() {
        let b = ApiErrorBody::parse(
            br#"{"error":{"code":"rate_limited","message":"slow down","retryable":true,"retry_after":2}}"#,
        )
        .unwrap();
        assert_eq!(b.code, "rate_limited");
        assert!(b.retryable);
        assert_eq!(b.retry_after, Some(Duration::from_secs(2)));
        let b = ApiErrorBody::parse(br#"{"error":{"code":404}}"#).unwrap();
        assert_eq!(b.code, "404");
        assert!(!b.retryable);
        assert_eq!(ApiErrorBody::parse(b"<html>"), None);
    }
}
