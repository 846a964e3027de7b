//! Messages on the inbox queue, between the receiver and the worker.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One inbox message. Tagged by `type` so new kinds can be added without breaking
/// messages already in flight.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum InboxMessage {
    /// A verified Katalo webhook delivery.
    #[serde(rename = "katalo.webhook")]
    KataloWebhook(KataloWebhookMessage),
}

impl InboxMessage {
    /// The dedupe key the message belongs to.
    pub fn dedupe_key(&self) -> &str {
        match self {
            Self::KataloWebhook(m) => &m.dedupe_key,
        }
    }

    /// JSON text of the message.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("inbox messages always serialize")
    }
}

/// A verified Katalo webhook, as the receiver enqueued it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KataloWebhookMessage {
    /// `katalo#<job_id>#<event_type>`.
    pub dedupe_key: String,
    /// Katalo's job id.
    pub job_id: String,
    /// The webhook's `event_type`, as sent.
    pub event_type: String,
    /// When the receiver accepted the delivery (RFC 3339).
    pub received_at: String,
    /// The verified webhook body.
    pub payload: Value,
}
