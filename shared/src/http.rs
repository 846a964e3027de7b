//! Shared HTTP client plumbing for provider APIs.

use std::time::Duration;

use serde::Deserialize;

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
                None => "error".into(),
            },
            message: e.message.unwrap_or_default(),
            retryable: e.retryable.unwrap_or(false),
            retry_after: e.retry_after.filter(|s| s.is_finite() && *s >= 0.0).map(Duration::from_secs_f64),
        })
    }
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
