//! Reading a (verified) Replicate webhook body: the prediction object.

use serde_json::Value;

use crate::toolkit::webhook_body::WebhookError;
use crate::toolkit::webhook_body::{json_object, required_text};

use super::prediction::{normalize_status, state_of};

/// The longest prediction id accepted, in bytes (Replicate's are 26 characters).
pub const MAX_ID_BYTES: usize = 256;

/// The fields of a Replicate webhook genhook needs; everything else is carried in `body`.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplicateWebhook {
    /// The prediction id (`id`).
    pub prediction_id: String,
    /// The prediction's `status`, trimmed and lowercased (`starting`, `processing`,
    /// `succeeded`, `failed`, `canceled`, `aborted`, or a future word).
    pub status: String,
    /// The whole body.
    pub body: Value,
}

impl ReplicateWebhook {
    /// Parses a body whose signature was already verified. Extra fields are kept in
    /// `body` and otherwise ignored.
    pub fn parse(raw: &[u8]) -> Result<Self, WebhookError> {
        let body = json_object(raw)?;
        let prediction_id = required_text(&body, "id")?;
        if prediction_id.len() > MAX_ID_BYTES {
            return Err(WebhookError::TooLong("id"));
        }
        let prediction_id = prediction_id.to_string();
        let status = normalize_status(required_text(&body, "status")?);
        Ok(Self { prediction_id, status, body })
    }

    /// Whether the prediction has ended (`succeeded`, `failed`, `canceled`, `aborted`):
    /// Replicate's final delivery, the only one it retries. Earlier ones (`starting`,
    /// `processing`) only say that it is under way.
    pub fn is_terminal(&self) -> bool {
        state_of(&self.status).is_terminal()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_final_delivery() {
        let raw = br#"{"id":"ufawqhfynnddngldkgtslldrkq","version":"5c7d","status":"Succeeded ","input":{"text":"Alice"},
            "output":["https://replicate.delivery/pbxt/x/out-0.png"],"error":null,"logs":"","metrics":{"predict_time":1.5},
            "created_at":"2022-04-26T22:13:06.224088Z","data_removed":false,"something_new":{"a":1}}"#;
        let w = ReplicateWebhook::parse(raw).unwrap();
        assert_eq!((w.prediction_id.as_str(), w.status.as_str()), ("ufawqhfynnddngldkgtslldrkq", "succeeded"));
        assert!(w.is_terminal());
        assert_eq!(w.body["something_new"]["a"], 1);
    }

    #[test]
    fn intermediate_deliveries_are_not_terminal() {
        let w = ReplicateWebhook::parse(br#"{"id":"p1","status":"starting","output":null}"#).unwrap();
        assert!(!w.is_terminal());
        for status in ["failed", "canceled", "aborted"] {
            let raw = format!(r#"{{"id":"p1","status":"{status}"}}"#);
            assert!(ReplicateWebhook::parse(raw.as_bytes()).unwrap().is_terminal(), "{status}");
        }
    }

    #[test]
    fn rejects_bad_bodies() {
        assert!(matches!(ReplicateWebhook::parse(b"{nope"), Err(WebhookError::NotJson(_))));
        assert_eq!(ReplicateWebhook::parse(b"\"p1\""), Err(WebhookError::NotObject));
        assert_eq!(ReplicateWebhook::parse(br#"{"status":"succeeded"}"#), Err(WebhookError::MissingField("id")));
        assert_eq!(ReplicateWebhook::parse(br#"{"id":" ","status":"x"}"#), Err(WebhookError::MissingField("id")));
        assert_eq!(ReplicateWebhook::parse(br#"{"id":7,"status":"x"}"#), Err(WebhookError::MissingField("id")));
        assert_eq!(ReplicateWebhook::parse(br#"{"id":"p1"}"#), Err(WebhookError::MissingField("status")));
        assert_eq!(ReplicateWebhook::parse(br#"{"id":"p1","status":null}"#), Err(WebhookError::MissingField("status")));
        let long = format!(r#"{{"id":"{}","status":"succeeded"}}"#, "p".repeat(MAX_ID_BYTES + 1));
        assert_eq!(ReplicateWebhook::parse(long.as_bytes()), Err(WebhookError::TooLong("id")));
    }
}
