//! Reading a Replicate prediction (`GET /v1/predictions/{id}`, and every webhook body)
//! into a [`Job`].
//!
//! - `status`: `starting` and `processing` are running; `succeeded` is done with
//!   outputs; `failed`, `canceled` and `aborted` (a deadline passed before it started:
//!   genhook's `expired`) are done without. Anything else is treated as still running.
//! - `output` is whatever the model returns: `null`, a string, an array, an object, or
//!   nested arrays and objects of those. Every `http(s)` URL in it is an output file, in
//!   document order, at most [`MAX_OUTPUTS`]; other values (text, numbers) are not files.
//! - A URL's expiry is read from the URL when it is a known signed URL
//!   ([`expiry_from_url`]); otherwise it is [`OUTPUT_RETENTION`] after the prediction
//!   completed (Replicate's `replicate.delivery` URLs carry no expiry of their own).
//! - `error` (any JSON) and the status word make up `failure`.
//!
//! The input is the provider's: nothing here panics or overflows, whatever it holds.

use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::domain::clock::clamp_instant;
use crate::domain::clock::offset_by_secs;
use crate::domain::job::{Job, JobOutput, JobState};
use crate::toolkit::http::url_expiry::{expiry_from_url, parse_instant};
use crate::toolkit::telemetry::{Origin, unknown_status};

/// How long Replicate keeps an API-created prediction's output files: "For predictions
/// created through the API, all input parameters, output values, output files, and logs
/// are automatically removed after an hour, by default"
/// (<https://replicate.com/docs/topics/predictions/data-retention>; the output files
/// page says the URLs "will expire after one hour"). Counted here from `completed_at`.
pub const OUTPUT_RETENTION: time::Duration = time::Duration::hours(1);

/// The most output URLs read from one prediction.
pub const MAX_OUTPUTS: usize = 100;

/// The most JSON values of `output` looked at (bounds the work on a huge output).
const MAX_VISITED: usize = 10_000;

/// The longest output URL kept, in bytes.
const MAX_URL_BYTES: usize = 8192;

/// Why a prediction cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PredictionError {
    /// Not JSON at all.
    #[error("prediction is not valid JSON: {0}")]
    NotJson(String),
    /// JSON, but not an object.
    #[error("prediction must be a JSON object")]
    NotObject,
    /// No non-empty string `status`.
    #[error("prediction has no string `status`")]
    MissingStatus,
}

/// The normalized state of a Replicate status word (already trimmed and lowercased).
pub fn state_of(status: &str) -> JobState {
    match status {
        "succeeded" => JobState::Succeeded,
        "failed" => JobState::Failed,
        "canceled" | "cancelled" => JobState::Canceled,
        // Terminated before it started because its deadline passed: it never ran in time.
        "aborted" => JobState::Expired,
        "starting" | "processing" => JobState::Pending,
        other => {
            unknown_status(Origin::provider(super::PROVIDER), other);
            JobState::Pending
        }
    }
}

/// A status word as genhook keeps it: trimmed, lowercased.
pub(crate) fn normalize_status(raw: &str) -> String {
    raw.trim().to_ascii_lowercase()
}

/// Reads a prediction from raw JSON bytes (see [`parse_prediction`]).
pub fn parse_prediction_bytes(raw: &[u8], prediction_id: &str, now: OffsetDateTime) -> Result<Job, PredictionError> {
    let value: Value = serde_json::from_slice(raw).map_err(|e| PredictionError::NotJson(e.to_string()))?;
    parse_prediction(&value, prediction_id, now)
}

/// Reads a prediction at `now` (the expiry base when it has no completion time).
/// `prediction_id` is used when the object has no string `id`.
pub fn parse_prediction(value: &Value, prediction_id: &str, now: OffsetDateTime) -> Result<Job, PredictionError> {
    let p = value.as_object().ok_or(PredictionError::NotObject)?;
    let status = p.get("status").and_then(Value::as_str).map(normalize_status).unwrap_or_default();
    if status.is_empty() {
        return Err(PredictionError::MissingStatus);
    }
    let state = state_of(&status);
    // Every expiry stays within the instants genhook can write.
    let now = clamp_instant(now);
    let outputs = if state == JobState::Succeeded {
        // The retention clock starts when the prediction ends; the earliest known time
        // stands in when that is missing (an earlier base is the safer guess).
        let ended = ["completed_at", "started_at", "created_at"]
            .iter()
            .find_map(|k| p.get(*k).and_then(Value::as_str).and_then(parse_instant))
            .unwrap_or(now);
        let mut retained_until = offset_by_secs(ended, OUTPUT_RETENTION.whole_seconds());
        if p.get("data_removed") == Some(&Value::Bool(true)) {
            // Replicate says the files are already gone.
            retained_until = retained_until.min(now);
        }
        output_urls(p.get("output").unwrap_or(&Value::Null))
            .into_iter()
            .map(|url| {
                let expires_at = expiry_from_url(&url).unwrap_or(retained_until);
                JobOutput { url, expires_at: Some(expires_at) }
            })
            .collect()
    } else {
        Vec::new()
    };
    let failure = state
        .is_unsuccessful()
        .then(|| json!({"status": status, "error": p.get("error").cloned().unwrap_or(Value::Null)}));
    let job_id =
        p.get("id").and_then(Value::as_str).map(str::trim).filter(|id| !id.is_empty()).unwrap_or(prediction_id);
    Ok(Job {
        job_id: job_id.to_string(),
        state,
        status,
        outputs,
        failure,
        reference: None,
        metadata: None,
        progress: None,
        source_asset_id: None,
        outputs_removed: p.get("data_removed") == Some(&Value::Bool(true)),
    })
}

