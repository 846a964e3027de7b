//! Messages on the inbox queue, between the receiver and the worker.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::domain::watch::Watch;
use crate::domain::upstream::Upstream;
use crate::domain::job::JobState;

/// One inbox message. Tagged by `type` so new kinds can be added without breaking
/// messages already in flight.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum InboxMessage {
    /// A verified Katalo webhook delivery.
    #[serde(rename = "katalo.webhook")]
    KataloWebhook(KataloWebhookMessage),
    /// An APIMP upstream's callback (a hint: the worker confirms it with APIMP).
    #[serde(rename = "apimp.callback")]
    ApimpCallback(ApimpCallbackMessage),
    /// A registration of an APIMP task, and each scheduled poll of it.
    #[serde(rename = "apimp.watch")]
    ApimpWatch(ApimpWatchMessage),
}

impl InboxMessage {
    /// The dedupe key the message belongs to.
    pub fn dedupe_key(&self) -> &str {
        match self {
            Self::KataloWebhook(m) => &m.dedupe_key,
            Self::ApimpCallback(m) => &m.dedupe_key,
            Self::ApimpWatch(m) => &m.dedupe_key,
        }
    }

    /// JSON text of the message.
    pub fn to_json(&self) -> String {
        // Infallible: plain structs of strings, numbers and `Value`s (string-keyed maps).
        crate::domain::carry::sqs_safe_json(serde_json::to_string(self).expect("inbox messages always serialize"))
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
    /// Polls made so far while the job was still running (0 as the receiver sends it):
    /// the worker re-sends the message, delayed, for each later poll.
    #[serde(default, skip_serializing_if = "is_zero", deserialize_with = "bounded_polls")]
    pub polls: u32,
    /// Polling stops after this instant (epoch s); set by the first reschedule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub horizon_at: Option<i64>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// An APIMP upstream's callback, as the receiver enqueued it after checking the
/// callback URL's token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApimpCallbackMessage {
    /// `apimp#<upstream>:<upstream task id>#<status>`.
    pub dedupe_key: String,
    /// Which upstream called.
    pub upstream: Upstream,
    /// The reference from the callback URL.
    pub reference: String,
    /// The upstream's own task id.
    pub upstream_task_id: String,
    /// The status word, lowercased.
    pub status: String,
    /// What the status means.
    pub state: JobState,
    /// When the receiver accepted it (RFC 3339).
    pub received_at: String,
    /// The callback body.
    pub payload: Value,
}

/// `apimp.watch`: registers `reference` → `task_id` and polls the task until it is
/// terminal or `horizon_at` passes. Send it with [`crate::providers::apimp::watch`] or
/// `genhook watch`; the worker re-sends it, delayed, for each later poll.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApimpWatchMessage {
    /// `apimp#<task_id>#task`.
    pub dedupe_key: String,
    /// The registration.
    pub watch: Watch,
    /// Polls made so far (0 for the registration itself), at most [`MAX_POLLS`].
    #[serde(default, deserialize_with = "bounded_polls")]
    pub polls: u32,
}

/// The most polls a watch message may carry. Even one second apart that is eleven days
/// of polling (at the worker's 15-minute cap, decades); a larger count is a forged or
/// corrupt message, refused as malformed so counting on from it cannot overflow.
pub const MAX_POLLS: u32 = 1_000_000;

fn bounded_polls<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    let polls = u32::deserialize(d)?;
    if polls > MAX_POLLS {
        return Err(serde::de::Error::custom(format_args!("polls must be at most {MAX_POLLS}")));
    }
    Ok(polls)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn watch(polls: &str) -> String {
        format!(
            r#"{{"type":"apimp.watch","dedupe_key":"apimp#t#task","polls":{polls},
            "watch":{{"reference":"r","task_id":"t","upstream":null,"registered_at":"x","horizon_at":9223372036854775807}}}}"#
        )
    }

    #[test]
    fn poll_counts_that_would_overflow_are_refused() {
        // Accepted before; the worker's `polls + 1` then overflowed.
        assert!(serde_json::from_str::<InboxMessage>(&watch("4294967295")).is_err());
        assert!(serde_json::from_str::<InboxMessage>(&watch(&(MAX_POLLS + 1).to_string())).is_err());
        assert!(serde_json::from_str::<InboxMessage>(&watch("-1")).is_err());
        let m = serde_json::from_str::<InboxMessage>(&watch(&MAX_POLLS.to_string())).unwrap();
        assert!(matches!(&m, InboxMessage::ApimpWatch(w) if w.polls == MAX_POLLS));
        assert_eq!(serde_json::from_str::<InboxMessage>(&m.to_json()).unwrap(), m);
    }

    #[test]
    fn deep_or_odd_messages_are_errors() {
        let deep = format!(
            r#"{{"type":"katalo.webhook","dedupe_key":"k","job_id":"j","event_type":"e","received_at":"r","payload":{}{}}}"#,
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        assert!(serde_json::from_str::<InboxMessage>(&deep).is_err());
        for odd in ["", "null", "{}", r#"{"type":"nope"}"#, r#"{"type":"apimp.watch"}"#, "\u{0}"] {
            assert!(serde_json::from_str::<InboxMessage>(odd).is_err(), "{odd}");
        }
    }
}
