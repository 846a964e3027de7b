//! Signed-URL expiries and instants, and formatting what they yield.
#![no_main]

use genhook::domain::clock::{MAX_INSTANT, MIN_INSTANT, rfc3339};
use genhook::toolkit::http::redact::redact;
use genhook::toolkit::http::url_expiry::{expiry_from_url, parse_instant};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for t in [expiry_from_url(&text), parse_instant(&text)].into_iter().flatten() {
        assert!((MIN_INSTANT..=MAX_INSTANT).contains(&t), "{t}");
        let _ = rfc3339(t);
    }
    let _ = redact(&text);
    // The same text as an S3 expiry.
    let url = format!("https://b.s3.amazonaws.com/o?X-Amz-Date=20261123T120000Z&X-Amz-Expires={text}");
    let _ = expiry_from_url(&url).map(rfc3339);
});