/// Every `http(s)` URL in `output`, depth first in document order (object members in
/// the order the map holds them), at most [`MAX_OUTPUTS`].
fn output_urls(output: &Value) -> Vec<String> {
    let mut urls = Vec::new();
    let mut stack = vec![output];
    let mut visited = 0usize;
    while let Some(v) = stack.pop() {
        visited = visited.saturating_add(1);
        if visited > MAX_VISITED || urls.len() >= MAX_OUTPUTS {
            break;
        }
        match v {
            Value::String(s) => {
                if let Some(url) = http_url(s) {
                    urls.push(url);
                }
            }
            // Pushed in reverse so they pop in order.
            Value::Array(items) => stack.extend(items.iter().rev()),
            Value::Object(map) => stack.extend(map.values().rev()),
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }
    urls
}

/// `s` (trimmed) when it is an absolute `http` or `https` URL with a host.
fn http_url(s: &str) -> Option<String> {
    let s = s.trim();
    if s.len() > MAX_URL_BYTES {
        return None;
    }
    let url = url::Url::parse(s).ok()?;
    (matches!(url.scheme(), "http" | "https") && url.host().is_some()).then(|| s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-11-23 12:00:00 UTC);

    fn prediction(status: &str, output: Value) -> Value {
        json!({
            "id": "gm3qorzdhgbfurvjtvhg6dckhu",
            "model": "black-forest-labs/flux-schnell",
            "version": "5c7d5dc6dd8bf75c1acaa8565735e7986bc5b66206b55cca93cb72c9bf15ccaa",
            "input": {"prompt": "a lion", "image": "https://example.com/input.png"},
            "logs": "",
            "output": output,
            "error": null,
            "status": status,
            "created_at": "2026-11-23T11:50:00.123456Z",
            "started_at": "2026-11-23T11:50:01.5Z",
            "completed_at": "2026-11-23T11:55:00.765994Z",
            "data_removed": false,
            "metrics": {"predict_time": 12.5},
            "urls": {"get": "https://api.replicate.com/v1/predictions/gm3qorzdhgbfurvjtvhg6dckhu"}
        })
    }

    #[test]
    fn succeeded_with_a_list_of_delivery_urls() {
        let urls =
            json!(["https://replicate.delivery/yhqm/a/out-0.jpg", "https://replicate.delivery/yhqm/b/out-1.jpg"]);
        let job = parse_prediction(&prediction(" Succeeded ", urls), "ignored", NOW).unwrap();
        assert_eq!(
            (job.job_id.as_str(), job.status.as_str(), &job.state),
            ("gm3qorzdhgbfurvjtvhg6dckhu", "succeeded", &JobState::Succeeded)
        );
        let expiry = Some(datetime!(2026-11-23 12:55:00.765994 UTC));
        assert_eq!(
            job.outputs,
            vec![
                JobOutput { url: "https://replicate.delivery/yhqm/a/out-0.jpg".into(), expires_at: expiry },
                JobOutput { url: "https://replicate.delivery/yhqm/b/out-1.jpg".into(), expires_at: expiry },
            ]
        );
        assert_eq!((job.failure, job.reference, job.metadata, job.source_asset_id), (None, None, None, None));
    }

    #[test]
    fn outputs_of_any_shape() {
        let urls = |output: Value| -> Vec<String> {
            parse_prediction(&prediction("succeeded", output), "p", NOW)
                .unwrap()
                .outputs
                .into_iter()
                .map(|o| o.url)
                .collect()
        };
        assert_eq!(urls(json!("https://replicate.delivery/x.mp4")), ["https://replicate.delivery/x.mp4"]);
        assert!(urls(json!(null)).is_empty());
        assert!(urls(json!("hello Alice")).is_empty(), "text output is not a file");
        assert!(urls(json!(["hel", "lo"])).is_empty(), "streamed tokens are not files");
        assert!(urls(json!(["data:image/png;base64,AAAA", "ftp://x/y", "/relative.png", 42, true])).is_empty());
        let nested =
            json!({"images": ["https://a/1.png", ["https://a/2.png"]], "video": {"url": "https://a/3.mp4"}, "seed": 7});
        assert_eq!(urls(nested), ["https://a/1.png", "https://a/2.png", "https://a/3.mp4"]);
        let many: Vec<String> = (0..500).map(|i| format!("https://a/{i}.png")).collect();
        let got = urls(json!(many));
        assert_eq!(
            (got.len(), got[0].as_str(), got[99].as_str()),
            (MAX_OUTPUTS, "https://a/0.png", "https://a/99.png")
        );
    }

    #[test]
    fn signed_urls_keep_their_own_expiry() {
        let signed = "https://b.s3.amazonaws.com/o.png?X-Amz-Date=20261123T120000Z&X-Amz-Expires=900&X-Amz-Signature=s";
        let job = parse_prediction(&prediction("succeeded", json!([signed])), "p", NOW).unwrap();
        assert_eq!(job.outputs[0].expires_at, Some(datetime!(2026-11-23 12:15:00 UTC)));
    }

    #[test]
    fn retention_falls_back_to_earlier_times_and_respects_removal() {
        let mut p = prediction("succeeded", json!(["https://a/1.png"]));
        p["completed_at"] = json!(null);
        let expiry = |p: &Value| parse_prediction(p, "p", NOW).unwrap().outputs[0].expires_at;
        assert_eq!(expiry(&p), Some(datetime!(2026-11-23 12:50:01.5 UTC)));
        for k in ["started_at", "created_at"] {
            p[k] = json!("yesterday");
        }
        assert_eq!(expiry(&p), Some(NOW + OUTPUT_RETENTION));
        p["data_removed"] = json!(true);
        assert_eq!(expiry(&p), Some(NOW));
        assert!(parse_prediction(&p, "p", NOW).unwrap().outputs_removed);
        p["output"] = json!(null);
        let job = parse_prediction(&p, "p", NOW).unwrap();
        assert!(job.outputs_removed && job.outputs.is_empty(), "removed, and said so without its files");
        p["data_removed"] = json!(false);
        assert!(!parse_prediction(&p, "p", NOW).unwrap().outputs_removed);
    }

    #[test]
    fn unknown_status_words_are_counted() {
        let counts = crate::domain::testing::metrics::Counts::default();
        counts.record(|| {
            for word in ["starting", "processing", "succeeded", "failed", "canceled", "aborted", "warming"] {
                state_of(word);
            }
        });
        assert_eq!(counts.get("status_unknown", &[("provider", "replicate")]), 1);
    }

    #[test]
    fn states_and_failures() {
        let st = |s: &str| parse_prediction(&prediction(s, json!(null)), "p", NOW).unwrap();
        for running in ["starting", "processing", "queued", "something_new"] {
            assert_eq!(st(running).state, JobState::Pending, "{running}");
            assert!(st(running).failure.is_none());
        }
        let mut failed = prediction("failed", json!(["https://a/partial.png"]));
        failed["error"] = json!("CUDA out of memory");
        let job = parse_prediction(&failed, "p", NOW).unwrap();
        assert_eq!(job.state, JobState::Failed);
        assert!(job.outputs.is_empty(), "a failed prediction publishes no files");
        assert_eq!(job.failure, Some(json!({"status": "failed", "error": "CUDA out of memory"})));
        assert_eq!(st("canceled").failure, Some(json!({"status": "canceled", "error": null})));
        assert_eq!(st("canceled").state, JobState::Canceled);
        assert_eq!(st("aborted").state, JobState::Expired);
        assert_eq!(st("CANCELLED").status, "cancelled");
    }

    #[test]
    fn refusals_and_id_fallback() {
        assert_eq!(parse_prediction(&json!([1]), "p", NOW), Err(PredictionError::NotObject));
        assert_eq!(parse_prediction(&json!({"id": "p"}), "p", NOW), Err(PredictionError::MissingStatus));
        assert_eq!(parse_prediction(&json!({"status": "  "}), "p", NOW), Err(PredictionError::MissingStatus));
        assert_eq!(parse_prediction(&json!({"status": 3}), "p", NOW), Err(PredictionError::MissingStatus));
        assert!(matches!(parse_prediction_bytes(b"{nope", "p", NOW), Err(PredictionError::NotJson(_))));
        let job = parse_prediction_bytes(br#"{"status":"starting","id":""}"#, "asked_for", NOW).unwrap();
        assert_eq!(job.job_id, "asked_for");
    }
}
