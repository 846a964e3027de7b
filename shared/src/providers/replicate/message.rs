//! Replicate's inbox messages: `replicate.webhook` (a verified prediction webhook as the
//! receiver enqueued it), `replicate.watch` (a prediction polled until it ends) and
//! `replicate.refresh`.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::domain::dedupe::{body_sha256, dedupe_key};
use crate::domain::inbox::{bounded_polls, to_json};
use crate::ports::OutgoingMessage;

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
    /// A prediction polled until it ends: registered by `genhook watch --provider
    /// replicate`, or by the prediction's first delivery that was not final.
    #[serde(rename = "replicate.watch")]
    Watch(ReplicateWatchMessage),
    /// One page of a sweep of recent predictions ([`super::sweep`]).
    #[serde(rename = "replicate.sweep")]
    Sweep(super::sweep::ReplicateSweepMessage),
}

/// `replicate.watch`: polls prediction `prediction_id` until it ends or `horizon_at`
/// passes, and publishes it as its final webhook would have been, under the same key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplicateWatchMessage {
    /// [`publish_key`] of the prediction.
    pub dedupe_key: String,
    /// The prediction id.
    pub prediction_id: String,
    /// When it was registered (RFC 3339): the event's `received_at`.
    pub registered_at: String,
    /// Polling stops after this instant (epoch s).
    pub horizon_at: i64,
    /// Polls made so far (0 for the registration itself).
    #[serde(default, deserialize_with = "bounded_polls")]
    pub polls: u32,
}

impl ReplicateWatchMessage {
    /// The queue message for the registration (`delay` None) or a later poll.
    pub fn outgoing(&self, delay: Option<Duration>) -> OutgoingMessage {
        OutgoingMessage {
            body: to_json(&ReplicateMessage::Watch(self.clone())),
            attributes: vec![("provider".into(), PROVIDER.into()), ("message_type".into(), "replicate.watch".into())],
            group_id: Some(self.dedupe_key.clone()),
            dedup_id: Some(body_sha256(format!("{}#watch{}", self.dedupe_key, self.polls).as_bytes())),
            delay,
        }
    }
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
    /// Present when the body was too large to carry: `payload` holds the bounded hints
    /// only ([`crate::domain::inbox::Thin`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thin: Option<crate::domain::inbox::Thin>,
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
            thin: None,
        };
        let back: ReplicateMessage = serde_json::from_str(&m.to_json()).unwrap();
        assert_eq!(back, ReplicateMessage::Webhook(m));
        assert_eq!(publish_key("p1"), "replicate#p1#prediction");
    }
}
