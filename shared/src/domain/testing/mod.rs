//! Test support shared by the crate's unit and property tests: strategies for what a
//! hostile provider, request or queue message might carry (the properties live beside
//! what they test: whatever the input, parsing returns, an error at worst, and never
//! panics; case counts are kept small so `cargo test` stays fast, and the fuzz targets in
//! `fuzz/` go further), and [`schema`], the published event schema's check.

pub mod metrics;
pub mod schema;

use proptest::prelude::*;
use serde_json::Value;

/// The configuration every property here runs with.
pub fn cases(n: u32) -> ProptestConfig {
    ProptestConfig { cases: n, failure_persistence: None, ..ProptestConfig::default() }
}

/// Numbers a hostile provider might send.
pub fn number() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("JSON numbers are finite", |f| serde_json::Number::from_f64(f).map(Value::Number)),
        prop::sample::select(vec![
            Value::from(i64::MAX),
            Value::from(i64::MIN),
            Value::from(u64::MAX),
            Value::from(1e30),
            Value::from(-1e30),
            Value::from(f64::MAX),
            Value::from(-f64::MAX),
            Value::from(5e-324),
            Value::from(-0.0),
        ]),
    ]
}

/// Text a hostile provider might put where a number, a date or a URL goes.
pub fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "NaN",
            "inf",
            "-inf",
            "1e400",
            "-0",
            "",
            " ",
            "99999999999999999999999999999",
            "-99999999999999999999999999999",
            "9223372036854775807",
            "-9223372036854775808",
            "9999-12-31T23:59:59-23:59",
            "0000-01-01T00:00:00+23:59",
            "2026-11-23T12:00:00.123456789Z",
            "Fri, 31 Dec 9999 23:59:59 GMT",
            "Thu, 01 Jan 1970 00:00:00 GMT",
            "https://b.s3.amazonaws.com/o.png?X-Amz-Date=20261123T120000Z&X-Amz-Expires=99999999999999999999",
            "https://c/o.png?Expires=-99999999999999&se=9999-12-31T23%3A59%3A59-23%3A59",
        ])
        .prop_map(str::to_string),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|f| f.to_string()),
        "[0-9+\\-eE.:TZ ]{0,24}",
        any::<String>(),
    ]
}

/// Clock readings a parser may be handed: an ordinary one, genhook's extremes and
/// `time`'s (which RFC 3339 cannot write).
pub fn instants() -> impl Strategy<Value = time::OffsetDateTime> {
    prop::sample::select(vec![
        time::macros::datetime!(2026-11-23 12:00:00 UTC),
        crate::domain::clock::MIN_INSTANT,
        crate::domain::clock::MAX_INSTANT,
        time::PrimitiveDateTime::MIN.assume_utc(),
        time::PrimitiveDateTime::MAX.assume_utc(),
    ])
}

/// Fails unless `t` is an instant genhook can write: within `MIN_INSTANT..=MAX_INSTANT`,
/// and formatted without panicking.
pub fn writable(t: time::OffsetDateTime) -> Result<(), TestCaseError> {
    prop_assert!((crate::domain::clock::MIN_INSTANT..=crate::domain::clock::MAX_INSTANT).contains(&t), "{t}");
    let _ = crate::domain::clock::rfc3339(t);
    Ok(())
}

/// Keys the parsers look for, and some they do not.
pub fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(vec![
            "status", "outputs", "url", "signed_url", "expires_at", "expires_in", "data", "job", "primary", "job_id",
            "id", "task_id", "task_status", "state", "files", "file_url", "download_url", "progress",
            "error_message", "error", "code", "type", "message", "retryable", "retry_after", "challenge",
            "event_type", "failure", "reference", "metadata", "source_asset_id",
        ])
        .prop_map(str::to_string),
        1 => "[a-z_]{1,10}",
    ]
}

/// Arbitrary JSON: adversarial leaves under a few levels of arrays and objects.
pub fn json() -> impl Strategy<Value = Value> {
    let leaf =
        prop_oneof![Just(Value::Null), any::<bool>().prop_map(Value::Bool), number(), text().prop_map(Value::String)];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..6).prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// Bytes that are often JSON-ish: JSON text, JSON text cut short, or raw bytes.
pub fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        json().prop_map(|v| v.to_string().into_bytes()),
        (json(), any::<prop::sample::Index>()).prop_map(|(v, i)| {
            let s = v.to_string().into_bytes();
            let cut = i.index(s.len() + 1);
            s[..cut].to_vec()
        }),
        prop::collection::vec(any::<u8>(), 0..256),
    ]
}

/// JSON nested far deeper than any parser's recursion limit.
pub fn deeply_nested(depth: usize) -> Vec<String> {
    vec![
        format!("{}{}", "[".repeat(depth), "]".repeat(depth)),
        format!("{}1{}", r#"{"a":"#.repeat(depth), "}".repeat(depth)),
        "[".repeat(depth),
        format!(r#"{{"error":{}}}"#, "[".repeat(depth)),
    ]
}
