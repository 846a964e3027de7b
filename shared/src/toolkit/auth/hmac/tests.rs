use hmac::Mac;

use super::*;

// Vectors produced independently with:
//   printf '%s' "$BODY" | openssl dgst -sha256 -hmac "$SECRET"
const SECRET: &str = "whsec_test_katalo_0123456789";
const BODY: &str = r#"{"event_type":"generation.completed","job_id":"job_123"}"#;
const SIG: &str = "9c4623404befccba8bd7b03e78e30ef7bb005078a65abc381ab0fe262c83cc66";
const SIG_EMPTY: &str = "44102feb1cfce8f39588d16d797189f0971a192744732182679887ff951e82ae";

fn secrets() -> HmacSecrets {
    HmacSecrets::new(SECRET, None)
}

#[test]
fn matches_openssl_vectors() {
    assert_eq!(sign_hex(SECRET.as_bytes(), BODY.as_bytes()), SIG);
    assert_eq!(sign_hex(SECRET.as_bytes(), b""), SIG_EMPTY);
    assert!(secrets().verify_hex(BODY.as_bytes(), Some(SIG)).is_ok());
}

#[test]
fn accepts_uppercase_hex_and_whitespace() {
    let upper = SIG.to_uppercase();
    assert!(secrets().verify_hex(BODY.as_bytes(), Some(&upper)).is_ok());
    let padded = format!("  {SIG} ");
    assert!(secrets().verify_hex(BODY.as_bytes(), Some(&padded)).is_ok());
}

#[test]
fn rejects_missing_malformed_and_wrong() {
    let s = secrets();
    let b = BODY.as_bytes();
    assert_eq!(s.verify_hex(b, None), Err(SignatureError::Missing));
    assert_eq!(s.verify_hex(b, Some("")), Err(SignatureError::Missing));
    assert_eq!(s.verify_hex(b, Some("abc")), Err(SignatureError::Malformed));
    let non_hex = "z".repeat(64);
    assert_eq!(s.verify_hex(b, Some(&non_hex)), Err(SignatureError::Malformed));
    let long = format!("{SIG}00");
    assert_eq!(s.verify_hex(b, Some(&long)), Err(SignatureError::Malformed));
    assert_eq!(s.verify_hex(b, Some(SIG_EMPTY)), Err(SignatureError::Mismatch));
    // One byte of the body changed: the signature no longer holds.
    let tampered = BODY.replace("job_123", "job_124");
    assert_eq!(s.verify_hex(tampered.as_bytes(), Some(SIG)), Err(SignatureError::Mismatch));
}

#[test]
fn previous_secret_is_accepted_during_rotation() {
    let rotated = HmacSecrets::new("new-secret", Some(SECRET.as_bytes().to_vec()));
    assert!(rotated.verify_hex(BODY.as_bytes(), Some(SIG)).is_ok());
    let new_sig = rotated.sign_hex(BODY.as_bytes());
    assert!(rotated.verify_hex(BODY.as_bytes(), Some(&new_sig)).is_ok());
    let unrelated = HmacSecrets::new("new-secret", Some(b"other".to_vec()));
    assert_eq!(unrelated.verify_hex(BODY.as_bytes(), Some(SIG)), Err(SignatureError::Mismatch));
}

#[test]
fn any_number_of_previous_secrets_is_accepted_and_only_the_current_signs() {
    let rotated = HmacSecrets::new("newest", [b"older".to_vec(), Vec::new(), SECRET.as_bytes().to_vec()]);
    assert_eq!(rotated.len(), 3, "the empty one is ignored");
    assert!(rotated.verify_hex(BODY.as_bytes(), Some(SIG)).is_ok(), "the oldest still verifies");
    let older = sign_hex(b"older", BODY.as_bytes());
    // Whichever secret signed, the tag returned is the current secret's.
    assert_eq!(
        rotated.verify_hex(BODY.as_bytes(), Some(&older)),
        Ok(Tag(HmacKey::new(b"newest").mac(BODY.as_bytes())))
    );
    assert_eq!(rotated.sign_hex(BODY.as_bytes()), sign_hex(b"newest", BODY.as_bytes()));
    assert!(rotated.matches_with(|m| m.update(BODY.as_bytes()), &hex::decode(SIG).unwrap()));
    assert!(!rotated.matches_with(|m| m.update(b"other"), &hex::decode(SIG).unwrap()));
    let revoked = HmacSecrets::new("newest", [b"older".to_vec()]);
    assert_eq!(revoked.verify_hex(BODY.as_bytes(), Some(SIG)), Err(SignatureError::Mismatch));
}

#[test]
fn debug_redacts() {
    let shown = format!("{:?}", HmacSecrets::new(SECRET, Some(b"p".to_vec())));
    assert!(!shown.contains(SECRET));
}

mod props {
    use proptest::prelude::*;

    use crate::domain::testing::{cases, text};
    use crate::toolkit::auth::hmac::{HmacSecrets, SignatureError};

    fn secrets(current: &[u8], previous: Option<Vec<u8>>) -> HmacSecrets {
        HmacSecrets::new(current, previous)
    }

    proptest! {
        #![proptest_config(cases(256))]

        #[test]
        fn sign_then_verify(
            current in prop::collection::vec(any::<u8>(), 0..80),
            previous in prop::option::of(prop::collection::vec(any::<u8>(), 0..80)),
            body in prop::collection::vec(any::<u8>(), 0..512),
            prefix in prop::sample::select(vec!["", "sha256=", "  "]),
            upper in any::<bool>(),
        ) {
            let s = secrets(&current, previous.clone());
            let sig = s.sign_hex(&body);
            let header = format!("{prefix}{}", if upper { sig.to_uppercase() } else { sig.clone() });
            // The verified tag is the body's MAC under the current secret (the receiver's
            // body digest)...
            prop_assert_eq!(s.verify_hex(&body, Some(&header)).map(|t| t.to_hex()), Ok(sig.clone()));
            // ...whichever secret signed it: under the previous one, still accepted during the
            // rotation, with the same tag.
            if let Some(p) = previous.filter(|p| !p.is_empty()) {
                let old = secrets(&p, None).sign_hex(&body);
                prop_assert_eq!(s.verify_hex(&body, Some(&old)).map(|t| t.to_hex()), Ok(sig.clone()));
            }
            // One more byte in the body: refused.
            let mut tampered = body.clone();
            tampered.push(0);
            prop_assert_eq!(s.verify_hex(&tampered, Some(&sig)), Err(SignatureError::Mismatch));
        }

        #[test]
        fn any_header_is_refused_without_panicking(header in prop_oneof![text(), "[0-9a-fA-F]{60,68}", any::<String>()], body in prop::collection::vec(any::<u8>(), 0..64)) {
            let s = secrets(b"k", None);
            prop_assert!(s.verify_hex(&body, Some(&header)).is_err());
            prop_assert!(s.verify_tag(&body, header.as_bytes()).is_err());
        }
    }
}
