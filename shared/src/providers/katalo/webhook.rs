//! Parsing a (verified) Katalo webhook body.

use std::borrow::Cow;

use crate::toolkit::webhook_body::WebhookError;
use crate::toolkit::webhook_body::text_fields;

/// The fields of a Katalo webhook genhook needs, borrowed from its body; the body itself
/// is carried as sent.
#[derive(Debug, Clone, PartialEq)]
pub struct KataloWebhook<'a> {
    /// Katalo's job id.
    pub job_id: Cow<'a, str>,
    /// `generation.completed`, `generation.failed`, or any future type (forwarded too).
    pub event_type: Cow<'a, str>,
    /// The whole body, as sent (valid JSON text).
    pub text: &'a str,
}

impl<'a> KataloWebhook<'a> {
    /// Parses a body whose signature was already verified.
    pub fn parse(raw: &'a [u8]) -> Result<Self, WebhookError> {
        let (text, [job_id, event_type]) = text_fields(raw, ["job_id", "event_type"])?;
        Ok(Self { job_id, event_type, text })
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
        assert_eq!(w.text.as_bytes(), raw);
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
        // What the worker's DOM parse of the inbox message would refuse is refused here,
        // in fields genhook does not read too.
        for odd in
            [r#""x":1e400"#, r#""x":[-1e400]"#, r#""x":"\ud800""#, r#""x":{"y":"\udc00\ud800"}"#, r#""\ud800":1"#]
        {
            let raw = format!(r#"{{"job_id":"j","event_type":"e",{odd}}}"#);
            assert!(matches!(KataloWebhook::parse(raw.as_bytes()), Err(WebhookError::NotJson(_))), "{raw}");
        }
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
