//! Vidu's callback signature (platform.vidu.com/docs/callback-signature): headers
//! `Date`, `x-request-nonce`, `X-HMAC-SIGNED-HEADERS` (e.g. `Date;x-request-nonce`),
//! `X-HMAC-ALGORITHM: hmac-sha256`, `X-HMAC-ACCESS-KEY` and `X-HMAC-SIGNATURE` =
//! base64(HMAC-SHA256(secret, string-to-sign)) where the string to sign is
//!
//! ```text
//! POST\n{path}\n{query}\n{access key}\n{Date}\n{name}:{value}\n ... (one line per signed header)
//! ```
//!
//! The body is not signed, so a stale `Date` (outside ±5 minutes) is refused to limit
//! replays, and the payload stays a hint the worker re-reads from APIMP anyway. The
//! exact layout is read from Vidu's page; the test vectors below are built from it.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::HeaderMap;
use time::OffsetDateTime;

use crate::domain::clock::from_epoch_secs;
use crate::toolkit::auth::hmac::{HmacSecrets, SignatureError};

/// Largest accepted distance between `Date` and our clock.
pub const MAX_SKEW: time::Duration = time::Duration::minutes(5);

/// Most header names `X-HMAC-SIGNED-HEADERS` may list (Vidu signs two); more is refused
/// before any work, so a long list cannot blow up the string to sign.
pub const MAX_SIGNED_HEADERS: usize = 16;

/// Why a Vidu signature is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ViduSignatureError {
    /// A required header is missing or not text.
    #[error("header {0} missing")]
    MissingHeader(&'static str),
    /// The algorithm is not hmac-sha256.
    #[error("unsupported X-HMAC-ALGORITHM")]
    Algorithm,
    /// `Date` is not an HTTP date.
    #[error("Date is not an HTTP date")]
    BadDate,
    /// `Date` is more than five minutes away from now.
    #[error("Date is outside the ±5 minute window")]
    Stale,
    /// `Date` is not among the signed headers.
    #[error("Date is not signed")]
    DateNotSigned,
    /// `X-HMAC-SIGNED-HEADERS` lists more than [`MAX_SIGNED_HEADERS`] names.
    #[error("too many signed headers")]
    TooManySignedHeaders,
    /// The signature is not base64 or does not match.
    #[error("signature: {0}")]
    Signature(SignatureError),
}

fn header<'a>(headers: &'a HeaderMap, name: &'static str) -> Result<&'a str, ViduSignatureError> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim).ok_or(ViduSignatureError::MissingHeader(name))
}

/// The string Vidu signs for a request.
pub fn string_to_sign(path: &str, query: &str, access_key: &str, date: &str, signed: &[(String, String)]) -> String {
    let mut s = format!("POST\n{path}\n{query}\n{access_key}\n{date}\n");
    for (name, value) in signed {
        s.push_str(&format!("{name}:{value}\n"));
    }
    s
}

/// Verifies a Vidu callback's signature headers for a POST to `path?query` at `now`.
pub fn verify(
    headers: &HeaderMap,
    path: &str,
    query: &str,
    secrets: &HmacSecrets,
    now: OffsetDateTime,
) -> Result<(), ViduSignatureError> {
    let algorithm = header(headers, "x-hmac-algorithm")?;
    if !algorithm.eq_ignore_ascii_case("hmac-sha256") {
        return Err(ViduSignatureError::Algorithm);
    }
    let date = header(headers, "date")?;
    let when = httpdate::parse_http_date(date).map_err(|_| ViduSignatureError::BadDate)?;
    // Seconds since the epoch (an HTTP date is 1970-9999), without `time`'s panicking
    // `From<SystemTime>`.
    let when = when.duration_since(std::time::UNIX_EPOCH).map_err(|_| ViduSignatureError::BadDate)?;
    let when = from_epoch_secs(i64::try_from(when.as_secs()).map_err(|_| ViduSignatureError::BadDate)?);
    if (now - when).unsigned_abs() > MAX_SKEW.unsigned_abs() {
        return Err(ViduSignatureError::Stale);
    }
    let names = header(headers, "x-hmac-signed-headers")?;
    let names: Vec<&str> = names.split(';').map(str::trim).filter(|n| !n.is_empty()).collect();
    if names.len() > MAX_SIGNED_HEADERS {
        return Err(ViduSignatureError::TooManySignedHeaders);
    }
    let mut signed = Vec::with_capacity(names.len());
    for name in names {
        let value = headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim).unwrap_or_default();
        signed.push((name.to_string(), value.to_string()));
    }
    if !signed.iter().any(|(n, _)| n.eq_ignore_ascii_case("date")) {
        return Err(ViduSignatureError::DateNotSigned);
    }
    let access_key = header(headers, "x-hmac-access-key")?;
    let tag = STANDARD
        .decode(header(headers, "x-hmac-signature")?)
        .map_err(|_| ViduSignatureError::Signature(SignatureError::Malformed))?;
    let message = string_to_sign(path, query, access_key, date, &signed);
    secrets.verify_tag(message.as_bytes(), &tag).map(|_| ()).map_err(ViduSignatureError::Signature)
}

