//! HTTP adapter for Replicate's prediction API ([`JobApi`]): `GET
//! {base}/v1/predictions/{id}` with `Authorization: Bearer <token>`.
//!
//! Failures are classified by [`crate::toolkit::http::classify`]: 429 is rate limited (the wait
//! from `Retry-After`, or from the "resets in ~30s" Replicate writes in the body), 408,
//! 5xx, timeouts and connection errors are transient, other 4xx (401, 403, 404) are
//! permanent. Replicate's error bodies are RFC 7807 problem details (`title`, `detail`,
//! `status`); their `title` and `detail` become the reason.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use url::Url;

use crate::domain::clock::Clock;
use crate::domain::clock::rfc3339;
use crate::domain::job::Job;
use crate::domain::text::clip;
use crate::ports::{JobApi, JobApiError, JobPage, ListedJob};
use crate::toolkit::http::rate_limit::RateLimiter;
use crate::toolkit::http::{
    ApiErrorBody, MAX_CODE_CHARS, MAX_MESSAGE_CHARS, api_base, api_url, get_json_with, http_client, retry_after_secs,
};

use super::prediction::{parse_prediction, state_of};
use super::webhook::MAX_ID_BYTES;

/// Reads predictions from `GET {base}/v1/predictions/{id}` with a Bearer token.
pub struct ReplicateApi {
    http: reqwest::Client,
    base: Url,
    token: String,
    clock: Arc<dyn Clock>,
    limiter: Option<RateLimiter>,
}

impl std::fmt::Debug for ReplicateApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplicateApi").field("base", &self.base.as_str()).finish_non_exhaustive()
    }
}

impl ReplicateApi {
    /// A client for the API at `base_url` (an `http(s)` URL, e.g.
    /// [`DEFAULT_BASE_URL`](super::DEFAULT_BASE_URL)); `timeout` bounds each request.
    pub fn new(
        base_url: &str,
        token: impl Into<String>,
        timeout: Duration,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, url::ParseError> {
        Ok(Self { http: http_client(timeout), base: api_base(base_url)?, token: token.into(), clock, limiter: None })
    }

    /// Caps this client at `per_second` requests per second. Replicate allows 3,000
    /// requests a minute to endpoints other than prediction creation, per account.
    pub fn with_rate_limit(mut self, per_second: u32) -> Self {
        self.limiter = Some(RateLimiter::per_second(per_second));
        self
    }

    /// `{base}/v1/predictions/{id}`, the id percent-encoded as one path segment; `None`
    /// for ids that cannot name a prediction (empty, too long, `.` or `..`).
    fn prediction_url(&self, id: &str) -> Option<Url> {
        if id.is_empty() || id.len() > MAX_ID_BYTES || id == "." || id == ".." {
            return None;
        }
        api_url(&self.base, &["v1", "predictions", id])
    }
}

#[async_trait]
impl JobApi for ReplicateApi {
    async fn get_job(&self, job_id: &str) -> Result<Job, JobApiError> {
        let url = self.prediction_url(job_id).ok_or_else(|| JobApiError::Permanent {
            status: 404,
            reason: "not a prediction id (no request was made)".into(),
        })?;
        if let Some(limiter) = &self.limiter {
            limiter.acquire().await;
        }
        let value = get_json_with(&self.http, super::PROVIDER, url, &self.token, problem_details).await?;
        parse_prediction(&value, job_id, self.clock.now())
            .map_err(|e| JobApiError::Transient { reason: e.to_string(), retry_after: None })
    }

