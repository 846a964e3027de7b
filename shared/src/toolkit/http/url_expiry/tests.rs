use super::*;
use crate::domain::clock::{MAX_INSTANT, MIN_INSTANT};
use time::macros::datetime;

#[test]
fn s3_sigv4() {
    let u = "https://b.s3.amazonaws.com/o.png?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AK%2F20261123%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20261123T120000Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=host&X-Amz-Signature=abc";
    assert_eq!(expiry_from_url(u), Some(datetime!(2026-11-23 13:00:00 UTC)));
}

#[test]
fn gcs_v4_any_case() {
    let u = "https://storage.googleapis.com/b/o.png?x-goog-algorithm=GOOG4-RSA-SHA256&x-goog-date=20261123T120000Z&x-goog-expires=900&x-goog-signature=ff";
    assert_eq!(expiry_from_url(u), Some(datetime!(2026-11-23 12:15:00 UTC)));
}

#[test]
fn cloudfront_and_gcs_v2_expires() {
    let u = "https://d111.cloudfront.net/o.png?Expires=1795435200&Signature=x&Key-Pair-Id=K";
    assert_eq!(expiry_from_url(u), OffsetDateTime::from_unix_timestamp(1_795_435_200).ok());
}

#[test]
fn azure_sas() {
    let u = "https://a.blob.core.windows.net/c/o.png?sv=2022-11-02&se=2026-11-23T12%3A30%3A00Z&sig=x";
    assert_eq!(expiry_from_url(u), Some(datetime!(2026-11-23 12:30:00 UTC)));
}

#[test]
fn unsigned_or_garbage_has_no_expiry() {
    assert_eq!(expiry_from_url("https://cdn.example.com/o.png"), None);
    assert_eq!(expiry_from_url("https://x/o.png?X-Amz-Date=nope&X-Amz-Expires=60"), None);
    assert_eq!(expiry_from_url("not a url"), None);
}

#[test]
fn instants() {
    assert_eq!(parse_instant("2026-11-23T12:00:00Z"), Some(datetime!(2026-11-23 12:00:00 UTC)));
    assert_eq!(parse_instant("2026-11-23T13:00:00+01:00"), Some(datetime!(2026-11-23 12:00:00 UTC)));
    assert_eq!(parse_instant("1795435200"), OffsetDateTime::from_unix_timestamp(1_795_435_200).ok());
    assert_eq!(parse_instant("tomorrow"), None);
}

// Each of these panicked before (`OffsetDateTime + Duration` overflow).
#[test]
fn huge_relative_expiries_saturate() {
    let s3 = |secs: &str| expiry_from_url(&format!("https://b/o.png?X-Amz-Date=20261123T120000Z&X-Amz-Expires={secs}"));
    assert_eq!(s3("9223372036854775807"), Some(MAX_INSTANT));
    assert_eq!(s3("100000000000000000"), Some(MAX_INSTANT));
    assert_eq!(s3("99999999999999999999999999999"), Some(MAX_INSTANT));
    assert_eq!(s3("-9223372036854775808"), Some(MIN_INSTANT));
    assert_eq!(s3("-60"), Some(datetime!(2026-11-23 11:59:00 UTC)));
    assert_eq!(s3("1e20"), None, "not an integer: unknown");
    let gcs = "https://s/o?X-Goog-Date=20261123T120000Z&X-Goog-Expires=1000000000000000000";
    assert_eq!(expiry_from_url(gcs), Some(MAX_INSTANT));
}

// Each of these panicked before in `clock::rfc3339` (year -9999 has no RFC 3339 form).
#[test]
fn extreme_absolute_expiries_stay_formattable() {
    let t = expiry_from_url("https://d/o.png?Expires=-377705116800").unwrap();
    assert_eq!((t, crate::domain::clock::rfc3339(t).as_str()), (MIN_INSTANT, "0000-01-01T00:00:00Z"));
    assert_eq!(expiry_from_url("https://d/o.png?Expires=9223372036854775807"), Some(MAX_INSTANT));
    assert_eq!(parse_instant("-377705116800"), Some(MIN_INSTANT));
    assert_eq!(parse_instant("123456789012345678901234567890"), Some(MAX_INSTANT));
    assert_eq!(parse_instant("0000-01-01T00:00:00+01:00"), Some(MIN_INSTANT));
    assert_eq!(parse_instant("9999-12-31T23:59:59-01:00"), Some(MAX_INSTANT));
    let se = "https://a/c/o?se=0000-01-01T00%3A00%3A00%2B23%3A59&sig=x";
    assert_eq!(expiry_from_url(se).map(crate::domain::clock::rfc3339).as_deref(), Some("0000-01-01T00:00:00Z"));
}

