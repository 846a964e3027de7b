//! Replicate's inbox message: `replicate.webhook`, a verified prediction webhook as the
//! receiver enqueued it.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::domain::dedupe::dedupe_key;
use crate::domain::inbox::to_json;

use super::PROVIDER;

/// Replicate's inbox messages, tagged by `type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum ReplicateMessage {
    /// A verified prediction webhook.
    #[serde(rename = "replicate.webhook")]
    Webhook(ReplicateWebhookMessage),
    /// A consumer's request for fresh URLs of a finished prediction (Replicate serves
    /// API predictions' files for an hour; after that the refresh is dead-lettered).
    #[serde(rename = "replicate.refresh")]
    Refresh(crate::domain::refresh::RefreshRequest),
}

/// A verified Replicate webhook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplicateWebhookMessage {
    /// `replicate#<prediction id>#<status>`: one delivery per status is kept.
    pub dedupe_key: String,
    /// The prediction id.
    pub prediction_id: String,
    /// The prediction's status in the webhook, lowercased.
    pub status: String,
    /// The delivery's `webhook-id` (the same on Replicate's retries).
    pub webhook_id: String,
    /// When the receiver accepted it (RFC 3339).
    pub received_at: String,
    /// The verified body (the prediction object).
    pub payload: Value,
}

impl ReplicateWebhookMessage {
    /// JSON text of the message (tagged `replicate.webhook`).
    pub fn to_json(&self) -> String {
        to_json(&ReplicateMessage::Webhook(self.clone()))
    }
}

/// The key a prediction's event is published under, whichever delivery brought it: one
/// event per prediction.
pub fn publish_key(prediction_id: &str) -> String {
    dedupe_key(PROVIDER, prediction_id, "prediction")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_keys() {
        let m = ReplicateWebhookMessage {
            dedupe_key: "replicate#p1#succeeded".into(),
            prediction_id: "p1".into(),
            status: "succeeded".into(),
            webhook_id: "msg_1".into(),
            received_at: "2026-11-23T12:00:00Z".into(),
            payload: serde_json::json!({"id": "p1"}),
        };
        let back: ReplicateMessage = serde_json::from_str(&m.to_json()).unwrap();
        assert_eq!(back, ReplicateMessage::Webhook(m));
        assert_eq!(publish_key("p1"), "replicate#p1#prediction");
    }
}
