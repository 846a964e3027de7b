use proptest::prelude::*;
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::domain::testing::{body, cases, deeply_nested, instants, json, number, text, writable};
use crate::providers::katalo::job::parse_job;
use crate::providers::katalo::message::{KataloMessage, KataloWebhookMessage};
use crate::providers::katalo::webhook::KataloWebhook;
use crate::toolkit::webhook_body::WebhookError;
use crate::toolkit::webhook_body::{json_object, required_text};

/// Webhook-shaped bodies: the two fields as strings (with escapes, padding, non-ASCII),
/// numbers, objects or absent, repeated, among arbitrary other fields, and spaced out.
fn webhook_body() -> impl Strategy<Value = Vec<u8>> {
    let field = prop_oneof![
        3 => prop_oneof![text(), "[ a-z\\\\\"\u{0}-\u{1f}\u{e9}\u{fffe}\u{1F600}]{0,12}"]
            .prop_map(|s| Value::String(s).to_string()),
        1 => json().prop_map(|v| v.to_string()),
        // Text a DOM parse refuses or reads oddly, which a skipping parser might let by.
        1 => prop::sample::select(vec![
            "1e400", "-1e400", "1.5e-400", "123456789012345678901234567890", "-0", r#""\ud800""#,
            r#""\udc00\ud800""#, r#""\ud83d\ude00""#, "[1e400]", r#"{"a":"\ud800"}"#, r#"" \u00e9 ""#,
        ])
        .prop_map(str::to_string),
    ];
    let pair = (prop::sample::select(vec!["job_id", "event_type", "job_id", "event_type", "other"]), field);
    (prop::collection::vec(pair, 0..6), json(), any::<bool>()).prop_map(|(pairs, extra, spaced)| {
        let mut parts: Vec<String> = pairs.iter().map(|(k, v)| format!("{}:{v}", Value::from(*k))).collect();
        parts.push(format!(r#""extra":{extra}"#));
        let sep = if spaced { " , " } else { "," };
        let text = format!("{{{}}}", parts.join(sep));
        if spaced { text.replace(':', " : ").into_bytes() } else { text.into_bytes() }
    })
}

/// What the receiver read of a body before it stopped building a DOM: the reference.
fn by_value(raw: &[u8]) -> Result<(String, String), std::mem::Discriminant<WebhookError>> {
    let v = json_object(raw).map_err(|e| std::mem::discriminant(&e))?;
    let job_id = required_text(&v, "job_id").map_err(|e| std::mem::discriminant(&e))?;
    let event_type = required_text(&v, "event_type").map_err(|e| std::mem::discriminant(&e))?;
    Ok((job_id.to_string(), event_type.to_string()))
}

fn expiry() -> impl Strategy<Value = Value> {
    prop_oneof![number(), text().prop_map(Value::String), json()]
}

/// A job shaped like Katalo's, with adversarial expiries.
fn job() -> impl Strategy<Value = Value> {
    let output = prop_oneof![
        text().prop_map(Value::String),
        (text(), expiry(), expiry())
            .prop_map(|(url, at, within)| json!({"url": url, "expires_at": at, "expires_in": within})),
        (text(), expiry()).prop_map(|(url, within)| json!({"signed_url": url, "expires_in": within})),
        json(),
    ];
    (text(), prop::collection::vec(output, 0..4), any::<bool>(), prop::sample::select(vec!["", "data", "job"]))
        .prop_map(|(status, outputs, as_object, wrap)| {
            let outputs = if as_object {
                Value::Object(
                    outputs
                        .into_iter()
                        .enumerate()
                        .map(|(i, o)| (if i == 0 { "primary".into() } else { format!("alt{i}") }, o))
                        .collect(),
                )
            } else {
                Value::Array(outputs)
            };
            let job = json!({"status": status, "outputs": outputs});
            if wrap.is_empty() { job } else { json!({ wrap: job }) }
        })
}

fn check(v: &Value, now: OffsetDateTime) -> Result<(), TestCaseError> {
    if let Ok(job) = parse_job(v, "j", now) {
        for o in &job.outputs {
            if let Some(t) = o.expires_at {
                writable(t)?;
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(cases(256))]

    #[test]
    fn any_webhook_body_parses_or_is_refused(raw in body()) {
        match KataloWebhook::parse(&raw) {
            Ok(w) => prop_assert!(!w.job_id.is_empty() && !w.event_type.is_empty()),
            Err(WebhookError::NotUtf8(_) | WebhookError::NotJson(_) | WebhookError::NotObject | WebhookError::MissingField(_) | WebhookError::TooLong(_)) => {}
        }
    }

    #[test]
    fn the_borrowing_parse_reads_what_a_dom_would(raw in prop_oneof![webhook_body(), body()]) {
        let ours = KataloWebhook::parse(&raw)
            .map(|w| (w.job_id.into_owned(), w.event_type.into_owned()))
            .map_err(|e| std::mem::discriminant(&e));
        prop_assert_eq!(ours, by_value(&raw), "{}", String::from_utf8_lossy(&raw));
    }

    #[test]
    fn the_inbox_message_carries_the_body_as_sent(raw in webhook_body()) {
        let Ok(w) = KataloWebhook::parse(&raw) else { return Ok(()) };
        let json = KataloWebhookMessage::received_json("katalo#k#e", &w.job_id, &w.event_type, "2026-11-24T00:00:00Z", w.text)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!(crate::domain::limits::is_sqs_text(&json));
        let Ok(KataloMessage::Webhook(m)) = serde_json::from_str::<KataloMessage>(&json) else {
            return Err(TestCaseError::fail(format!("not a katalo.webhook message: {json}")));
        };
        prop_assert_eq!((m.job_id.as_str(), m.event_type.as_str()), (&*w.job_id, &*w.event_type));
        prop_assert_eq!(m.payload, serde_json::from_slice::<Value>(&raw).unwrap_or_default());
        // Byte for byte, unless it holds characters SQS refuses (escaped, same value).
        if crate::domain::limits::is_sqs_text(w.text) {
            let tail = format!(r#","payload":{}}}"#, w.text);
            prop_assert!(json.ends_with(&tail));
        }
    }

    #[test]
    fn any_job_json_is_read_with_bounded_expiries(v in json(), now in instants()) {
        check(&v, now)?;
    }

    #[test]
    fn job_shaped_json_is_read_with_bounded_expiries(v in job(), now in instants()) {
        check(&v, now)?;
    }
}

#[test]
fn deep_webhooks_are_refused() {
    for raw in deeply_nested(50_000) {
        assert!(KataloWebhook::parse(raw.as_bytes()).is_err());
    }
}
