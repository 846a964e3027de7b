//! The normalized event published to the outbox (schema: `schema/event.schema.json`).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

use crate::domain::abandon::{Abandonment, GiveUp};
use crate::domain::clock::rfc3339;
use crate::domain::dedupe::{dedupe_key, event_id};
use crate::domain::failure::classify;
use crate::domain::job::{Job, JobState};
use crate::domain::trace::Trace;

/// The event type of a job that finished with outputs.
pub const COMPLETED: &str = "generation.completed";
/// The event type of a job that finished without (failed, canceled or expired).
pub const FAILED: &str = "generation.failed";
/// The event type of a refresh: a finished job's outputs with freshly signed URLs.
pub const URLS_REFRESHED: &str = "generation.urls_refreshed";
/// The event type of a job genhook gave up on ([`crate::domain::abandon`]).
pub const ABANDONED: &str = "generation.abandoned";

/// Version of the outbox event schema. 2: `status` is genhook's word
/// ([`JobState::word`]), the provider's own is `provider_status`; `progress` added.
/// 3: `failure_code` and `retryable` on every event; `generation.abandoned` with
/// `abandon_reason` and `abandon_detail`, and the status `unknown`.
pub const SCHEMA_VERSION: &str = "3";

/// The longest `abandon_detail`, in characters (the DLQ's reason attribute keeps as many).
const MAX_DETAIL_CHARS: usize = 1024;

/// The status of an abandoned job whose state genhook does not know.
pub const UNKNOWN_STATUS: &str = "unknown";

/// The event type a finished job is published under.
pub fn terminal_type(state: JobState) -> &'static str {
    if state == JobState::Succeeded { COMPLETED } else { FAILED }
}

/// One reconciled, deduplicated event, as consumers read it from the outbox.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NormalizedEvent {
    /// Always [`SCHEMA_VERSION`] for this shape.
    pub schema_version: String,
    /// Stable id: identical across retries and redeliveries of the same event.
    pub event_id: String,
    /// Event type, e.g. `generation.completed` or `generation.failed`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// The provider, e.g. `katalo`.
    pub provider: String,
    /// The provider's job id.
    pub job_id: String,
    /// genhook's status word for the job at reconciliation ([`JobState::word`]):
    /// `succeeded`, `failed`, `canceled`, `expired` (or `running` for a forwarded
    /// non-terminal event).
    pub status: String,
    /// The job's status word as the provider's API reported it (lowercased).
    pub provider_status: String,
    /// Progress in percent, when the provider reports it.
    pub progress: Option<u8>,
    /// Output files with URLs that were checked to live at least the configured minimum.
    pub outputs: Vec<EventOutput>,
    /// Failure details, when the job failed, as the provider sent them.
    pub failure: Option<Value>,
    /// A job that did not succeed: what went wrong, from a documented set
    /// ([`crate::domain::failure::FailureCode`]); null otherwise.
    pub failure_code: Option<String>,
    /// A job that did not succeed: whether submitting it again may succeed (the
    /// provider's word when it says, else the code's); null otherwise.
    pub retryable: Option<bool>,
    /// The caller's reference.
    pub reference: Option<Value>,
    /// The caller's metadata.
    pub metadata: Option<Value>,
    /// The source asset id.
    pub source_asset_id: Option<String>,
    /// When genhook accepted the first delivery (RFC 3339).
    pub received_at: String,
    /// When the worker read the job from the provider's API (RFC 3339).
    pub reconciled_at: String,
    /// APIMP only: the upstream that ran the task (`kling`, `doubao`, `minimax`, `vidu`),
    /// when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<String>,
    /// APIMP only: the upstream's own task id, when a callback told it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_task_id: Option<String>,
    /// `generation.urls_refreshed` only: the `event_id` of the job's
    /// `generation.completed` event, whose outputs these are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_event_id: Option<String>,
    /// `generation.abandoned` only: why genhook gave up ([`GiveUp::code`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abandon_reason: Option<String>,
    /// `generation.abandoned` only: why, in words (the DLQ entry's reason).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abandon_detail: Option<String>,
    /// The delivery (or message) this event was published for: the front end's request
    /// id and the X-Ray trace header, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<Trace>,
}