#[test]
fn instants_from_json() {
    use serde_json::json;
    assert_eq!(instant_from_json(&json!(1_795_435_200)), OffsetDateTime::from_unix_timestamp(1_795_435_200).ok());
    assert_eq!(instant_from_json(&json!(1_795_435_200.9)), OffsetDateTime::from_unix_timestamp(1_795_435_200).ok());
    assert_eq!(instant_from_json(&json!(u64::MAX)), Some(MAX_INSTANT));
    assert_eq!(instant_from_json(&json!(-1e300)), Some(MIN_INSTANT));
    assert_eq!(instant_from_json(&json!("2026-11-23T12:00:00Z")), Some(datetime!(2026-11-23 12:00:00 UTC)));
    assert_eq!(instant_from_json(&json!(null)), None);
    assert_eq!(secs_from_json(&json!("-5")), Some(-5));
    assert_eq!(secs_from_json(&json!("5s")), None);
}

mod props {
    use proptest::prelude::*;
    use time::{Duration, OffsetDateTime};

    use crate::domain::clock::{MAX_INSTANT, MIN_INSTANT, rfc3339};
    use crate::domain::testing::{cases, json, text};
    use crate::toolkit::http::redact::redact;
    use crate::toolkit::http::url_expiry::{expiry_from_url, instant_from_json, parse_instant};

    fn bounded(t: OffsetDateTime) -> bool {
        (MIN_INSTANT..=MAX_INSTANT).contains(&t) && t.offset().is_utc() && !rfc3339(t).is_empty()
    }

    fn signing_param() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec![
            "X-Amz-Date",
            "x-amz-expires",
            "X-Goog-Date",
            "X-Goog-Expires",
            "Expires",
            "se",
            "sig",
        ])
    }

    proptest! {
        #![proptest_config(cases(256))]

        #[test]
        fn any_text_is_a_bounded_instant_or_none(s in text()) {
            for t in [expiry_from_url(&s), parse_instant(&s)].into_iter().flatten() {
                prop_assert!(bounded(t), "{t}");
            }
            let _ = redact(&s);
        }

        #[test]
        fn any_signing_parameters_give_a_bounded_expiry(params in prop::collection::vec((signing_param(), text()), 0..5)) {
            let mut url = url::Url::parse("https://b.example.com/o.png").unwrap();
            url.query_pairs_mut().extend_pairs(&params);
            if let Some(t) = expiry_from_url(url.as_str()) {
                prop_assert!(bounded(t), "{t}");
            }
        }

        #[test]
        fn any_json_is_a_bounded_instant_or_none(v in json()) {
            if let Some(t) = instant_from_json(&v) {
                prop_assert!(bounded(t), "{t}");
            }
        }

        #[test]
        fn any_instant_formats(secs in any::<i64>(), nanos in 0..1_000_000_000i64) {
            let t = OffsetDateTime::UNIX_EPOCH.checked_add(Duration::seconds(secs % 253_402_300_800) + Duration::nanoseconds(nanos));
            if let Some(t) = t {
                let shown = rfc3339(t);
                let back = parse_instant(&shown).unwrap();
                prop_assert_eq!(back, crate::domain::clock::clamp_instant(t));
            }
        }

        /// A generated S3 URL's expiry is its date plus its lifetime.
        #[test]
        fn s3_expiry_is_date_plus_lifetime(secs in 0i64..4_102_444_800, lifetime in 0i64..=604_800) {
            let date = OffsetDateTime::from_unix_timestamp(secs).unwrap();
            let amz = format!(
                "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
                date.year(), u8::from(date.month()), date.day(), date.hour(), date.minute(), date.second()
            );
            let url = format!(
                "https://b.s3.amazonaws.com/k/o.png?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date={amz}&X-Amz-Expires={lifetime}&X-Amz-SignedHeaders=host&X-Amz-Signature=ff"
            );
            prop_assert_eq!(expiry_from_url(&url), Some(date + Duration::seconds(lifetime)));
        }

        /// Out of range, it saturates in the direction of the sign.
        #[test]
        fn s3_expiry_saturates(lifetime in prop_oneof![i64::MIN..-400_000_000_000i64, 400_000_000_000i64..=i64::MAX]) {
            let url = format!("https://b/o.png?X-Amz-Date=20261123T120000Z&X-Amz-Expires={lifetime}");
            let want = if lifetime > 0 { MAX_INSTANT } else { MIN_INSTANT };
            prop_assert_eq!(expiry_from_url(&url), Some(want));
        }

        #[test]
        fn any_amz_date_is_bounded(year in -9999i32..=9999, rest in "[0-9]{4}T[0-9]{6}Z", expires in any::<i64>()) {
            let url = format!("https://b/o?X-Amz-Date={year:04}{rest}&X-Amz-Expires={expires}");
            if let Some(t) = expiry_from_url(&url) {
                prop_assert!(bounded(t), "{t}");
            }
        }
    }
}
