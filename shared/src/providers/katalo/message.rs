//! Katalo's inbox messages: `katalo.webhook`, a verified webhook as the receiver enqueued
//! it, and each scheduled poll of its job (the same message with its poll number);
//! `katalo.watch`, a job registered right after it was created (the safety net for a
//! webhook that never comes), and each poll of it.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::domain::dedupe::{body_sha256, dedupe_key};
use crate::domain::inbox::{bounded_polls, is_zero, to_json};
use crate::domain::refresh::RefreshRequest;
use crate::ports::OutgoingMessage;

use super::PROVIDER;

/// Katalo's inbox messages, tagged by `type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum KataloMessage {
    /// A verified Katalo webhook delivery (or a poll of its job).
    #[serde(rename = "katalo.webhook")]
    Webhook(KataloWebhookMessage),
    /// A registered job (or a poll of it).
    #[serde(rename = "katalo.watch")]
    Watch(KataloWatchMessage),
    /// A consumer's request for fresh URLs of a finished job.
    #[serde(rename = "katalo.refresh")]
    Refresh(RefreshRequest),
}

impl KataloMessage {
    /// JSON text of the message.
    pub fn to_json(&self) -> String {
        to_json(self)
    }
}

/// The key every path that can publish a job's terminal event works under (its
/// `generation.completed|failed` webhooks and its watch's polls alike), so one job
/// publishes once.
pub fn publish_key(job_id: &str) -> String {
    dedupe_key(PROVIDER, job_id, "job")
}

/// `katalo.watch`: polls job `job_id` until it is terminal or `horizon_at` passes and
/// publishes it as its webhook would have been. Send it with [`super::watch::watch`] or
/// `genhook watch --provider katalo`; the worker re-sends it, delayed, for each poll.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KataloWatchMessage {
    /// [`publish_key`] of the job.
    pub dedupe_key: String,
    /// Katalo's job id.
    pub job_id: String,
    /// When the job was registered (RFC 3339): the event's `received_at`.
    pub registered_at: String,
    /// Polling stops after this instant (epoch s).
    pub horizon_at: i64,
    /// Polls made so far (0 for the registration itself).
    #[serde(default, deserialize_with = "bounded_polls")]
    pub polls: u32,
}

impl KataloWatchMessage {
    /// The queue message for the registration (`delay` None) or a later poll.
    pub fn outgoing(&self, delay: Option<Duration>) -> OutgoingMessage {
        OutgoingMessage {
            body: KataloMessage::Watch(self.clone()).to_json(),
            attributes: vec![("provider".into(), PROVIDER.into()), ("message_type".into(), "katalo.watch".into())],
            group_id: Some(self.dedupe_key.clone()),
            dedup_id: Some(body_sha256(format!("{}#watch{}", self.dedupe_key, self.polls).as_bytes())),
            delay,
        }
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
    /// Present when the body was too large to carry: `payload` holds the bounded hints
    /// only ([`crate::domain::inbox::Thin`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thin: Option<crate::domain::inbox::Thin>,
    /// Polls made so far while the job was still running (0 as the receiver sends it):
    /// the worker re-sends the message, delayed, for each later poll.
    #[serde(default, skip_serializing_if = "is_zero", deserialize_with = "bounded_polls")]
    pub polls: u32,
    /// Polling stops after this instant (epoch s); set by the first reschedule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub horizon_at: Option<i64>,
}

impl KataloWebhookMessage {
    /// The JSON text of a webhook the receiver accepted, the same message as a
    /// `KataloWebhookMessage` with no polls, written without parsing the body into a
    /// value: `body`, the verified webhook's JSON text, goes in as `payload` byte for byte
    /// (only characters SQS refuses are escaped, [`crate::domain::limits::sqs_safe_json`]).
    /// Writing strings into memory does not fail; the error is serde_json's, should it.
    pub fn received_json(
        dedupe_key: &str,
        job_id: &str,
        event_type: &str,
        received_at: &str,
        body: &str,
    ) -> Result<String, serde_json::Error> {
        let fields = [
            (r#"{"type":"katalo.webhook","dedupe_key":"#, dedupe_key),
            (r#","job_id":"#, job_id),
            (r#","event_type":"#, event_type),
            (r#","received_at":"#, received_at),
        ];
        let values: usize = fields.iter().map(|(name, value)| name.len() + value.len() + 2).sum();
        let mut head = Vec::with_capacity(values + 16 + body.len());
        for (name, value) in fields {
            head.extend_from_slice(name.as_bytes());
            serde_json::to_writer(&mut head, value)?;
        }
        // Only the head is checked for UTF-8 (serde_json writes it); the body is a `str`.
        let mut json = String::from_utf8(head).map_err(serde::ser::Error::custom)?;
        json.push_str(r#","payload":"#);
        json.push_str(body);
        json.push('}');
        Ok(crate::domain::limits::sqs_safe_json(json))
    }

    /// JSON text of the message (tagged `katalo.webhook`).
    pub fn to_json(&self) -> String {
        KataloMessage::Webhook(self.clone()).to_json()
    }

    /// A scheduled poll of the job: this message, due after `delay`.
    pub fn poll_message(&self, delay: Duration) -> OutgoingMessage {
        OutgoingMessage {
            body: self.to_json(),
            attributes: vec![("provider".into(), PROVIDER.into()), ("message_type".into(), "katalo.poll".into())],
            group_id: Some(self.dedupe_key.clone()),
            dedup_id: Some(body_sha256(format!("{}#poll{}", self.dedupe_key, self.polls).as_bytes())),
            delay: Some(delay),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::inbox::MAX_POLLS;

    fn message(polls: &str) -> String {
        format!(
            r#"{{"type":"katalo.webhook","dedupe_key":"katalo#j#e","job_id":"j","event_type":"e","received_at":"r","payload":{{}},"polls":{polls}}}"#
        )
    }

    #[test]
    fn poll_counts_that_would_overflow_are_refused() {
        assert!(serde_json::from_str::<KataloMessage>(&message("4294967295")).is_err());
        assert!(serde_json::from_str::<KataloMessage>(&message(&(MAX_POLLS + 1).to_string())).is_err());
        assert!(serde_json::from_str::<KataloMessage>(&message("-1")).is_err());
        let Ok(KataloMessage::Webhook(m)) = serde_json::from_str::<KataloMessage>(&message(&MAX_POLLS.to_string()))
        else {
            panic!("a webhook message")
        };
        assert_eq!(m.polls, MAX_POLLS);
        assert_eq!(serde_json::from_str::<KataloMessage>(&m.to_json()).unwrap(), KataloMessage::Webhook(m));
    }
}
