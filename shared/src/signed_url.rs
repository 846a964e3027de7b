//! Signed output URLs: when they expire (read from the URL itself when the API does not
//! say) and how to show them in logs without leaking the credential in the query.

use serde_json::Value;
use time::{Duration, OffsetDateTime, PrimitiveDateTime, format_description::FormatItem, macros::format_description};
use url::Url;

use crate::domain::clock::{MAX_INSTANT, MIN_INSTANT, clamp_instant};

const AMZ_DATE: &[FormatItem<'static>] = format_description!("[year][month][day]T[hour][minute][second]Z");

/// Expiry of a pre-signed URL, read from the signing parameters in its query:
/// S3 SigV4 (`X-Amz-Date` + `X-Amz-Expires`), GCS V4 (`X-Goog-Date` + `X-Goog-Expires`),
/// CloudFront and GCS V2 (`Expires=` epoch seconds) and Azure SAS (`se=`).
/// Parameter names match case-insensitively. `None` when the URL carries none of them.
///
/// The values are the provider's and may be anything: integers of any size saturate
/// (see [`offset_by_secs`]), so the result is always a UTC instant within
/// [`MIN_INSTANT`]..=[`MAX_INSTANT`]: an absurdly long expiry reads as "9999", an
/// absurdly negative one as "already expired".
pub fn expiry_from_url(raw: &str) -> Option<OffsetDateTime> {
    let url = Url::parse(raw).ok()?;
    let mut date = None;
    let mut expires_in = None;
    let mut expires_at = None;
    let mut azure_se = None;
    for (k, v) in url.query_pairs() {
        match k.to_ascii_lowercase().as_str() {
            "x-amz-date" | "x-goog-date" => date = parse_amz_date(&v),
            "x-amz-expires" | "x-goog-expires" => expires_in = parse_secs(&v),
            "expires" => expires_at = parse_secs(&v).map(from_epoch_secs),
            "se" => azure_se = parse_instant(&v),
            _ => {}
        }
    }
    match (date, expires_in) {
        (Some(d), Some(secs)) => Some(offset_by_secs(d, secs)),
        _ => expires_at.or(azure_se),
    }
}

fn parse_amz_date(v: &str) -> Option<OffsetDateTime> {
    PrimitiveDateTime::parse(v, AMZ_DATE).ok().map(|t| clamp_instant(t.assume_utc()))
}

/// Parses an instant given as RFC 3339 text or as epoch seconds (a number or a numeric
/// string). The result is in UTC and saturates at [`MIN_INSTANT`] / [`MAX_INSTANT`].
pub fn parse_instant(v: &str) -> Option<OffsetDateTime> {
    let v = v.trim();
    if let Some(secs) = parse_secs(v) {
        return Some(from_epoch_secs(secs));
    }
    OffsetDateTime::parse(v, &time::format_description::well_known::Rfc3339).ok().map(clamp_instant)
}

/// An instant from a JSON value: RFC 3339 or epoch-seconds text, or a number of epoch
/// seconds (saturating, fractions dropped).
pub fn instant_from_json(v: &Value) -> Option<OffsetDateTime> {
    match v {
        Value::String(s) => parse_instant(s),
        Value::Number(_) => secs_from_json(v).map(from_epoch_secs),
        _ => None,
    }
}

/// Whole seconds from a JSON number or numeric string, saturating at `i64`'s bounds
/// (fractions dropped); `None` for anything else.
pub fn secs_from_json(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_u64().map(|_| i64::MAX))
            // `as` saturates; JSON numbers are finite, the check says so anyway.
            .or_else(|| n.as_f64().filter(|f| f.is_finite()).map(|f| f as i64)),
        Value::String(s) => parse_secs(s),
        _ => None,
    }
}

/// `base` moved by `secs` seconds, in UTC, saturating at [`MIN_INSTANT`] /
/// [`MAX_INSTANT`] instead of overflowing.
pub fn offset_by_secs(base: OffsetDateTime, secs: i64) -> OffsetDateTime {
    match base.checked_add(Duration::seconds(secs)) {
        Some(t) => clamp_instant(t),
        None if secs > 0 => MAX_INSTANT,
        None => MIN_INSTANT,
    }
}

/// Epoch seconds as an instant, saturating like [`offset_by_secs`].
pub fn from_epoch_secs(secs: i64) -> OffsetDateTime {
    offset_by_secs(OffsetDateTime::UNIX_EPOCH, secs)
}

/// An optionally signed decimal integer, saturating at `i64`'s bounds (a 30-digit
/// expiry means "far away", not "unknown"); `None` when it is not one.
fn parse_secs(v: &str) -> Option<i64> {
    let v = v.trim();
    let (negative, digits) = match v.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, v.strip_prefix('+').unwrap_or(v)),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(v.parse::<i64>().unwrap_or(if negative { i64::MIN } else { i64::MAX }))
}

