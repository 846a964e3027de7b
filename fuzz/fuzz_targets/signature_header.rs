//! The Katalo signature header and the APIMP callback token: arbitrary header text and
//! query strings over an arbitrary body.
#![no_main]

use genhook::providers::apimp::capability;
use genhook::providers::apimp::upstream::Upstream;
use genhook::toolkit::auth::hmac::HmacSecrets;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let secrets = HmacSecrets::new("fuzz-secret", Some(b"fuzz-previous".to_vec()));
    // The first line is the header (or query), the rest the body.
    let (head, body) = match data.iter().position(|b| *b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let head = String::from_utf8_lossy(head);
    let _ = secrets.verify_hex(body, Some(&head));
    let _ = secrets.verify_hex(body, None);
    let _ = secrets.verify_tag(body, head.as_bytes());
    for upstream in Upstream::ALL {
        let _ = capability::verify_query(Some(&head), upstream, &secrets);
    }
    // A correct signature always verifies.
    assert!(secrets.verify_hex(body, Some(&secrets.sign_hex(body))).is_ok());
});
