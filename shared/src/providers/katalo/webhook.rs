//! Parsing a (verified) Katalo webhook body.

use serde_json::Value;

pub use crate::webhook_body::WebhookError;
use crate::webhook_body::{json_object, required_text};

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
        let body = json_object(raw)?;
        let job_id = required_text(&body, "job_id")?.to_string();
        let event_type = required_text(&body, "event_type")?.to_string();
        Ok(Self { job_id, event_type, body })
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
        // Valid JSON but for one byte that is not UTF-8, inside a string.
        assert_eq!(
            KataloWebhook::parse(b"{\"job_id\":\"j\",\"event_type\":\"x\",\"ref\":\"\xff\"}"),
            Err(WebhookError::NotUtf8(38))
        );
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