/// One output in a normalized event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventOutput {
    /// The output's URL.
    pub url: String,
    /// When the URL expires (RFC 3339), or null when unknown.
    pub expires_at: Option<String>,
    /// `video`, `image` or `audio`, guessed from the URL when the provider's own type
    /// cannot be trusted (APIMP says "image" for everything).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media: Option<String>,
    /// A link on the stack's own API that always redirects to a live URL of this output
    /// (present when the stack serves links).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
}

impl NormalizedEvent {
    /// The event of `provider`'s job `job_id` as `job` reports it, typed `event_type`,
    /// its id keyed by provider, job and type (so every path that publishes one job's
    /// type gives one id). Providers add what only they know (upstream, media, hints).
    pub fn for_job(
        provider: &str,
        job_id: &str,
        event_type: &str,
        job: Job,
        received_at: String,
        now: OffsetDateTime,
    ) -> Self {
        let (failure_code, retryable) = if job.state.is_unsuccessful() {
            let (code, retryable) = classify(job.state, job.failure.as_ref());
            (Some(code.code().to_string()), Some(retryable))
        } else {
            (None, None)
        };
        Self {
            schema_version: SCHEMA_VERSION.into(),
            event_id: event_id(&dedupe_key(provider, job_id, event_type)),
            event_type: event_type.into(),
            provider: provider.into(),
            job_id: job_id.into(),
            status: job.state.word().into(),
            provider_status: job.status,
            progress: job.progress,
            outputs: job
                .outputs
                .into_iter()
                .map(|o| EventOutput { url: o.url, expires_at: o.expires_at.map(rfc3339), media: None, link: None })
                .collect(),
            failure: job.failure,
            failure_code,
            retryable,
            reference: job.reference,
            metadata: job.metadata,
            source_asset_id: job.source_asset_id,
            received_at,
            reconciled_at: rfc3339(now),
            upstream: None,
            upstream_task_id: None,
            original_event_id: None,
            abandon_reason: None,
            abandon_detail: None,
            trace: None,
        }
    }

    /// Sets the failure of a job that ended in `state` (a provider's fallback, such as the
    /// webhook's when the API has none), and the `failure_code` and `retryable` read from it.
    pub fn set_failure(&mut self, failure: Option<Value>, state: JobState) {
        if state.is_unsuccessful() {
            let (code, retryable) = classify(state, failure.as_ref());
            (self.failure_code, self.retryable) = (Some(code.code().to_string()), Some(retryable));
        }
        self.failure = failure;
    }

    /// The `generation.abandoned` event of `provider`'s job `job_id`: no outputs, the
    /// status `running` when the provider last said the job was still going (else
    /// `unknown`), and why. Its id is keyed by provider, job and type, like every event.
    pub fn abandoned(
        provider: &str,
        job_id: &str,
        abandonment: &Abandonment,
        received_at: String,
        now: OffsetDateTime,
    ) -> Self {
        let status = match (&abandonment.provider_status, abandonment.why) {
            (Some(_), GiveUp::HorizonPassed) => JobState::Pending.word(),
            _ => UNKNOWN_STATUS,
        };
        Self {
            schema_version: SCHEMA_VERSION.into(),
            event_id: event_id(&dedupe_key(provider, job_id, ABANDONED)),
            event_type: ABANDONED.into(),
            provider: provider.into(),
            job_id: job_id.into(),
            status: status.into(),
            provider_status: abandonment.provider_status.clone().unwrap_or_else(|| UNKNOWN_STATUS.into()),
            progress: None,
            outputs: Vec::new(),
            failure: None,
            failure_code: None,
            retryable: None,
            reference: None,
            metadata: None,
            source_asset_id: None,
            received_at,
            reconciled_at: rfc3339(now),
            upstream: None,
            upstream_task_id: None,
            original_event_id: None,
            abandon_reason: Some(abandonment.why.code().into()),
            abandon_detail: Some(crate::domain::text::clip(&abandonment.detail, MAX_DETAIL_CHARS)),
            trace: None,
        }
    }

