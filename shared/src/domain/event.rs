//! The normalized event published to the outbox (schema: `schema/event.schema.json`).

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The event type of a job that finished with outputs.
pub const COMPLETED: &str = "generation.completed";
/// The event type of a job that finished without.
pub const FAILED: &str = "generation.failed";

/// Version of the outbox event schema.
pub const SCHEMA_VERSION: &str = "1";

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
    /// The job's status as the provider's API reported it at reconciliation.
    pub status: String,
    /// Output files with URLs that were checked to live at least the configured minimum.
    pub outputs: Vec<EventOutput>,
    /// Failure details, when the job failed.
    pub failure: Option<Value>,
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
}

impl NormalizedEvent {
    /// JSON text of the event.
    pub fn to_json(&self) -> String {
        // Infallible: plain structs of strings, numbers and `Value`s (string-keyed maps).
        crate::domain::carry::sqs_safe_json(serde_json::to_string(self).expect("events always serialize"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The published JSON Schema and this type describe the same fields.
    #[test]
    fn matches_the_published_schema() {
        let schema: Value = serde_json::from_str(include_str!("../../../schema/event.schema.json")).unwrap();
        let event = NormalizedEvent {
            schema_version: SCHEMA_VERSION.into(),
            event_id: "evt_00000000000000000000000000000000".into(),
            event_type: "generation.completed".into(),
            provider: "katalo".into(),
            job_id: "j".into(),
            status: "succeeded".into(),
            outputs: vec![EventOutput { url: "https://x/y.png".into(), expires_at: None, media: None }],
            failure: None,
            reference: None,
            metadata: None,
            source_asset_id: None,
            received_at: "2026-11-23T12:00:00Z".into(),
            reconciled_at: "2026-11-23T12:00:01Z".into(),
            upstream: None,
            upstream_task_id: None,
        };
        let json: Value = serde_json::from_str(&event.to_json()).unwrap();
        let mut keys: Vec<&str> = json.as_object().unwrap().keys().map(String::as_str).collect();
        let mut required: Vec<&str> =
            schema["required"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
        let mut declared: Vec<&str> = schema["properties"].as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort();
        required.sort();
        declared.sort();
        assert_eq!(keys, required, "every field is required (nullable ones are null)");
        // Declared beyond the required ones: the APIMP-only fields, absent here.
        declared.retain(|k| !["upstream", "upstream_task_id"].contains(k));
        assert_eq!(keys, declared);
        assert_eq!(schema["properties"]["schema_version"]["const"], SCHEMA_VERSION);
        let output_keys: Vec<&str> = json["outputs"][0].as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(output_keys.len(), schema["properties"]["outputs"]["items"]["required"].as_array().unwrap().len());
    }
}