    /// `GET /v1/predictions?created_after=…&created_before=…`, or the page `cursor` (a
    /// previous page's `next`) names, which must be on this API's origin and path: a
    /// cursor is never a URL anywhere else, nor a reason to send the token elsewhere.
    async fn list_jobs(
        &self,
        from: time::OffsetDateTime,
        until: time::OffsetDateTime,
        cursor: Option<&str>,
    ) -> Result<JobPage, JobApiError> {
        let list = api_url(&self.base, &["v1", "predictions"]).ok_or_else(crate::toolkit::http::unbuildable_url)?;
        let url = match cursor {
            None => {
                let mut url = list;
                url.query_pairs_mut()
                    .append_pair("created_after", &rfc3339(from))
                    .append_pair("created_before", &rfc3339(until));
                url
            }
            Some(cursor) => Url::parse(cursor)
                .ok()
                .filter(|u| u.origin() == list.origin() && u.path() == list.path())
                .ok_or_else(|| JobApiError::Permanent {
                    status: 400,
                    reason: "the page cursor is not a page of this API's prediction list (no request was made)".into(),
                })?,
        };
        if let Some(limiter) = &self.limiter {
            limiter.acquire().await;
        }
        let value = get_json_with(&self.http, super::PROVIDER, url, &self.token, problem_details).await?;
        parse_page(&value).map_err(|reason| JobApiError::Transient { reason, retry_after: None })
    }
}

/// A page of Replicate's prediction list, read leniently: `results` (each with an `id`
/// and a `status`; an entry without either is skipped) and `next`.
fn parse_page(value: &serde_json::Value) -> Result<JobPage, String> {
    let results =
        value.get("results").and_then(serde_json::Value::as_array).ok_or("the prediction list has no results array")?;
    let jobs = results
        .iter()
        .filter_map(|p| {
            let id = p.get("id")?.as_str()?;
            let status = p.get("status")?.as_str()?;
            Some(ListedJob { id: id.to_string(), state: state_of(status) })
        })
        .collect();
    let next = value.get("next").and_then(serde_json::Value::as_str).filter(|s| !s.is_empty()).map(str::to_string);
    Ok(JobPage { jobs, next })
}

/// Reads Replicate's error body: problem details (`title`, `detail`), or just `detail`.
/// A throttled answer's "resets in ~30s" becomes the wait.
fn problem_details(body: &[u8]) -> Option<ApiErrorBody> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let text = |k: &str| value.get(k).and_then(serde_json::Value::as_str);
    let (title, detail) = (text("title"), text("detail"));
    if title.is_none() && detail.is_none() {
        return None;
    }
    let detail = detail.unwrap_or_default();
    Some(ApiErrorBody {
        code: clip(title.unwrap_or("error"), MAX_CODE_CHARS),
        message: clip(detail, MAX_MESSAGE_CHARS),
        retryable: false,
        retry_after: wait_in(detail),
    })
}

