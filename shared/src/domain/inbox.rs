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

/// What a thin inbox message carries instead of its delivery's body: a delivery whose
/// message would be larger than the receiver's threshold (`GENHOOK_THIN_OVER_BYTES`) is
/// queued with its ids, status and a few bounded hints, and the worker reads the job from
/// the provider's API as it does for every delivery. The dedupe record and the event never
/// depend on the body being carried.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Thin {
    /// The body's size in bytes.
    pub body_bytes: u64,
    /// The body's SHA-256, hex.
    pub body_sha256: String,
    /// The hint fields the body had that did not fit [`MAX_HINT_BYTES`] (left out).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub left_out: Vec<String>,
}

/// The most bytes of hints (their JSON text, together) a thin message carries.
pub const MAX_HINT_BYTES: usize = 64 * 1024;

/// The thin form of `message`, an inbox message whose `payload` is the delivery's body:
/// the same message with `payload` cut down to the top-level fields named in `hints`
/// (in that order, while they fit [`MAX_HINT_BYTES`]) and `thin` describing `body`.
/// Nothing but the message is parsed, and the payload's values are not built.
pub fn thin_message(message: &str, hints: &[&str], body: &[u8]) -> Result<String, serde_json::Error> {
    use serde_json::value::RawValue;
    use std::collections::BTreeMap;

    let mut fields: BTreeMap<String, &RawValue> = serde_json::from_str(message)?;
    let payload: BTreeMap<String, &RawValue> = match fields.get("payload") {
        Some(raw) => serde_json::from_str(raw.get()).unwrap_or_default(),
        None => BTreeMap::new(),
    };
    let mut kept = BTreeMap::new();
    let mut left_out = Vec::new();
    let mut room = MAX_HINT_BYTES;
    for name in hints {
        let Some(value) = payload.get(*name).filter(|v| v.get() != "null") else { continue };
        match room.checked_sub(value.get().len()) {
            Some(left) => {
                room = left;
                kept.insert(*name, *value);
            }
            None => left_out.push((*name).to_string()),
        }
    }
    let thin = Thin {
        body_bytes: u64::try_from(body.len()).unwrap_or(u64::MAX),
        body_sha256: crate::domain::dedupe::body_sha256(body),
        left_out,
    };
    let payload = serde_json::value::to_raw_value(&kept)?;
    let thin = serde_json::value::to_raw_value(&thin)?;
    fields.insert("payload".into(), &payload);
    fields.insert("thin".into(), &thin);
    Ok(crate::domain::limits::sqs_safe_json(serde_json::to_string(&fields)?))
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
    fn thin_messages_keep_the_ids_and_the_hints_that_fit() {
        let big = "x".repeat(MAX_HINT_BYTES);
        let body = format!(
            r#"{{"job_id":"j","reference":"r1","metadata":{{"blob":"{big}"}},"failure":null,"input":"{big}"}}"#
        );
        let message = format!(
            r#"{{"type":"katalo.webhook","dedupe_key":"katalo#j#e","job_id":"j","received_at":"t","payload":{body}}}"#
        );
        let thin = thin_message(&message, &["failure", "reference", "metadata", "absent"], body.as_bytes()).unwrap();
        let v: serde_json::Value = serde_json::from_str(&thin).unwrap();
        assert_eq!(Envelope::parse(&thin).unwrap().dedupe_key, "katalo#j#e");
        assert_eq!((v["job_id"].as_str(), v["received_at"].as_str()), (Some("j"), Some("t")));
        // The reference fits; the metadata does not; a null hint is no hint.
        assert_eq!(v["payload"], serde_json::json!({"reference": "r1"}));
        let t: Thin = serde_json::from_value(v["thin"].clone()).unwrap();
        assert_eq!(t.body_bytes, body.len() as u64);
        assert_eq!(t.body_sha256, crate::domain::dedupe::body_sha256(body.as_bytes()));
        assert_eq!(t.left_out, ["metadata"]);
        assert!(thin.len() < 1024, "{}", thin.len());
        assert!(thin_message("[1]", &[], b"").is_err());
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
