use proptest::prelude::*;
use time::OffsetDateTime;

use super::{cases, text};
use crate::standard_webhooks::{
    ID_HEADER, SIGNATURE_HEADER, Secret, Secrets, TIMESTAMP_HEADER, TOLERANCE, VerifyError,
};

/// Unix seconds well inside `time`'s range, so `now ± tolerance` always exists.
fn instant() -> impl Strategy<Value = i64> {
    -10_000_000_000i64..250_000_000_000
}

fn headers(id: &str, timestamp: &str, signature: &str) -> Option<http::HeaderMap> {
    let mut h = http::HeaderMap::new();
    for (name, value) in [(ID_HEADER, id), (TIMESTAMP_HEADER, timestamp), (SIGNATURE_HEADER, signature)] {
        h.insert(name, http::HeaderValue::from_str(value).ok()?);
    }
    Some(h)
}

proptest! {
    #![proptest_config(cases(256))]

    #[test]
    fn sign_then_verify_and_any_changed_byte_fails(
        key in prop::collection::vec(any::<u8>(), 1..64),
        id in "msg_[A-Za-z0-9]{1,30}",
        ts in instant(),
        skew in -TOLERANCE.whole_seconds()..=TOLERANCE.whole_seconds(),
        body in prop::collection::vec(any::<u8>(), 0..512),
        flip in any::<prop::sample::Index>(),
        bit in 0u8..8,
    ) {
        let secrets = Secrets::new(Secret::from_bytes(&key).unwrap(), []);
        let now = OffsetDateTime::from_unix_timestamp(ts + skew).unwrap();
        let h = headers(&id, &ts.to_string(), &secrets.sign(&id, ts, &body)).unwrap();
        let verified = secrets.verify(&h, &body, now).unwrap();
        prop_assert_eq!(verified.id, id);
        prop_assert_eq!(verified.timestamp.unix_timestamp(), ts);
        if !body.is_empty() {
            let mut tampered = body.clone();
            tampered[flip.index(body.len())] ^= 1 << bit;
            prop_assert_eq!(secrets.verify(&h, &tampered, now), Err(VerifyError::NoMatchingSignature));
        }
    }

    #[test]
    fn any_headers_are_refused_without_panicking(
        id in prop_oneof![text(), "msg_[a-z]{4}"],
        ts in prop_oneof![text(), any::<i64>().prop_map(|n| n.to_string())],
        sig in prop_oneof![text(), "(v1,[A-Za-z0-9+/=]{0,50} ?){0,20}", any::<String>()],
        now in instant(),
        body in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let secrets = Secrets::new(Secret::from_bytes(b"k").unwrap(), []);
        let now = OffsetDateTime::from_unix_timestamp(now).unwrap();
        if let Some(h) = headers(&id, &ts, &sig) {
            prop_assert!(secrets.verify(&h, &body, now).is_err());
        }
    }

    #[test]
    fn any_secret_text_parses_or_is_refused(s in prop_oneof![text(), "whsec_[A-Za-z0-9+/=]{0,60}", any::<String>()]) {
        let _ = Secret::parse(&s);
    }
}