/// Signs a request the way Vidu does (for tests and `genhook` tooling): the headers to add.
pub fn sign(secret: &str, path: &str, query: &str, date: &str, nonce: &str) -> Vec<(&'static str, String)> {
    let signed = vec![("Date".to_string(), date.to_string()), ("x-request-nonce".to_string(), nonce.to_string())];
    let message = string_to_sign(path, query, "vidu", date, &signed);
    let tag = HmacSecrets::new(secret, None).tag(message.as_bytes());
    vec![
        ("date", date.to_string()),
        ("x-request-nonce", nonce.to_string()),
        ("x-hmac-signed-headers", "Date;x-request-nonce".to_string()),
        ("x-hmac-algorithm", "hmac-sha256".to_string()),
        ("x-hmac-access-key", "vidu".to_string()),
        ("x-hmac-signature", STANDARD.encode(tag)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const SECRET: &str = "vidu-callback-secret";
    const DATE: &str = "Mon, 23 Nov 2026 12:00:00 GMT";
    const NOW: OffsetDateTime = datetime!(2026-11-23 12:02:00 UTC);

    fn headers(pairs: Vec<(&'static str, String)>) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn the_string_to_sign_follows_the_documented_layout() {
        let s = string_to_sign(
            "/webhooks/apimp/vidu",
            "ref=r1&token=ab",
            "vidu",
            DATE,
            &[("Date".into(), DATE.into()), ("x-request-nonce".into(), "n-1".into())],
        );
        assert_eq!(
            s,
            "POST\n/webhooks/apimp/vidu\nref=r1&token=ab\nvidu\nMon, 23 Nov 2026 12:00:00 GMT\nDate:Mon, 23 Nov 2026 12:00:00 GMT\nx-request-nonce:n-1\n"
        );
        // printf 'POST\n/webhooks/apimp/vidu\nref=r1&token=ab\nvidu\nMon, 23 Nov 2026 12:00:00 GMT\nDate:Mon, 23 Nov 2026 12:00:00 GMT\nx-request-nonce:n-1\n' \
        //   | openssl dgst -sha256 -hmac vidu-callback-secret -binary | base64
        let signed = sign(SECRET, "/webhooks/apimp/vidu", "ref=r1&token=ab", DATE, "n-1");
        assert_eq!(signed[5].1, "5S6f5IQ/DDukhOPMAiZHrQ9uOrOyKo6H96JirpKh8SM=");
    }

    #[test]
    fn valid_signatures_pass_within_the_window() {
        let secrets = HmacSecrets::new(SECRET, None);
        let h = headers(sign(SECRET, "/p", "q=1", DATE, "n-1"));
        assert_eq!(verify(&h, "/p", "q=1", &secrets, NOW), Ok(()));
        assert_eq!(
            verify(&h, "/p", "q=2", &secrets, NOW),
            Err(ViduSignatureError::Signature(SignatureError::Mismatch))
        );
        assert_eq!(
            verify(&h, "/other", "q=1", &secrets, NOW),
            Err(ViduSignatureError::Signature(SignatureError::Mismatch))
        );
        let wrong = HmacSecrets::new("other", None);
        assert!(verify(&h, "/p", "q=1", &wrong, NOW).is_err());
    }

    #[test]
    fn stale_or_future_dates_are_refused() {
        let secrets = HmacSecrets::new(SECRET, None);
        let h = headers(sign(SECRET, "/p", "", DATE, "n"));
        assert_eq!(verify(&h, "/p", "", &secrets, datetime!(2026-11-23 12:05:01 UTC)), Err(ViduSignatureError::Stale));
        assert_eq!(verify(&h, "/p", "", &secrets, datetime!(2026-11-23 11:54:59 UTC)), Err(ViduSignatureError::Stale));
        assert_eq!(verify(&h, "/p", "", &secrets, datetime!(2026-11-23 12:05:00 UTC)), Ok(()));
    }

    #[test]
    fn missing_or_odd_headers_are_named() {
        let secrets = HmacSecrets::new(SECRET, None);
        let mut pairs = sign(SECRET, "/p", "", DATE, "n");
        pairs.retain(|(k, _)| *k != "x-hmac-signature");
        assert_eq!(
            verify(&headers(pairs), "/p", "", &secrets, NOW),
            Err(ViduSignatureError::MissingHeader("x-hmac-signature"))
        );
        let mut pairs = sign(SECRET, "/p", "", DATE, "n");
        pairs[0].1 = "yesterday".into();
        assert_eq!(verify(&headers(pairs), "/p", "", &secrets, NOW), Err(ViduSignatureError::BadDate));
        let mut pairs = sign(SECRET, "/p", "", DATE, "n");
        pairs[3].1 = "md5".into();
        assert_eq!(verify(&headers(pairs), "/p", "", &secrets, NOW), Err(ViduSignatureError::Algorithm));
        let mut pairs = sign(SECRET, "/p", "", DATE, "n");
        pairs[2].1 = "x-request-nonce".into();
        assert_eq!(verify(&headers(pairs), "/p", "", &secrets, NOW), Err(ViduSignatureError::DateNotSigned));
        let mut pairs = sign(SECRET, "/p", "", DATE, "n");
        pairs[2].1 = "date;".repeat(MAX_SIGNED_HEADERS + 1);
        assert_eq!(verify(&headers(pairs), "/p", "", &secrets, NOW), Err(ViduSignatureError::TooManySignedHeaders));
    }

    #[test]
    fn clocks_at_the_ends_of_time_are_only_stale() {
        let secrets = HmacSecrets::new(SECRET, None);
        let h = headers(sign(SECRET, "/p", "", DATE, "n"));
        for now in [time::PrimitiveDateTime::MIN.assume_utc(), time::PrimitiveDateTime::MAX.assume_utc()] {
            assert_eq!(verify(&h, "/p", "", &secrets, now), Err(ViduSignatureError::Stale));
        }
        let mut pairs = sign(SECRET, "/p", "", "Fri, 31 Dec 9999 23:59:59 GMT", "n");
        pairs.truncate(6);
        assert_eq!(verify(&headers(pairs), "/p", "", &secrets, NOW), Err(ViduSignatureError::Stale));
    }
}
