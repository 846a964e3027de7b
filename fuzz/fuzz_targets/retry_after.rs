//! The `Retry-After` header and the API error body, and their classification.
#![no_main]

use std::time::{Duration, SystemTime};

use genhook::toolkit::http::{ApiErrorBody, MAX_RETRY_AFTER, classify, parse_retry_after};
use http::StatusCode;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&[hi, lo], rest)) = data.split_first_chunk::<2>() else { return };
    let status = StatusCode::from_u16(400 + u16::from_be_bytes([hi, lo]) % 200).unwrap_or(StatusCode::BAD_REQUEST);
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_435_200);
    let header = std::str::from_utf8(rest).ok().and_then(|s| parse_retry_after(s, now));
    assert!(header.is_none_or(|d| d <= MAX_RETRY_AFTER));
    let body = ApiErrorBody::parse(rest);
    assert!(body.as_ref().and_then(|b| b.retry_after).is_none_or(|d| d <= MAX_RETRY_AFTER));
    let _ = classify(status, body, header);
});
