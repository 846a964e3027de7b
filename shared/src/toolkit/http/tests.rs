use super::*;

#[test]
fn api_bases_take_paths() {
    for bad in ["mailto:a@b.example", "ftp://x.example", "data:text/plain,x", "/relative"] {
        assert!(api_base(bad).is_err(), "{bad}");
    }
    let base = api_base("https://api.example.com/v/").unwrap();
    assert_eq!(api_url(&base, &["a", "b c/d"]).unwrap().as_str(), "https://api.example.com/v/a/b%20c%2Fd");
    let opaque = url::Url::parse("mailto:a@b.example").unwrap();
    assert_eq!(api_url(&opaque, &["a"]), None, "no panic on a base that cannot take a path");
}

#[test]
fn error_bodies() {
    let b = ApiErrorBody::parse(
        br#"{"error":{"code":"rate_limited","message":"slow down","retryable":true,"retry_after":2}}"#,
    )
    .unwrap();
    assert_eq!(b.code, "rate_limited");
    assert!(b.retryable);
    assert_eq!(b.retry_after, Some(Duration::from_secs(2)));
    let b = ApiErrorBody::parse(br#"{"error":{"code":404}}"#).unwrap();
    assert_eq!(b.code, "404");
    assert!(!b.retryable);
    assert_eq!(ApiErrorBody::parse(b"<html>"), None);
}

#[test]
fn huge_retry_after_is_clamped() {
    // Panicked before (`Duration::from_secs_f64(1e30)`).
    let b = ApiErrorBody::parse(br#"{"error":{"code":"rate_limited","retry_after":1e30}}"#).unwrap();
    assert_eq!(b.retry_after, Some(MAX_RETRY_AFTER));
    let b = ApiErrorBody::parse(br#"{"error":{"retry_after":1.7976931348623157e308}}"#).unwrap();
    assert_eq!(b.retry_after, Some(MAX_RETRY_AFTER));
    let b = ApiErrorBody::parse(br#"{"error":{"retry_after":"1.5"}}"#).unwrap();
    assert_eq!(b.retry_after, Some(Duration::from_millis(1500)));
    for odd in [r#"-1"#, r#""NaN""#, r#""inf""#, r#""-inf""#, r#"null"#, r#"[1]"#, r#""soon""#] {
        let body = format!(r#"{{"error":{{"code":"c","retry_after":{odd}}}}}"#);
        assert_eq!(ApiErrorBody::parse(body.as_bytes()).unwrap().retry_after, None, "{odd}");
    }
}

#[test]
fn odd_fields_do_not_lose_the_body() {
    let b = ApiErrorBody::parse(br#"{"error":{"type":"quota","message":7,"retryable":"yes"}}"#).unwrap();
    assert_eq!((b.code.as_str(), b.message.as_str(), b.retryable), ("quota", "", false));
    let long = format!(r#"{{"error":{{"code":"{}","message":"{}"}}}}"#, "c".repeat(10_000), "é".repeat(10_000));
    let b = ApiErrorBody::parse(long.as_bytes()).unwrap();
    assert_eq!((b.code.chars().count(), b.message.chars().count()), (MAX_CODE_CHARS + 1, MAX_MESSAGE_CHARS + 1));
    assert_eq!(ApiErrorBody::parse(br#"{"error":"flat"}"#), None);
}

#[test]
fn retry_after_values() {
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_435_200); // Mon, 23 Nov 2026 12:00:00 GMT
    assert_eq!(parse_retry_after(" 120 ", now), Some(Duration::from_secs(120)));
    assert_eq!(parse_retry_after("99999999999999999999999999", now), Some(MAX_RETRY_AFTER));
    assert_eq!(parse_retry_after("Mon, 23 Nov 2026 12:01:30 GMT", now), Some(Duration::from_secs(90)));
    assert_eq!(parse_retry_after("Sun, 22 Nov 2026 12:00:00 GMT", now), Some(Duration::ZERO));
    assert_eq!(parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT", now), Some(MAX_RETRY_AFTER));
    for bad in ["", "-5", "1.5", "+3", "tomorrow", "Mon, 32 Nov 2026 12:00:00 GMT"] {
        assert_eq!(parse_retry_after(bad, now), None, "{bad}");
    }
    let mut h = reqwest::header::HeaderMap::new();
    h.insert(reqwest::header::RETRY_AFTER, "7".parse().unwrap());
    assert_eq!(retry_after_header(&h), Some(Duration::from_secs(7)));
}

#[test]
fn classify_clamps_waits() {
    let body = ApiErrorBody { retry_after: Some(Duration::MAX), ..ApiErrorBody::default() };
    assert_eq!(
        classify(StatusCode::TOO_MANY_REQUESTS, Some(body), None),
        JobApiError::RateLimited { retry_after: Some(MAX_RETRY_AFTER) }
    );
    assert_eq!(
        classify(StatusCode::SERVICE_UNAVAILABLE, None, Some(Duration::MAX)),
        JobApiError::Transient { reason: "HTTP 503: Service Unavailable".into(), retry_after: Some(MAX_RETRY_AFTER) }
    );
}

mod props {
    use std::time::{Duration, SystemTime};

    use proptest::prelude::*;
    use reqwest::StatusCode;

    use crate::domain::testing::{body, cases, deeply_nested, json, text};
    use crate::toolkit::http::{ApiErrorBody, MAX_RETRY_AFTER, classify, parse_retry_after, retry_after_secs};

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
}
