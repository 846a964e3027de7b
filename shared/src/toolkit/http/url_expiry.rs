//! When a signed output URL expires: read from the URL's own signing parameters when
//! the API does not say, or from the API's expiry fields (an instant, or seconds from
//! now), always as an instant genhook can write.

use serde_json::Value;
use time::{OffsetDateTime, PrimitiveDateTime, format_description::FormatItem, macros::format_description};
use url::Url;

use crate::domain::clock::{clamp_instant, from_epoch_secs, offset_by_secs};

const AMZ_DATE: &[FormatItem<'static>] = format_description!("[year][month][day]T[hour][minute][second]Z");

/// Expiry of a pre-signed URL, read from the signing parameters in its query:
/// S3 SigV4 (`X-Amz-Date` + `X-Amz-Expires`), GCS V4 (`X-Goog-Date` + `X-Goog-Expires`),
/// CloudFront and GCS V2 (`Expires=` epoch seconds) and Azure SAS (`se=`).
/// Parameter names match case-insensitively. `None` when the URL carries none of them.
///
/// The values are the provider's and may be anything: integers of any size saturate
/// (see [`offset_by_secs`]), so the result is always a UTC instant within
/// [`MIN_INSTANT`](crate::domain::clock::MIN_INSTANT)..=[`MAX_INSTANT`](crate::domain::clock::MAX_INSTANT): an absurdly long expiry reads as "9999", an
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
/// string). The result is in UTC and saturates at [`MIN_INSTANT`](crate::domain::clock::MIN_INSTANT) / [`MAX_INSTANT`](crate::domain::clock::MAX_INSTANT).
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

#[cfg(test)]
mod tests;