/// The URL with its query and fragment replaced by `?<redacted>`, safe for logs.
pub fn redact(raw: &str) -> String {
    let cut = raw.find(['?', '#']).unwrap_or(raw.len());
    if cut == raw.len() { raw.to_string() } else { format!("{}?<redacted>", &raw[..cut]) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn s3_sigv4() {
        let u = "https://b.s3.amazonaws.com/o.png?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AK%2F20261123%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20261123T120000Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=host&X-Amz-Signature=abc";
        assert_eq!(expiry_from_url(u), Some(datetime!(2026-11-23 13:00:00 UTC)));
    }

    #[test]
    fn gcs_v4_any_case() {
        let u = "https://storage.googleapis.com/b/o.png?x-goog-algorithm=GOOG4-RSA-SHA256&x-goog-date=20261123T120000Z&x-goog-expires=900&x-goog-signature=ff";
        assert_eq!(expiry_from_url(u), Some(datetime!(2026-11-23 12:15:00 UTC)));
    }

    #[test]
    fn cloudfront_and_gcs_v2_expires() {
        let u = "https://d111.cloudfront.net/o.png?Expires=1795435200&Signature=x&Key-Pair-Id=K";
        assert_eq!(expiry_from_url(u), OffsetDateTime::from_unix_timestamp(1_795_435_200).ok());
    }

    #[test]
    fn azure_sas() {
        let u = "https://a.blob.core.windows.net/c/o.png?sv=2022-11-02&se=2026-11-23T12%3A30%3A00Z&sig=x";
        assert_eq!(expiry_from_url(u), Some(datetime!(2026-11-23 12:30:00 UTC)));
    }

    #[test]
    fn unsigned_or_garbage_has_no_expiry() {
        assert_eq!(expiry_from_url("https://cdn.example.com/o.png"), None);
        assert_eq!(expiry_from_url("https://x/o.png?X-Amz-Date=nope&X-Amz-Expires=60"), None);
        assert_eq!(expiry_from_url("not a url"), None);
    }

    #[test]
    fn instants() {
        assert_eq!(parse_instant("2026-11-23T12:00:00Z"), Some(datetime!(2026-11-23 12:00:00 UTC)));
        assert_eq!(parse_instant("2026-11-23T13:00:00+01:00"), Some(datetime!(2026-11-23 12:00:00 UTC)));
        assert_eq!(parse_instant("1795435200"), OffsetDateTime::from_unix_timestamp(1_795_435_200).ok());
        assert_eq!(parse_instant("tomorrow"), None);
    }

    // Each of these panicked before (`OffsetDateTime + Duration` overflow).
    #[test]
    fn huge_relative_expiries_saturate() {
        let s3 =
            |secs: &str| expiry_from_url(&format!("https://b/o.png?X-Amz-Date=20261123T120000Z&X-Amz-Expires={secs}"));
        assert_eq!(s3("9223372036854775807"), Some(MAX_INSTANT));
        assert_eq!(s3("100000000000000000"), Some(MAX_INSTANT));
        assert_eq!(s3("99999999999999999999999999999"), Some(MAX_INSTANT));
        assert_eq!(s3("-9223372036854775808"), Some(MIN_INSTANT));
        assert_eq!(s3("-60"), Some(datetime!(2026-11-23 11:59:00 UTC)));
        assert_eq!(s3("1e20"), None, "not an integer: unknown");
        let gcs = "https://s/o?X-Goog-Date=20261123T120000Z&X-Goog-Expires=1000000000000000000";
        assert_eq!(expiry_from_url(gcs), Some(MAX_INSTANT));
    }

    // Each of these panicked before in `clock::rfc3339` (year -9999 has no RFC 3339 form).
    #[test]
    fn extreme_absolute_expiries_stay_formattable() {
        let t = expiry_from_url("https://d/o.png?Expires=-377705116800").unwrap();
        assert_eq!((t, crate::domain::clock::rfc3339(t).as_str()), (MIN_INSTANT, "0000-01-01T00:00:00Z"));
        assert_eq!(expiry_from_url("https://d/o.png?Expires=9223372036854775807"), Some(MAX_INSTANT));
        assert_eq!(parse_instant("-377705116800"), Some(MIN_INSTANT));
        assert_eq!(parse_instant("123456789012345678901234567890"), Some(MAX_INSTANT));
        assert_eq!(parse_instant("0000-01-01T00:00:00+01:00"), Some(MIN_INSTANT));
        assert_eq!(parse_instant("9999-12-31T23:59:59-01:00"), Some(MAX_INSTANT));
        let se = "https://a/c/o?se=0000-01-01T00%3A00%3A00%2B23%3A59&sig=x";
        assert_eq!(expiry_from_url(se).map(crate::domain::clock::rfc3339).as_deref(), Some("0000-01-01T00:00:00Z"));
    }

    #[test]
    fn instants_from_json() {
        use serde_json::json;
        assert_eq!(instant_from_json(&json!(1_795_435_200)), OffsetDateTime::from_unix_timestamp(1_795_435_200).ok());
        assert_eq!(instant_from_json(&json!(1_795_435_200.9)), OffsetDateTime::from_unix_timestamp(1_795_435_200).ok());
        assert_eq!(instant_from_json(&json!(u64::MAX)), Some(MAX_INSTANT));
        assert_eq!(instant_from_json(&json!(-1e300)), Some(MIN_INSTANT));
        assert_eq!(instant_from_json(&json!("2026-11-23T12:00:00Z")), Some(datetime!(2026-11-23 12:00:00 UTC)));
        assert_eq!(instant_from_json(&json!(null)), None);
        assert_eq!(secs_from_json(&json!("-5")), Some(-5));
        assert_eq!(secs_from_json(&json!("5s")), None);
    }

    #[test]
    fn redaction_drops_the_credential() {
        assert_eq!(redact("https://b/o.png?X-Amz-Signature=secret"), "https://b/o.png?<redacted>");
        assert_eq!(redact("https://b/o.png#frag"), "https://b/o.png?<redacted>");
        assert_eq!(redact("https://b/o.png"), "https://b/o.png");
    }
}