    /// JSON text of the event.
    pub fn to_json(&self) -> String {
        // Infallible: plain structs of strings, numbers and `Value`s (string-keyed maps).
        crate::domain::limits::sqs_safe_json(serde_json::to_string(self).expect("events always serialize"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::job::JobOutput;
    use time::macros::datetime;

    fn schema() -> Value {
        serde_json::from_str(include_str!("../../../schema/event.schema.json")).unwrap()
    }

    fn names(v: &Value) -> Vec<&str> {
        let mut names: Vec<&str> = match v {
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            Value::Object(o) => o.keys().map(String::as_str).collect(),
            _ => Vec::new(),
        };
        names.sort();
        names
    }

    fn job(state: JobState) -> Job {
        Job {
            job_id: "j".into(),
            state,
            status: "finished".into(),
            outputs: vec![JobOutput { url: "https://x/y.png".into(), expires_at: None }],
            failure: None,
            reference: None,
            metadata: None,
            progress: Some(100),
            source_asset_id: None,
            outputs_removed: false,
        }
    }

    fn event(provider: &str, state: JobState) -> NormalizedEvent {
        let (received, now) = ("2026-11-23T12:00:00Z".into(), datetime!(2026-11-23 12:00:01 UTC));
        NormalizedEvent::for_job(provider, "j", terminal_type(state), job(state), received, now)
    }

    fn completed() -> NormalizedEvent {
        event("katalo", JobState::Succeeded)
    }

    /// The published JSON Schema and this type describe the same fields.
    #[test]
    fn matches_the_published_schema() {
        let schema = schema();
        let event = completed();
        let json: Value = serde_json::from_str(&event.to_json()).unwrap();
        let keys = names(&json);
        assert_eq!(keys, names(&schema["required"]), "every field is required (nullable ones are null)");
        let mut declared = names(&schema["properties"]);
        // Declared beyond the required ones: the optional fields, absent here.
        declared.retain(|k| {
            !["upstream", "upstream_task_id", "original_event_id", "abandon_reason", "abandon_detail", "trace"]
                .contains(k)
        });
        assert_eq!(keys, declared);
        assert_eq!(schema["properties"]["schema_version"]["const"], SCHEMA_VERSION);
        let items = &schema["properties"]["outputs"]["items"];
        assert_eq!(names(&json["outputs"][0]), names(&items["required"]));
        let mut output = event.outputs[0].clone();
        (output.media, output.link) = (Some("image".into()), Some("https://l/outputs/katalo/j/0?token=t".into()));
        assert_eq!(names(&serde_json::to_value(&output).unwrap()), names(&items["properties"]));
        let mut words: Vec<&str> = JobState::ALL.iter().map(|s| s.word()).collect();
        words.push(UNKNOWN_STATUS);
        assert_eq!(schema["properties"]["status"]["enum"], serde_json::json!(words));
        let reasons: Vec<&str> = GiveUp::ALL.iter().map(|g| g.code()).collect();
        assert_eq!(schema["properties"]["abandon_reason"]["enum"], serde_json::json!(reasons));
        let mut codes: Vec<Value> =
            crate::domain::failure::FailureCode::ALL.iter().map(|c| Value::from(c.code())).collect();
        codes.push(Value::Null);
        assert_eq!(schema["properties"]["failure_code"]["enum"], Value::Array(codes));
    }

    #[test]
    fn status_is_genhooks_word_and_the_providers_is_kept() {
        for state in JobState::ALL {
            let e = event("apimp", state);
            assert_eq!((e.status.as_str(), e.provider_status.as_str()), (state.word(), "finished"));
            assert_eq!(e.event_id, event_id(&dedupe_key("apimp", "j", terminal_type(state))));
            crate::domain::testing::schema::assert_valid_event(&e.to_json());
        }
    }

    /// The checker used on every published event in the tests can fail.
    #[test]
    fn the_schema_check_refuses_a_bad_event() {
        let e = completed();
        let mut v: Value = serde_json::from_str(&e.to_json()).unwrap();
        assert!(crate::domain::testing::schema::errors(&v).is_empty());
        v["status"] = "finished".into();
        v["outputs"][0]["expires_at"] = "soon".into();
        assert_eq!(
            crate::domain::testing::schema::errors(&v).len(),
            2,
            "{:?}",
            crate::domain::testing::schema::errors(&v)
        );
    }
}
