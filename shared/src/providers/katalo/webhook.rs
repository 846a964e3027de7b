//! Parsing a (verified) Katalo webhook body.

use serde_json::{Map, Value};

/// Why a verified body is not a usable Katalo webhook (answered with 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    /// Not JSON at all.
    #[error("body is not valid JSON: {0}")]
    NotJson(String),
    /// JSON, but not an object.
    #[error("body must be a JSON object")]
    NotObject,
    /// A required field is missing, empty or not a string.
    #[error("`{0}` must be a non-empty string")]
    MissingField(&'static str),
}

/// The fields of a Katalo webhook genhook needs; everything else is carried in `body`.
#[derive(Debug, Clone, PartialEq)]
pub struct KataloWebhook {
    /// Katalo's job id.
    pub job_id: String,
    /// `generation.completed`, `generation.failed`, or any future type (forwarded too).
    pub event_type: String,
    /// The whole body.
    pub body: Value,
}

impl KataloWebhook {
    /// Parses a body whose signature was already verified.
    pub fn parse(raw: &[u8]) -> Result<Self, WebhookError> {
        let body: Value = serde_json::from_slice(raw).map_err(|e| WebhookError::NotJson(e.to_string()))?;
        let obj = body.as_object().ok_or(WebhookError::NotObject)?;
        let job_id = required(obj, "job_id")?;
        let event_type = required(obj, "event_type")?;
        Ok(Self { job_id, event_type, body })
    }
}

fn required(obj: &Map<String, Value>, field: &'static str) -> Result<String, WebhookError> {
    match obj.get(field).and_then(Value::as_str).map(str::trim) {
        Some(s) if !s.is_empty() => Ok(s.to_string()),
        _ => Err(WebhookError::MissingField(field)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_completed_delivery() {
        let raw = br#"{"event_type":"generation.completed","job_id":"job_1","reference":"r","outputs":[{"url":"https://x/a.png"}]}"#;
        let w = KataloWebhook::parse(raw).unwrap();
        assert_eq!(w.job_id, "job_1");
        assert_eq!(w.event_type, "generation.completed");
        assert_eq!(w.body["reference"], "r");
    }

    #[test]
    fn unknown_event_types_are_kept() {
        let w = KataloWebhook::parse(br#"{"event_type":"generation.started","job_id":"j"}"#).unwrap();
        assert_eq!(w.event_type, "generation.started");
    }

    #[test]
    fn rejects_bad_bodies() {
        assert!(matches!(KataloWebhook::parse(b"{nope"), Err(WebhookError::NotJson(_))));
        assert_eq!(KataloWebhook::parse(b"[1]"), Err(WebhookError::NotObject));
        assert_eq!(
            KataloWebhook::parse(br#"{"event_type":"generation.failed"}"#),
            Err(WebhookError::MissingField("job_id"))
        );
        assert_eq!(
            KataloWebhook::parse(br#"{"job_id":"j","event_type":""}"#),
            Err(WebhookError::MissingField("event_type"))
        );
        assert_eq!(
            KataloWebhook::parse(br#"{"job_id":7,"event_type":"x"}"#),
            Err(WebhookError::MissingField("job_id"))
        );
    }
}
