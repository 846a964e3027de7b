//! Vidu's `X-HMAC-*` headers: lines of `name: value` become the request's headers; the
//! first line is the query string.
#![no_main]

use genhook::providers::apimp::vidu;
use genhook::toolkit::auth::hmac::HmacSecrets;
use http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;
use time::macros::datetime;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.split('\n');
    let query = lines.next().unwrap_or_default();
    let mut headers = HeaderMap::new();
    for line in lines {
        let Some((name, value)) = line.split_once(':') else { continue };
        if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(name.trim().as_bytes()), HeaderValue::from_str(value.trim())) {
            headers.append(n, v);
        }
    }
    let secrets = HmacSecrets::new("vidu-fuzz", None);
    for now in [datetime!(2026-11-23 12:00:00 UTC), datetime!(-9999-01-01 0:00 UTC), datetime!(9999-12-31 23:59:59 UTC)]
    {
        let _ = vidu::verify(&headers, "/webhooks/apimp/vidu", query, &secrets, now);
    }
});
