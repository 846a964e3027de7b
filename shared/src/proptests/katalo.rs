use proptest::prelude::*;
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::{body, cases, deeply_nested, instants, json, number, text, writable};
use crate::providers::katalo::job::parse_job;
use crate::providers::katalo::webhook::{KataloWebhook, WebhookError};

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
