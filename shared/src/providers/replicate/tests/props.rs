use proptest::prelude::*;
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::domain::job::JobState;
use crate::domain::testing::{body, cases, deeply_nested, instants, json, text, writable};
use crate::providers::replicate::prediction::{MAX_OUTPUTS, parse_prediction, parse_prediction_bytes, state_of};
use crate::providers::replicate::webhook::ReplicateWebhook;

fn status() -> impl Strategy<Value = Value> {
    prop_oneof![
        prop::sample::select(vec![
            "starting",
            "processing",
            "succeeded",
            "failed",
            "canceled",
            "aborted",
            " SUCCEEDED "
        ])
        .prop_map(Value::from),
        text().prop_map(Value::String),
        json(),
    ]
}

/// A prediction shaped like Replicate's, with adversarial outputs and times.
fn prediction() -> impl Strategy<Value = Value> {
    let url = prop_oneof![
        Just("https://replicate.delivery/yhqm/x/out-0.png".to_string()),
        "https?://[a-z.]{1,12}/[a-z0-9/]{0,12}",
        text(),
    ];
    let output = prop_oneof![
        url.clone().prop_map(Value::String),
        prop::collection::vec(url.prop_map(Value::String), 0..150).prop_map(Value::Array),
        json(),
    ];
    let time = prop_oneof![text().prop_map(Value::String), json()];
    (status(), output, time.clone(), time, any::<bool>(), json()).prop_map(
        |(status, output, completed, created, removed, error)| {
            json!({"id": "p", "status": status, "output": output, "completed_at": completed,
                "created_at": created, "data_removed": removed, "error": error})
        },
    )
}

fn check(v: &Value, now: OffsetDateTime) -> Result<(), TestCaseError> {
    if let Ok(job) = parse_prediction(v, "p", now) {
        prop_assert_eq!(&job.state, &state_of(&job.status));
        prop_assert!(job.outputs.len() <= MAX_OUTPUTS);
        prop_assert!(job.state == JobState::Succeeded || job.outputs.is_empty());
        prop_assert_eq!(job.failure.is_some(), job.state.is_unsuccessful());
        for o in &job.outputs {
            prop_assert!(o.url.starts_with("http://") || o.url.starts_with("https://"), "{}", o.url);
            prop_assert!(o.expires_at.is_some());
            writable(o.expires_at.unwrap_or(OffsetDateTime::UNIX_EPOCH))?;
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(cases(256))]

    #[test]
    fn any_webhook_body_parses_or_is_refused(raw in prop_oneof![body(), prediction().prop_map(|v| v.to_string().into_bytes())]) {
        if let Ok(w) = ReplicateWebhook::parse(&raw) {
            prop_assert!(!w.prediction_id.is_empty() && !w.status.is_empty());
            prop_assert_eq!(w.status.trim(), w.status.as_str());
        }
    }

    #[test]
    fn any_prediction_is_read_with_bounded_outputs(v in prop_oneof![json(), prediction()], now in instants()) {
        check(&v, now)?;
        // The same as bytes, and bytes that are not JSON at all.
        let _ = parse_prediction_bytes(v.to_string().as_bytes(), "p", now);
    }

    #[test]
    fn any_bytes_are_read_or_refused(raw in body(), now in instants()) {
        let _ = parse_prediction_bytes(&raw, "p", now);
    }
}

#[test]
fn deep_bodies_are_refused() {
    for raw in deeply_nested(50_000) {
        assert!(ReplicateWebhook::parse(raw.as_bytes()).is_err());
        assert!(parse_prediction_bytes(raw.as_bytes(), "p", OffsetDateTime::UNIX_EPOCH).is_err());
    }
}

#[test]
fn deep_outputs_built_in_memory_are_walked_without_recursion() {
    let mut output = json!("https://a/deep.png");
    for _ in 0..100_000 {
        output = Value::Array(vec![output]);
    }
    // Built by hand: `json!` would serialize `output` recursively.
    let mut v = json!({"status": "succeeded"});
    if let Some(o) = v.as_object_mut() {
        o.insert("output".into(), output);
    }
    let job = parse_prediction(&v, "p", OffsetDateTime::UNIX_EPOCH).unwrap();
    // The walk stops after a bounded number of values: no stack overflow, no long work.
    assert!(job.outputs.len() <= 1);
    // Dropping a 100,000-deep value recurses in serde_json itself: leak it instead.
    std::mem::forget(v);
}
