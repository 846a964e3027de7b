use super::*;
use time::macros::datetime;

// The reference libraries' published test vector (their `sign` tests).
const SPEC_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const SPEC_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
const SPEC_TS: i64 = 1_614_265_330;
const SPEC_BODY: &[u8] = br#"{"test": 2432232314}"#;
const SPEC_SIG: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

fn at(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(secs).unwrap()
}

fn headers(id: &str, timestamp: &str, signature: &str) -> http::HeaderMap {
    let mut h = http::HeaderMap::new();
    for (name, value) in [(ID_HEADER, id), (TIMESTAMP_HEADER, timestamp), (SIGNATURE_HEADER, signature)] {
        h.insert(name, http::HeaderValue::from_str(value).unwrap());
    }
    h
}

fn spec() -> Secrets {
    Secrets::parse([SPEC_SECRET]).unwrap()
}

fn spec_headers() -> http::HeaderMap {
    headers(SPEC_ID, &SPEC_TS.to_string(), SPEC_SIG)
}

#[test]
fn the_published_test_vector() {
    assert_eq!(spec().sign(SPEC_ID, SPEC_TS, SPEC_BODY), SPEC_SIG);
    let verified = spec().verify(&spec_headers(), SPEC_BODY, at(SPEC_TS)).unwrap();
    assert_eq!(verified, Verified { id: SPEC_ID.into(), timestamp: at(SPEC_TS) });
    // The bare base64 form of the same secret, and without padding.
    let bare = Secrets::parse([SPEC_SECRET.trim_start_matches(SECRET_PREFIX)]).unwrap();
    assert_eq!(bare.sign(SPEC_ID, SPEC_TS, SPEC_BODY), SPEC_SIG);
    // The Rust reference library's own vector.
    let rust = Secret::parse("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD").unwrap();
    assert_eq!(
        rust.sign(
            "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
            1_649_367_553,
            br#"{"email":"test@example.com","username":"test_user"}"#
        ),
        "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw="
    );
}

#[test]
fn rotation_accepts_either_secret_and_either_signature() {
    let old = Secret::parse(SPEC_SECRET).unwrap();
    let new = Secret::from_bytes(b"a brand new key of 24 bytes!").unwrap();
    let rotated = Secrets::new(new.clone(), [old.clone()]);
    assert_eq!(rotated.len(), 2);
    // A sender still on the old secret.
    assert!(rotated.verify(&spec_headers(), SPEC_BODY, at(SPEC_TS)).is_ok());
    // A sender signing with both, new first.
    let both = rotated.sign_all(SPEC_ID, SPEC_TS, SPEC_BODY);
    assert_eq!(both.split(' ').nth(1), Some(SPEC_SIG));
    let h = headers(SPEC_ID, &SPEC_TS.to_string(), &both);
    assert!(rotated.verify(&h, SPEC_BODY, at(SPEC_TS)).is_ok());
    assert!(Secrets::new(old, []).verify(&h, SPEC_BODY, at(SPEC_TS)).is_ok());
    // Only the new one: the old signature alone no longer passes.
    assert_eq!(
        Secrets::new(new, []).verify(&spec_headers(), SPEC_BODY, at(SPEC_TS)),
        Err(VerifyError::NoMatchingSignature)
    );
}

#[test]
fn tolerance_edges() {
    let s = spec();
    let five = TOLERANCE.whole_seconds();
    assert!(s.verify(&spec_headers(), SPEC_BODY, at(SPEC_TS + five)).is_ok(), "exactly 5 min old passes");
    assert!(s.verify(&spec_headers(), SPEC_BODY, at(SPEC_TS - five)).is_ok(), "exactly 5 min ahead passes");
    assert_eq!(s.verify(&spec_headers(), SPEC_BODY, at(SPEC_TS + five + 1)), Err(VerifyError::TooOld));
    assert_eq!(s.verify(&spec_headers(), SPEC_BODY, at(SPEC_TS - five - 1)), Err(VerifyError::TooNew));
    // Sub-second clock readings count as the whole second, as the libraries' floor.
    let almost = at(SPEC_TS + five) + time::Duration::milliseconds(999);
    assert!(s.verify(&spec_headers(), SPEC_BODY, almost).is_ok());
}

