//! HTTP adapter for Katalo's job API ([`JobApi`]).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use url::Url;

use crate::domain::clock::Clock;
use crate::domain::job::Job;
use crate::ports::{JobApi, JobApiError};
use crate::providers::katalo::job::parse_job;
use crate::toolkit::http::rate_limit::RateLimiter;
use crate::toolkit::http::{api_base, api_url, get_json, http_client, unbuildable_url};

/// Katalo's API base URL when none is configured.
pub const DEFAULT_BASE_URL: &str = "https://app.katalo.ai";

/// Reads jobs from `GET {base}/api/v1/generations/{job_id}` with a Bearer key.
pub struct KataloApi {
    http: reqwest::Client,
    base: Url,
    api_key: String,
    clock: Arc<dyn Clock>,
    limiter: Option<RateLimiter>,
}

impl std::fmt::Debug for KataloApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KataloApi").field("base", &self.base.as_str()).finish_non_exhaustive()
    }
}

impl KataloApi {
    /// A client for the API at `base_url`; `timeout` bounds each request.
    pub fn new(
        base_url: &str,
        api_key: impl Into<String>,
        timeout: Duration,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, url::ParseError> {
        Ok(Self {
            http: http_client(timeout),
            base: api_base(base_url)?,
            api_key: api_key.into(),
            clock,
            limiter: None,
        })
    }

    /// Caps this client at `per_second` requests per second (Katalo allows 1,200 reads a
    /// minute per organization; see the template for how instances share it).
    pub fn with_rate_limit(mut self, per_second: u32) -> Self {
        self.limiter = Some(RateLimiter::per_second(per_second));
        self
    }

    fn job_url(&self, job_id: &str) -> Option<Url> {
        api_url(&self.base, &["api", "v1", "generations", job_id])
    }
}

#[async_trait]
impl JobApi for KataloApi {
    async fn get_job(&self, job_id: &str) -> Result<Job, JobApiError> {
        let url = self.job_url(job_id).ok_or_else(unbuildable_url)?;
        if let Some(limiter) = &self.limiter {
            limiter.acquire().await;
        }
        let value = get_json(&self.http, super::PROVIDER, url, &self.api_key).await?;
        parse_job(&value, job_id, self.clock.now())
            .map_err(|reason| JobApiError::Transient { reason, retry_after: None })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::clock::SystemClock;
    use crate::toolkit::http::{ApiErrorBody, classify};
    use reqwest::StatusCode;

    #[test]
    fn job_urls_escape_the_id_and_keep_a_base_path() {
        let api = KataloApi::new("https://api.example.com/prefix/", "k", Duration::from_secs(1), Arc::new(SystemClock))
            .unwrap();
        assert_eq!(
            api.job_url("job 1/x").unwrap().as_str(),
            "https://api.example.com/prefix/api/v1/generations/job%201%2Fx"
        );
        let api = KataloApi::new("http://127.0.0.1:9", "k", Duration::from_secs(1), Arc::new(SystemClock)).unwrap();
        assert_eq!(api.job_url("j").unwrap().as_str(), "http://127.0.0.1:9/api/v1/generations/j");
    }

    #[test]
    fn classification() {
        let body = |retryable, retry_after| {
            Some(ApiErrorBody { code: "c".into(), message: "m".into(), retryable, retry_after })
        };
        assert_eq!(
            classify(
                StatusCode::TOO_MANY_REQUESTS,
                body(true, Some(Duration::from_secs(7))),
                Some(Duration::from_secs(3))
            ),
            JobApiError::RateLimited { retry_after: Some(Duration::from_secs(7)) }
        );
        assert_eq!(
            classify(StatusCode::TOO_MANY_REQUESTS, None, Some(Duration::from_secs(3))),
            JobApiError::RateLimited { retry_after: Some(Duration::from_secs(3)) }
        );
        assert!(matches!(classify(StatusCode::BAD_GATEWAY, None, None), JobApiError::Transient { .. }));
        assert!(matches!(classify(StatusCode::CONFLICT, body(true, None), None), JobApiError::Transient { .. }));
        assert_eq!(
            classify(StatusCode::NOT_FOUND, body(false, None), None),
            JobApiError::Permanent { status: 404, reason: "c: m".into() }
        );
        assert!(matches!(classify(StatusCode::UNAUTHORIZED, None, None), JobApiError::Permanent { status: 401, .. }));
    }
}
