use std::time::{Duration, SystemTime};

use proptest::prelude::*;
use reqwest::StatusCode;

use super::{body, cases, deeply_nested, json, text};
use crate::http::{ApiErrorBody, MAX_RETRY_AFTER, classify, parse_retry_after, retry_after_secs};

const NOW_SECS: u64 = 1_795_435_200;

fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(NOW_SECS)
}

proptest! {
    #![proptest_config(cases(256))]

    #[test]
    fn any_error_body_parses_or_not_and_waits_are_bounded(raw in body(), status in 400u16..600) {
        let parsed = ApiErrorBody::parse(&raw);
        prop_assert!(parsed.as_ref().and_then(|b| b.retry_after).is_none_or(|d| d <= MAX_RETRY_AFTER));
        let _ = classify(StatusCode::from_u16(status).unwrap(), parsed, None);
    }

    #[test]
    fn any_error_fields_are_bounded(inner in json(), retry_after in json()) {
        let mut inner = inner;
        if let Some(o) = inner.as_object_mut() {
            o.insert("retry_after".into(), retry_after);
        }
        let raw = serde_json::json!({ "error": inner }).to_string();
        if let Some(b) = ApiErrorBody::parse(raw.as_bytes()) {
            prop_assert!(b.retry_after.is_none_or(|d| d <= MAX_RETRY_AFTER));
            prop_assert!(b.code.chars().count() <= 129 && b.message.chars().count() <= 513);
        }
    }

    #[test]
    fn any_float_wait_is_bounded(secs in any::<f64>()) {
        match retry_after_secs(secs) {
            Some(d) => prop_assert!(secs >= 0.0 && d <= MAX_RETRY_AFTER),
            None => prop_assert!(!secs.is_finite() || secs < 0.0),
        }
    }

    #[test]
    fn any_retry_after_header_is_bounded(v in text()) {
        prop_assert!(parse_retry_after(&v, now()).is_none_or(|d| d <= MAX_RETRY_AFTER));
    }

    #[test]
    fn retry_after_seconds_round_trip(secs in any::<u64>()) {
        let want = Duration::from_secs(secs).min(MAX_RETRY_AFTER);
        prop_assert_eq!(parse_retry_after(&secs.to_string(), now()), Some(want));
    }

    #[test]
    fn retry_after_dates_round_trip(offset in -100_000_000i64..100_000_000) {
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(NOW_SECS.saturating_add_signed(offset));
        let want = Duration::from_secs(offset.max(0) as u64).min(MAX_RETRY_AFTER);
        prop_assert_eq!(parse_retry_after(&httpdate::fmt_http_date(at), now()), Some(want));
    }
}

#[test]
fn deep_error_bodies_are_refused() {
    for raw in deeply_nested(50_000) {
        assert_eq!(ApiErrorBody::parse(raw.as_bytes()), None);
    }
}