#[test]
fn tampering_fails() {
    let s = spec();
    let now = at(SPEC_TS);
    assert_eq!(s.verify(&spec_headers(), br#"{"test": 2432232315}"#, now), Err(VerifyError::NoMatchingSignature));
    let other_id = headers("msg_p5jXN8AQM9LWM0D4loKWxJel", &SPEC_TS.to_string(), SPEC_SIG);
    assert_eq!(s.verify(&other_id, SPEC_BODY, now), Err(VerifyError::NoMatchingSignature));
    let other_ts = headers(SPEC_ID, &(SPEC_TS + 1).to_string(), SPEC_SIG);
    assert_eq!(s.verify(&other_ts, SPEC_BODY, now), Err(VerifyError::NoMatchingSignature));
    // The same value written differently is different signed content.
    let padded_ts = headers(SPEC_ID, &format!("0{SPEC_TS}"), SPEC_SIG);
    assert_eq!(s.verify(&padded_ts, SPEC_BODY, now), Err(VerifyError::NoMatchingSignature));
    let wrong_key = Secrets::parse(["whsec_bm90IHRoZSBzaWduaW5nIGtleQ=="]).unwrap();
    assert_eq!(wrong_key.verify(&spec_headers(), SPEC_BODY, now), Err(VerifyError::NoMatchingSignature));
}

#[test]
fn other_versions_and_junk_entries_are_ignored() {
    let s = spec();
    let now = at(SPEC_TS);
    let tag = SPEC_SIG.trim_start_matches("v1,");
    let listed = format!("v1a,{tag} v2,{tag} junk v1, v1,!!!! v1,AAAA  {SPEC_SIG}");
    assert!(s.verify(&headers(SPEC_ID, &SPEC_TS.to_string(), &listed), SPEC_BODY, now).is_ok());
    // The right tag under another version does not count.
    let wrong_version = format!("v1a,{tag} v2,{tag}");
    assert_eq!(
        s.verify(&headers(SPEC_ID, &SPEC_TS.to_string(), &wrong_version), SPEC_BODY, now),
        Err(VerifyError::NoMatchingSignature)
    );
    // A truncated tag does not match (the reference tests' "partial signature").
    let partial = &SPEC_SIG[..8];
    assert_eq!(
        s.verify(&headers(SPEC_ID, &SPEC_TS.to_string(), partial), SPEC_BODY, now),
        Err(VerifyError::NoMatchingSignature)
    );
}

#[test]
fn missing_and_garbage_headers() {
    let s = spec();
    let now = at(SPEC_TS);
    for name in [ID_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER] {
        let mut h = spec_headers();
        h.remove(name);
        assert_eq!(s.verify(&h, SPEC_BODY, now), Err(VerifyError::MissingHeader(name)));
    }
    let ts = SPEC_TS.to_string();
    let check = |id: &str, t: &str, sig: &str| s.verify(&headers(id, t, sig), SPEC_BODY, now);
    for bad in ["hello", "", " ", "1.5", "+1614265330", "1e9", "--1", "-", "99999999999999999999"] {
        assert_eq!(check(SPEC_ID, bad, SPEC_SIG), Err(VerifyError::InvalidTimestamp), "{bad:?}");
    }
    assert_eq!(check(SPEC_ID, "-9223372036854775808", SPEC_SIG), Err(VerifyError::TooOld));
    assert_eq!(check(SPEC_ID, "9223372036854775807", SPEC_SIG), Err(VerifyError::TooNew));
    assert_eq!(check(SPEC_ID, "0", SPEC_SIG), Err(VerifyError::TooOld));
    assert_eq!(check("", &ts, SPEC_SIG), Err(VerifyError::InvalidHeader(ID_HEADER)));
    assert_eq!(check(&"i".repeat(MAX_ID_BYTES + 1), &ts, SPEC_SIG), Err(VerifyError::InvalidHeader(ID_HEADER)));
    let many = vec![SPEC_SIG; MAX_SIGNATURES + 1].join(" ");
    assert_eq!(check(SPEC_ID, &ts, &many), Err(VerifyError::InvalidHeader(SIGNATURE_HEADER)));
    let long = format!("{SPEC_SIG} {}", "x".repeat(MAX_SIGNATURE_HEADER_BYTES));
    assert_eq!(check(SPEC_ID, &ts, &long), Err(VerifyError::InvalidHeader(SIGNATURE_HEADER)));
    let mut h = spec_headers();
    h.insert(ID_HEADER, http::HeaderValue::from_bytes(b"msg_\xff").unwrap());
    assert_eq!(s.verify(&h, SPEC_BODY, now), Err(VerifyError::InvalidHeader(ID_HEADER)));
    // The timestamp is checked first: a stale delivery is refused whatever it carries.
    assert_eq!(check(SPEC_ID, "0", "v1,garbage"), Err(VerifyError::TooOld));
    // Whitespace around values is tolerated, as HTTP's optional whitespace.
    assert!(check(SPEC_ID, &ts, &format!(" {SPEC_SIG} ")).is_ok());
}

#[test]
fn secrets_are_read_strictly_and_never_shown() {
    assert_eq!(Secret::parse("whsec_").unwrap_err(), SecretError::Empty);
    assert_eq!(Secret::parse("  ").unwrap_err(), SecretError::Empty);
    assert_eq!(Secret::parse("whsec_not base64!").unwrap_err(), SecretError::InvalidBase64);
    assert_eq!(Secret::from_bytes(b"").unwrap_err(), SecretError::Empty);
    assert_eq!(Secrets::parse(std::iter::empty()).unwrap_err(), SecretError::NoSecrets);
    assert_eq!(Secrets::parse([SPEC_SECRET, "whsec_%%"]).unwrap_err(), SecretError::InvalidBase64);
    let s = Secrets::parse([SPEC_SECRET, " whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw "]).unwrap();
    let shown = format!("{s:?} {:?}", s.current());
    assert!(!shown.contains("MfKQ") && shown.contains("2 secret(s)"), "{shown}");
    assert!(!s.is_empty());
}

#[test]
fn headers_round_trip() {
    let key = Secret::from_bytes(&[7; 24]).unwrap();
    let now = datetime!(2026-11-23 12:00:00 UTC);
    let mut h = http::HeaderMap::new();
    for (name, value) in key.headers("msg_1", now.unix_timestamp(), b"{}") {
        h.insert(name, value.parse().unwrap());
    }
    let v = Secrets::new(key, []).verify(&h, b"{}", now).unwrap();
    assert_eq!((v.id.as_str(), v.timestamp), ("msg_1", now));
}

mod props {
    use proptest::prelude::*;
    use time::OffsetDateTime;

    use crate::domain::testing::{cases, text};
    use crate::toolkit::auth::standard_webhooks::{
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
}
