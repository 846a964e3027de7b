//! APIMP's inbox messages: `apimp.callback` (an upstream's callback, a hint the worker
//! confirms with APIMP) and `apimp.watch` (a task's registration, and each scheduled poll).

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::domain::dedupe::dedupe_key;
use crate::domain::inbox::{bounded_polls, to_json};
use crate::domain::job::JobState;
use crate::domain::refresh::RefreshRequest;
use crate::domain::watch::Watch;
use crate::ports::OutgoingMessage;
use crate::providers::apimp::upstream::Upstream;

use super::PROVIDER;

/// APIMP's inbox messages, tagged by `type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum ApimpMessage {
    /// An APIMP upstream's callback (a hint: the worker confirms it with APIMP).
    #[serde(rename = "apimp.callback")]
    Callback(ApimpCallbackMessage),
    /// A registration of an APIMP task, and each scheduled poll of it.
    #[serde(rename = "apimp.watch")]
    Watch(ApimpWatchMessage),
    /// A consumer's request for fresh URLs of a finished task.
    #[serde(rename = "apimp.refresh")]
    Refresh(RefreshRequest),
}

impl ApimpMessage {
    /// JSON text of the message.
    pub fn to_json(&self) -> String {
        to_json(self)
    }
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
    /// Present when the body was too large to carry: `payload` holds the bounded hints
    /// only ([`crate::domain::inbox::Thin`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thin: Option<crate::domain::inbox::Thin>,
}

/// `apimp.watch`: registers `reference` → `task_id` and polls the task until it is
/// terminal or `horizon_at` passes. Send it with [`super::watch::watch`] or
/// `genhook watch`; the worker re-sends it, delayed, for each later poll.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApimpWatchMessage {
    /// `apimp#<task_id>#task`.
    pub dedupe_key: String,
    /// The registration; its upstream, when named, is one of [`Upstream::NAMES`] (read as
    /// strictly as the upstream of a callback).
    #[serde(deserialize_with = "registration")]
    pub watch: Watch,
    /// Polls made so far (0 for the registration itself), at most
    /// [`crate::domain::inbox::MAX_POLLS`].
    #[serde(default, deserialize_with = "bounded_polls")]
    pub polls: u32,
}

/// A watch whose upstream, if any, is one APIMP has.
fn registration<'de, D: Deserializer<'de>>(d: D) -> Result<Watch, D::Error> {
    let watch = Watch::deserialize(d)?;
    match watch.upstream.as_deref() {
        Some(u) if Upstream::parse(u).is_none() => Err(serde::de::Error::unknown_variant(u, &Upstream::NAMES)),
        _ => Ok(watch),
    }
}

/// The key every path that can publish a task's event works under (callbacks and polls
/// alike), so one task publishes once.
pub fn publish_key(task_id: &str) -> String {
    dedupe_key(PROVIDER, task_id, "task")
}

/// The queue message for a registration or a later poll (`delay`: when it is due).
pub fn watch_message(m: &ApimpWatchMessage, delay: Option<Duration>) -> OutgoingMessage {
    OutgoingMessage {
        body: ApimpMessage::Watch(m.clone()).to_json(),
        attributes: vec![("provider".into(), PROVIDER.into()), ("message_type".into(), "apimp.watch".into())],
        group_id: Some(m.dedupe_key.clone()),
        dedup_id: Some(format!("{}#poll{}", m.dedupe_key, m.polls)),
        delay,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::inbox::MAX_POLLS;

    fn watch(polls: &str) -> String {
        format!(
            r#"{{"type":"apimp.watch","dedupe_key":"apimp#t#task","polls":{polls},
            "watch":{{"reference":"r","task_id":"t","upstream":null,"registered_at":"x","horizon_at":9223372036854775807}}}}"#
        )
    }

    #[test]
    fn poll_counts_that_would_overflow_are_refused() {
        // Accepted before; the worker's `polls + 1` then overflowed.
        assert!(serde_json::from_str::<ApimpMessage>(&watch("4294967295")).is_err());
        assert!(serde_json::from_str::<ApimpMessage>(&watch(&(MAX_POLLS + 1).to_string())).is_err());
        assert!(serde_json::from_str::<ApimpMessage>(&watch("-1")).is_err());
        let m = serde_json::from_str::<ApimpMessage>(&watch(&MAX_POLLS.to_string())).unwrap();
        assert!(matches!(&m, ApimpMessage::Watch(w) if w.polls == MAX_POLLS));
        assert_eq!(serde_json::from_str::<ApimpMessage>(&m.to_json()).unwrap(), m);
    }

    #[test]
    fn a_watch_names_an_upstream_apimp_has_or_none() {
        let with = |upstream: &str| watch("0").replace(r#""upstream":null"#, &format!(r#""upstream":{upstream}"#));
        for known in Upstream::NAMES {
            let m = serde_json::from_str::<ApimpMessage>(&with(&format!("{known:?}"))).unwrap();
            assert!(matches!(&m, ApimpMessage::Watch(w) if w.watch.upstream.as_deref() == Some(known)));
        }
        for unknown in [r#""sora""#, r#""Kling""#, r#""""#, "7"] {
            assert!(serde_json::from_str::<ApimpMessage>(&with(unknown)).is_err(), "{unknown}");
        }
    }

    #[test]
    fn one_key_per_task() {
        assert_eq!(publish_key("task_01H"), "apimp#task_01H#task");
    }
}
