//! APIMP's status API: `GET {base}/api/generate/status/{task_id}` with
//! `Authorization: Bearer {APIMP_API_KEY}`, the platform-normalized truth the worker
//! publishes (callbacks are only hints).
//!
//! Read tolerantly: `{"code":200,"data":{task_id, status, progress, error_message,
//! files:[{file_url, file_type}]}}` or the bare `data`; a file's URL may also be under
//! `url` or `download_url`. `file_type` is always "image" whatever the media, so it is
//! ignored and the media is guessed from the URL's extension instead.

use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use url::Url;

use crate::domain::job::JobState;
use crate::domain::job::{Job, JobOutput};
use crate::ports::{JobApi, JobApiError};
use crate::providers::apimp::callback::platform_state;
use crate::toolkit::http::rate_limit::RateLimiter;
use crate::toolkit::http::url_expiry::{expiry_from_url, instant_from_json};
use crate::toolkit::http::{api_base, api_url, get_json, http_client, unbuildable_url};

/// A task as APIMP's status API reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct ApimpTask {
    /// APIMP's task id.
    pub task_id: String,
    /// The status word, lowercased (`not_started`, `running`, `finished`, `failed`).
    pub status: String,
    /// What it means.
    pub state: JobState,
    /// 0–100, when given.
    pub progress: Option<u8>,
    /// Output files.
    pub files: Vec<JobOutput>,
    /// Why it failed, when it did.
    pub error_message: Option<String>,
}

impl ApimpTask {
    /// The task as the domain's job: a failure carries `{"message": ...}`. APIMP does
    /// not echo the caller's metadata.
    pub fn into_job(self) -> Job {
        let failed = self.state.is_unsuccessful();
        Job {
            job_id: self.task_id,
            state: self.state,
            status: self.status,
            outputs: self.files,
            failure: failed.then(
                || serde_json::json!({"message": self.error_message.unwrap_or_else(|| "the task failed".into())}),
            ),
            reference: None,
            metadata: None,
            progress: self.progress,
            source_asset_id: None,
            outputs_removed: false,
        }
    }
}

/// Reads a status response.
pub fn parse_task(value: &Value, task_id: &str) -> Result<ApimpTask, String> {
    let task = value.get("data").filter(|d| d.is_object()).unwrap_or(value);
    let status = task
        .get("status")
        .and_then(Value::as_str)
        .ok_or("status response has no string `status`")?
        .trim()
        .to_ascii_lowercase();
    let files = task
        .get("files")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|f| {
            let url = match f {
                Value::String(u) => u.clone(),
                _ => ["file_url", "url", "download_url"].iter().find_map(|k| f.get(*k)?.as_str())?.to_string(),
            };
            let given = f.get("expires_at").and_then(instant_from_json);
            Some(JobOutput { expires_at: given.or_else(|| expiry_from_url(&url)), url })
        })
        .collect();
    Ok(ApimpTask {
        task_id: task.get("task_id").and_then(Value::as_str).unwrap_or(task_id).to_string(),
        state: platform_state(&status),
        status,
        progress: task.get("progress").and_then(Value::as_u64).map(|p| p.min(100) as u8),
        files,
        error_message: task.get("error_message").and_then(Value::as_str).map(str::to_string),
    })
}

/// The media a URL points at, by its extension: `video`, `image`, `audio`, or `None`.
pub fn media_from_url(url: &str) -> Option<&'static str> {
    let path = Url::parse(url).ok()?.path().to_ascii_lowercase();
    let ext = path.rsplit_once('.')?.1.to_string();
    match ext.as_str() {
        "mp4" | "mov" | "webm" | "m3u8" | "mkv" => Some("video"),
        "png" | "jpg" | "jpeg" | "webp" | "gif" => Some("image"),
        "mp3" | "wav" | "m4a" | "ogg" => Some("audio"),
        _ => None,
    }
}

/// The status API client.
pub struct ApimpApi {
    http: reqwest::Client,
    base: Url,
    api_key: String,
    limiter: Option<RateLimiter>,
}

