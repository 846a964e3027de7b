//! Messages on the inbox queue, between the receiver and the worker.
//!
//! Every message is a JSON object tagged by `type` (`<provider>.<kind>`, e.g.
//! `katalo.webhook`, `apimp.watch`) and carrying its `dedupe_key`; the rest is the
//! provider's own (each provider defines its message types in its folder). The worker
//! reads the [`Envelope`] and hands the whole message to the provider named by the type.

use serde::{Deserialize, Deserializer, Serialize};

/// The part of every inbox message the worker reads itself.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Envelope {
    /// `<provider>.<kind>`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The dedupe key the message belongs to.
    pub dedupe_key: String,
}

impl Envelope {
    /// Reads the envelope of a message body.
    pub fn parse(body: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(body)
    }

    /// The provider the message is for: the type up to its first dot.
    pub fn provider(&self) -> &str {
        self.kind.split_once('.').map_or(self.kind.as_str(), |(p, _)| p)
    }
}

/// JSON text of a message, safe to put on SQS (see [`crate::domain::limits::sqs_safe_json`]).
pub fn to_json<T: Serialize>(message: &T) -> String {
    // Infallible for the plain structs of strings, numbers and `Value`s (string-keyed
    // maps) messages are made of.
    crate::domain::limits::sqs_safe_json(serde_json::to_string(message).expect("inbox messages always serialize"))
}

/// The most polls a message may carry. Even one second apart that is eleven days of
/// polling (at the worker's 15-minute cap, decades); a larger count is a forged or
/// corrupt message, refused as malformed so counting on from it cannot overflow.
pub const MAX_POLLS: u32 = 1_000_000;

/// Deserializes a poll count, refusing more than [`MAX_POLLS`]
/// (`#[serde(deserialize_with = "bounded_polls")]`).
pub fn bounded_polls<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    let polls = u32::deserialize(d)?;
    if polls > MAX_POLLS {
        return Err(serde::de::Error::custom(format_args!("polls must be at most {MAX_POLLS}")));
    }
    Ok(polls)
}

/// Whether a poll count is zero (`skip_serializing_if`).
pub fn is_zero(n: &u32) -> bool {
    *n == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_name_the_provider() {
        let e = Envelope::parse(r#"{"type":"apimp.watch","dedupe_key":"k","watch":{}}"#).unwrap();
        assert_eq!((e.provider(), e.dedupe_key.as_str()), ("apimp", "k"));
        assert_eq!(Envelope::parse(r#"{"type":"solo","dedupe_key":"k"}"#).unwrap().provider(), "solo");
    }

    #[test]
    fn deep_or_odd_messages_are_errors() {
        let deep = format!(
            r#"{{"type":"katalo.webhook","dedupe_key":"k","payload":{}{}}}"#,
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        // The envelope skips the payload without recursing (the provider's typed parse
        // then refuses it); either way nothing overflows the stack.
        assert_eq!(Envelope::parse(&deep).map(|e| e.dedupe_key).ok().as_deref(), Some("k"));
        for odd in
            ["", "null", "{}", r#"{"type":"nope"}"#, r#"{"dedupe_key":"k"}"#, r#"{"type":1,"dedupe_key":"k"}"#, "\u{0}"]
        {
            assert!(Envelope::parse(odd).is_err(), "{odd}");
        }
    }
}
