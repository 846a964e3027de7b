//! Signed output URLs: when they expire (read from the URL itself when the API does not
//! say) and how to show them in logs without leaking the credential in the query.

use time::{Duration, OffsetDateTime, PrimitiveDateTime, format_description::FormatItem, macros::format_description};
use url::Url;

const AMZ_DATE: &[FormatItem<'static>] = format_description!("[year][month][day]T[hour][minute][second]Z");

/// Expiry of a pre-signed URL, read from the signing parameters in its query:
/// S3 SigV4 (`X-Amz-Date` + `X-Amz-Expires`), GCS V4 (`X-Goog-Date` + `X-Goog-Expires`),
/// CloudFront and GCS V2 (`Expires=` epoch seconds) and Azure SAS (`se=`).
/// Parameter names match case-insensitively. `None` when the URL carries none of them.
pub fn expiry_from_url(raw: &str) -> Option<OffsetDateTime> {
    let url = Url::parse(raw).ok()?;
    let mut date = None;
    let mut expires_in = None;
    let mut expires_at = None;
    let mut azure_se = None;
    for (k, v) in url.query_pairs() {
        match k.to_ascii_lowercase().as_str() {
            "x-amz-date" | "x-goog-date" => date = parse_amz_date(&v),
            "x-amz-expires" | "x-goog-expires" => expires_in = v.parse::<i64>().ok(),
            "expires" => expires_at = v.parse::<i64>().ok().and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok()),
            "se" => azure_se = parse_instant(&v),
            _ => {}
        }
    }
    match (date, expires_in) {
        (Some(d), Some(secs)) => Some(d + Duration::seconds(secs)),
        _ => expires_at.or(azure_se),
    }
}

fn parse_amz_date(v: &str) -> Option<OffsetDateTime> {
    PrimitiveDateTime::parse(v, AMZ_DATE).ok().map(PrimitiveDateTime::assume_utc)
}

/// Parses an instant given as RFC 3339 text or as epoch seconds (a number or a numeric string).
pub fn parse_instant(v: &str) -> Option<OffsetDateTime> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<i64>() {
        return OffsetDateTime::from_unix_timestamp(secs).ok();
    }
    OffsetDateTime::parse(v, &time::format_description::well_known::Rfc3339).ok()
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

    #[test]
    fn redaction_drops_the_credential() {
        assert_eq!(redact("https://b/o.png?X-Amz-Signature=secret"), "https://b/o.png?<redacted>");
        assert_eq!(redact("https://b/o.png#frag"), "https://b/o.png?<redacted>");
        assert_eq!(redact("https://b/o.png"), "https://b/o.png");
    }
}