impl std::fmt::Debug for ApimpApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApimpApi").field("base", &self.base.as_str()).finish_non_exhaustive()
    }
}

impl ApimpApi {
    /// A client for the API at `base_url`; `timeout` bounds each request.
    pub fn new(base_url: &str, api_key: impl Into<String>, timeout: Duration) -> Result<Self, url::ParseError> {
        Ok(Self { http: http_client(timeout), base: api_base(base_url)?, api_key: api_key.into(), limiter: None })
    }

    /// Caps this client at `per_second` requests per second.
    pub fn with_rate_limit(mut self, per_second: u32) -> Self {
        self.limiter = Some(RateLimiter::per_second(per_second));
        self
    }

    fn status_url(&self, task_id: &str) -> Option<Url> {
        api_url(&self.base, &["api", "generate", "status", task_id])
    }
}

impl ApimpApi {
    /// Reads a task's status.
    pub async fn get_task(&self, task_id: &str) -> Result<ApimpTask, JobApiError> {
        let url = self.status_url(task_id).ok_or_else(unbuildable_url)?;
        if let Some(limiter) = &self.limiter {
            limiter.acquire().await;
        }
        let value = get_json(&self.http, super::PROVIDER, url, &self.api_key).await?;
        parse_task(&value, task_id).map_err(|reason| JobApiError::Transient { reason, retry_after: None })
    }
}

#[async_trait]
impl JobApi for ApimpApi {
    async fn get_job(&self, task_id: &str) -> Result<Job, JobApiError> {
        self.get_task(task_id).await.map(ApimpTask::into_job)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn documented_shapes() {
        let t = parse_task(
            &json!({"code":200,"data":{"task_id":"task_01HF8Z","status":"running","progress":42,"created_time":"2026-06-14T10:30:00","error_message":null}}),
            "x",
        )
        .unwrap();
        assert_eq!((t.task_id.as_str(), t.state, t.progress), ("task_01HF8Z", JobState::Pending, Some(42)));
        let t = parse_task(
            &json!({"data":{"status":"FINISHED","files":[{"file_url":"https://cdn.example/v.mp4?X-Amz-Date=20261123T120000Z&X-Amz-Expires=600","file_type":"image"}]}}),
            "task_2",
        )
        .unwrap();
        assert_eq!((t.task_id.as_str(), t.status.as_str(), t.state), ("task_2", "finished", JobState::Succeeded));
        assert_eq!(t.files[0].expires_at.map(|e| e.unix_timestamp()), Some(1_795_435_800));
        assert_eq!(media_from_url(&t.files[0].url), Some("video"), "file_type says image; the URL says video");
        let t = parse_task(&json!({"status":"failed","error_message":"upstream refused"}), "t3").unwrap();
        assert_eq!((t.state, t.error_message.as_deref()), (JobState::Failed, Some("upstream refused")));
        assert!(parse_task(&json!({"code":200}), "t").is_err());
    }

    #[test]
    fn extreme_values_are_bounded() {
        use crate::domain::clock::{MAX_INSTANT, rfc3339};
        let t = parse_task(
            &json!({"status":"finished","progress":u64::MAX,"files":[
                {"url":"https://c/v.mp4","expires_at":1e300},
                {"url":"https://c/v.mp4?X-Amz-Date=20261123T120000Z&X-Amz-Expires=9223372036854775807"},
                "https://c/v.mp4?Expires=-99999999999999"]}),
            "t",
        )
        .unwrap();
        assert_eq!(t.progress, Some(100));
        assert_eq!(t.files[0].expires_at, Some(MAX_INSTANT));
        assert_eq!(t.files[1].expires_at, Some(MAX_INSTANT));
        assert_eq!(t.files[2].expires_at.map(rfc3339).as_deref(), Some("0000-01-01T00:00:00Z"));
    }

    #[test]
    fn status_urls_escape_and_keep_a_base_path() {
        let api = ApimpApi::new("https://api.example.com/v/", "k", Duration::from_secs(1)).unwrap();
        assert_eq!(
            api.status_url("task 1").unwrap().as_str(),
            "https://api.example.com/v/api/generate/status/task%201"
        );
    }
}
