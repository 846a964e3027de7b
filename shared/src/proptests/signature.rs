use proptest::prelude::*;

use super::{cases, text};
use crate::signature::{HmacSecrets, SignatureError};

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
