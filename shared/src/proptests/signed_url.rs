use proptest::prelude::*;
use time::{Duration, OffsetDateTime};

use super::{cases, json, text};
use crate::domain::clock::{MAX_INSTANT, MIN_INSTANT, rfc3339};
use crate::signed_url::{expiry_from_url, instant_from_json, parse_instant, redact};

fn bounded(t: OffsetDateTime) -> bool {
    (MIN_INSTANT..=MAX_INSTANT).contains(&t) && t.offset().is_utc() && !rfc3339(t).is_empty()
}

fn signing_param() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["X-Amz-Date", "x-amz-expires", "X-Goog-Date", "X-Goog-Expires", "Expires", "se", "sig"])
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