/// The wait in a message like "Your rate limit resets in ~30s." or "Expected available
/// in 30 seconds.": whole seconds after "in", an optional `~`, then `s`.
fn wait_in(message: &str) -> Option<Duration> {
    message.match_indices("in ").find_map(|(at, _)| {
        let rest = message.get(at.saturating_add(3)..)?.trim_start().trim_start_matches('~').trim_start();
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        let (number, unit) = (rest.get(..digits)?, rest.get(digits..)?.trim_start());
        if number.is_empty() || number.len() > 9 || !unit.starts_with('s') {
            return None;
        }
        retry_after_secs(number.parse::<f64>().ok()?)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::clock::ManualClock;
    use crate::domain::job::JobState;
    use std::io::{Read, Write};
    use std::net::TcpListener;
    use std::sync::mpsc;
    use time::macros::datetime;

    /// A loopback HTTP/1.1 server answering one connection per canned response, in
    /// order; each request's head (lowercased) is sent back on the channel.
    fn serve(responses: Vec<(u16, &'static str, String)>) -> (String, mpsc::Receiver<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for (status, extra_headers, body) in responses {
                let Ok((mut stream, _)) = listener.accept() else { return };
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
                    head.push(byte[0]);
                }
                let _ = tx.send(String::from_utf8_lossy(&head).to_ascii_lowercase());
                let answer = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n{extra_headers}\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(answer.as_bytes());
            }
        });
        (base, rx)
    }

    fn api(base: &str) -> ReplicateApi {
        let clock = Arc::new(ManualClock::new(datetime!(2026-11-23 12:00:00 UTC)));
        ReplicateApi::new(base, "r8_test_token", Duration::from_secs(5), clock).unwrap()
    }

    #[tokio::test]
    async fn lists_a_window_and_follows_only_its_own_pages() {
        let body = r#"{"next":"https://api.replicate.com/v1/predictions?cursor=2","previous":null,
            "results":[{"id":"p1","status":"succeeded"},{"id":"p2","status":"processing"},{"status":"failed"}]}"#;
        let (base, requests) = serve(vec![(200, "", body.into()), (200, "", r#"{"next":null,"results":[]}"#.into())]);
        let api = api(&base);
        let (from, until) = (datetime!(2026-11-23 11:00:00 UTC), datetime!(2026-11-23 12:00:00 UTC));
        let page = api.list_jobs(from, until, None).await.unwrap();
        let listed = |id: &str, state| ListedJob { id: id.into(), state };
        assert_eq!(page.jobs, [listed("p1", JobState::Succeeded), listed("p2", JobState::Pending)]);
        assert_eq!(page.next.as_deref(), Some("https://api.replicate.com/v1/predictions?cursor=2"));
        let head = requests.recv().unwrap();
        let query = "created_after=2026-11-23t11%3a00%3a00z&created_before=2026-11-23t12%3a00%3a00z";
        assert!(head.starts_with(&format!("get /v1/predictions?{query} http/1.1")), "{head}");
        // A page of this API's list is followed as given.
        let last = api.list_jobs(from, until, Some(&format!("{base}/v1/predictions?cursor=2"))).await.unwrap();
        assert_eq!(last, JobPage::default());
        assert!(requests.recv().unwrap().starts_with("get /v1/predictions?cursor=2 http/1.1"));
        // A cursor anywhere else is refused before any request.
        for foreign in [page.next.unwrap(), format!("{base}/v1/files"), "not a url".into()] {
            let err = api.list_jobs(from, until, Some(&foreign)).await.unwrap_err();
            assert!(matches!(err, JobApiError::Permanent { status: 400, .. }), "{foreign}: {err:?}");
        }
    }

    #[tokio::test]
    async fn reads_a_prediction_with_the_bearer_token() {
        let body = r#"{"id":"gm3qorzdhgbfurvjtvhg6dckhu","status":"succeeded","output":["https://replicate.delivery/a/out-0.png"],
            "completed_at":"2026-11-23T11:59:00Z"}"#;
        let (base, requests) = serve(vec![(200, "", body.into())]);
        let job = api(&base).get_job("gm3qorzdhgbfurvjtvhg6dckhu").await.unwrap();
        assert_eq!(job.state, JobState::Succeeded);
        assert_eq!(job.outputs[0].expires_at, Some(datetime!(2026-11-23 12:59:00 UTC)));
        let head = requests.recv().unwrap();
        assert!(head.starts_with("get /v1/predictions/gm3qorzdhgbfurvjtvhg6dckhu http/1.1\r\n"), "{head}");
        assert!(head.contains("\r\nauthorization: bearer r8_test_token\r\n"), "{head}");
    }

    #[tokio::test]
    async fn errors_are_classified() {
        let throttled = r#"{"detail":"Request was throttled. Your rate limit resets in ~30s."}"#;
        let problem = |status: u16, title: &str| format!(r#"{{"title":"{title}","detail":"d","status":{status}}}"#);
        let (base, _) = serve(vec![
            (429, "", throttled.into()),
            (429, "retry-after: 7\r\n", r#"{"detail":"Request was throttled."}"#.into()),
            (503, "", problem(503, "Service Unavailable")),
            (500, "", "<html>oops</html>".into()),
            (404, "", problem(404, "Not found")),
            (401, "", r#"{"detail":"Invalid token."}"#.into()),
            (403, "", problem(403, "Forbidden")),
            (200, "", r#"{"detail":"no status here"}"#.into()),
        ]);
        let api = api(&base);
        let secs = |s| Some(Duration::from_secs(s));
        assert_eq!(api.get_job("p").await, Err(JobApiError::RateLimited { retry_after: secs(30) }));
        assert_eq!(api.get_job("p").await, Err(JobApiError::RateLimited { retry_after: secs(7) }));
        assert!(matches!(api.get_job("p").await, Err(JobApiError::Transient { .. })));
        assert!(matches!(api.get_job("p").await, Err(JobApiError::Transient { .. })));
        assert_eq!(api.get_job("p").await, Err(JobApiError::Permanent { status: 404, reason: "Not found: d".into() }));
        assert_eq!(
            api.get_job("p").await,
            Err(JobApiError::Permanent { status: 401, reason: "error: Invalid token.".into() })
        );
        assert!(matches!(api.get_job("p").await, Err(JobApiError::Permanent { status: 403, .. })));
        assert!(matches!(api.get_job("p").await, Err(JobApiError::Transient { .. })), "a 2xx without status");
    }

    #[tokio::test]
    async fn slow_or_absent_servers_are_transient() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        // Accepts, then never answers.
        std::thread::spawn(move || {
            let held = listener.accept();
            std::thread::sleep(Duration::from_secs(2));
            drop(held);
        });
        let clock = Arc::new(ManualClock::new(datetime!(2026-11-23 12:00:00 UTC)));
        let slow = ReplicateApi::new(&base, "t", Duration::from_millis(200), clock).unwrap();
        assert!(matches!(slow.get_job("p").await, Err(JobApiError::Transient { .. })));
        // Nothing listens on a port just freed.
        let free = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        assert!(matches!(api(&format!("http://{free}")).get_job("p").await, Err(JobApiError::Transient { .. })));
    }

    #[tokio::test]
    async fn ids_are_one_escaped_path_segment() {
        let a = api("https://api.example.com/prefix/");
        assert_eq!(
            a.prediction_url("a b/c?d#e").unwrap().as_str(),
            "https://api.example.com/prefix/v1/predictions/a%20b%2Fc%3Fd%23e"
        );
        assert_eq!(
            api("http://127.0.0.1:9").prediction_url("p").unwrap().as_str(),
            "http://127.0.0.1:9/v1/predictions/p"
        );
        for bad in ["", ".", ".."] {
            assert!(a.prediction_url(bad).is_none(), "{bad:?}");
            assert!(matches!(a.get_job(bad).await, Err(JobApiError::Permanent { status: 404, .. })));
        }
        assert!(a.prediction_url(&"p".repeat(MAX_ID_BYTES + 1)).is_none());
    }

    #[test]
    fn construction_and_debug() {
        let clock = || Arc::new(ManualClock::new(datetime!(2026-11-23 12:00:00 UTC)));
        for bad in ["not a url", "mailto:ops@example.com", "ftp://files.example.com/"] {
            assert!(ReplicateApi::new(bad, "t", Duration::from_secs(1), clock()).is_err(), "{bad}");
        }
        let shown = format!("{:?}", api(super::super::DEFAULT_BASE_URL).with_rate_limit(50));
        assert!(shown.contains("api.replicate.com") && !shown.contains("r8_test_token"), "{shown}");
    }

    #[test]
    fn waits_in_messages() {
        let s = |n| Some(Duration::from_secs(n));
        assert_eq!(wait_in("Request was throttled. Your rate limit resets in ~30s."), s(30));
        assert_eq!(wait_in("Request was throttled. Expected available in 12 seconds."), s(12));
        assert_eq!(wait_in("resets in ~ 5 s"), s(5));
        assert_eq!(wait_in("resets in ~99999999999999s"), None, "too many digits to be a wait");
        for none in ["", "in", "in ~", "in ~s", "in 5 minutes", "in -5s", "Request was throttled."] {
            assert_eq!(wait_in(none), None, "{none:?}");
        }
        assert_eq!(wait_in("é in ~3s ü"), s(3));
    }
}
