//! Reading Katalo's job JSON (`GET /api/v1/generations/{job_id}`).
//!
//! Katalo's docs do not show this response, so it is read tolerantly (the decision is
//! recorded in docs/providers/katalo.md): the job may be bare or wrapped in `data` / `job`; `status`
//! is matched case-insensitively with [`JobState::terminal_word`] (`succeeded`/`completed`/
//! `success`, `failed`/`error`, `cancelled`, `expired`; anything else is still running, and
//! a word outside [`RUNNING`] is logged and counted as unknown);
//! `progress` is read when it is a number; `outputs` is a list of URL strings or
//! `{url, expires_at | expires_in, ...}` objects, or an object of such (`primary`,
//! `alternate`).
//!
//! Expiries are the provider's numbers: they saturate instead of overflowing (see
//! [`crate::domain::clock::offset_by_secs`]), so an absurd `expires_in` means "lives long
//! enough" and an absurdly negative one "already expired".

use serde_json::Value;
use time::OffsetDateTime;

use crate::domain::clock::offset_by_secs;
use crate::domain::job::{Job, JobOutput, JobState};
use crate::toolkit::http::url_expiry::{expiry_from_url, instant_from_json, secs_from_json};
use crate::toolkit::telemetry::{Origin, unknown_status};

/// The status words read as "still running" without being counted as unknown: what a
/// job API of this kind says while it works (Katalo's docs list none).
const RUNNING: &[&str] = &["queued", "pending", "processing", "running", "in_progress", "starting", "ingesting"];

/// Reads a job from the API's JSON at `now` (needed for relative `expires_in`).
pub fn parse_job(value: &Value, job_id: &str, now: OffsetDateTime) -> Result<Job, String> {
    let job = ["data", "job"].iter().find_map(|k| value.get(k).filter(|v| v.get("status").is_some())).unwrap_or(value);
    let status = job
        .get("status")
        .and_then(Value::as_str)
        .ok_or("job response has no string `status`")?
        .trim()
        .to_ascii_lowercase();
    let state = JobState::terminal_word(&status).unwrap_or_else(|| {
        if !RUNNING.contains(&status.as_str()) {
            unknown_status(Origin::provider(super::PROVIDER), &status);
        }
        JobState::Pending
    });
    let mut outputs = Vec::new();
    match job.get("outputs") {
        Some(Value::Array(items)) => items.iter().for_each(|v| push_output(&mut outputs, v, now)),
        Some(Value::Object(map)) => {
            // The primary output first, then the others (alternates) in key order.
            map.get("primary").into_iter().for_each(|v| push_output(&mut outputs, v, now));
            map.iter().filter(|(k, _)| *k != "primary").for_each(|(_, v)| push_output(&mut outputs, v, now));
        }
        _ => {}
    }
    let present = |k: &str| job.get(k).filter(|v| !v.is_null()).cloned();
    Ok(Job {
        job_id: job.get("job_id").or(job.get("id")).and_then(Value::as_str).unwrap_or(job_id).to_string(),
        state,
        status,
        outputs,
        failure: present("failure").or_else(|| present("error")),
        reference: present("reference"),
        metadata: present("metadata"),
        progress: job.get("progress").and_then(Value::as_u64).map(|p| u8::try_from(p.min(100)).unwrap_or(100)),
        source_asset_id: job.get("source_asset_id").and_then(Value::as_str).map(str::to_string),
        outputs_removed: false,
    })
}

fn push_output(out: &mut Vec<JobOutput>, v: &Value, now: OffsetDateTime) {
    match v {
        Value::String(url) => out.push(JobOutput { url: url.clone(), expires_at: expiry_from_url(url) }),
        Value::Object(o) => {
            let Some(url) = o.get("url").or(o.get("signed_url")).and_then(Value::as_str) else { return };
            let given = o.get("expires_at").and_then(instant_from_json);
            let relative = o.get("expires_in").and_then(secs_from_json).map(|s| offset_by_secs(now, s));
            let expires_at = given.or(relative).or_else(|| expiry_from_url(url));
            out.push(JobOutput { url: url.to_string(), expires_at });
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-11-23 12:00:00 UTC);

    #[test]
    fn succeeded_with_object_outputs() {
        let v = json!({"job_id":"j1","status":"SUCCEEDED","reference":"r","metadata":{"a":1},"source_asset_id":"src_1",
            "outputs":[{"url":"https://x/a.png","expires_at":"2026-11-23T13:00:00Z"},{"url":"https://x/b.png","expires_in":60}]});
        let job = parse_job(&v, "j1", NOW).unwrap();
        assert_eq!(job.state, JobState::Succeeded);
        assert_eq!(job.status, "succeeded");
        assert_eq!(job.outputs[0].expires_at, Some(datetime!(2026-11-23 13:00:00 UTC)));
        assert_eq!(job.outputs[1].expires_at, Some(datetime!(2026-11-23 12:01:00 UTC)));
        assert_eq!(job.reference, Some(json!("r")));
        assert_eq!(job.source_asset_id.as_deref(), Some("src_1"));
    }

    #[test]
    fn wrapped_and_string_outputs_read_expiry_from_the_url() {
        let url = "https://b.s3.amazonaws.com/o.png?X-Amz-Date=20261123T120000Z&X-Amz-Expires=900&X-Amz-Signature=s";
        let v = json!({"data":{"status":"completed","outputs":[url]}});
        let job = parse_job(&v, "j1", NOW).unwrap();
        assert_eq!(job.job_id, "j1");
        assert_eq!(job.outputs[0].expires_at, Some(datetime!(2026-11-23 12:15:00 UTC)));
    }

    #[test]
    fn primary_and_alternate() {
        let v = json!({"job":{"status":"succeeded","outputs":{"primary":{"url":"https://x/p.png","expires_at":1795435200},"alternate":"https://x/a.png"}}});
        let job = parse_job(&v, "j", NOW).unwrap();
        assert_eq!(job.outputs.len(), 2);
        assert_eq!(job.outputs[0].url, "https://x/p.png");
        assert_eq!(job.outputs[0].expires_at.map(|t| t.unix_timestamp()), Some(1_795_435_200));
    }

    #[test]
    fn unknown_status_words_are_counted() {
        let counts = crate::domain::testing::metrics::Counts::default();
        counts.record(|| {
            for word in ["queued", "Processing", "succeeded", "failed", "something_new"] {
                let _ = parse_job(&json!({"status": word}), "j", NOW);
            }
        });
        assert_eq!(counts.get("status_unknown", &[("provider", "katalo")]), 1);
    }

    #[test]
    fn states() {
        let st = |s: &str| parse_job(&json!({"status": s}), "j", NOW).unwrap().state;
        assert_eq!(st("failed"), JobState::Failed);
        assert_eq!(st("Error"), JobState::Failed);
        assert_eq!(st("processing"), JobState::Pending);
        assert_eq!(st("ingesting"), JobState::Pending);
        assert_eq!(st("something_new"), JobState::Pending);
        assert!(parse_job(&json!({"outputs":[]}), "j", NOW).is_err());
    }

    #[test]
    fn failure_is_carried() {
        let v = json!({"status":"failed","failure":{"code":"nsfw","message":"blocked"}});
        assert_eq!(parse_job(&v, "j", NOW).unwrap().failure, Some(json!({"code":"nsfw","message":"blocked"})));
    }

    #[test]
    fn huge_expiries_saturate() {
        use crate::domain::clock::{MAX_INSTANT, MIN_INSTANT};
        let expiry = |output: Value| {
            parse_job(&json!({"status":"succeeded","outputs":[output]}), "j", NOW).unwrap().outputs[0].expires_at
        };
        // `expires_in: i64::MAX` panicked before (`OffsetDateTime + Duration` overflow).
        assert_eq!(expiry(json!({"url":"https://x/a.png","expires_in":i64::MAX})), Some(MAX_INSTANT));
        assert_eq!(expiry(json!({"url":"https://x/a.png","expires_in":i64::MIN})), Some(MIN_INSTANT));
        assert_eq!(expiry(json!({"url":"https://x/a.png","expires_in":1e20})), Some(MAX_INSTANT));
        assert_eq!(
            expiry(json!({"url":"https://x/a.png","expires_in":"60"})),
            Some(datetime!(2026-11-23 12:01:00 UTC))
        );
        assert_eq!(expiry(json!({"url":"https://x/a.png","expires_at":u64::MAX})), Some(MAX_INSTANT));
        assert_eq!(expiry(json!({"url":"https://x/a.png","expires_at":-1e300})), Some(MIN_INSTANT));
        let u = "https://x/a.png?X-Amz-Date=20261123T120000Z&X-Amz-Expires=99999999999999999999";
        assert_eq!(expiry(json!(u)), Some(MAX_INSTANT));
        assert_eq!(expiry(json!({"url":"https://x/a.png","expires_in":{"nested":[]}})), None);
    }
}
