//! Signed output URLs in the shape of S3 SigV4 pre-signed URLs, so `expiry_from_url`
//! reads their lifetime, and they really stop working when it ends.
//!
//! The signature is a hex HMAC-SHA256 over `path \n X-Amz-Date \n X-Amz-Expires` with a
//! key drawn at random when the simulator starts (it is not AWS's algorithm; only the
//! parameter names and formats are S3's).

use std::time::Duration;

use time::format_description::FormatItem;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};

const AMZ_DATE: &[FormatItem<'static>] = format_description!("[year][month][day]T[hour][minute][second]Z");
const AMZ_DAY: &[FormatItem<'static>] = format_description!("[year][month][day]");

/// Why a file URL is refused (answered 403 like S3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Denied {
    /// A signing parameter is missing.
    Missing,
    /// The signature does not match the path and parameters.
    BadSignature,
    /// Signed correctly, but its lifetime is over.
    Expired {
        /// When it expired.
        at: OffsetDateTime,
        /// Its `X-Amz-Expires`.
        expires_secs: u64,
    },
}

/// Mints and checks signed URLs.
pub(crate) struct UrlSigner {
    key: [u8; 32],
    ttl_secs: u64,
}

impl std::fmt::Debug for UrlSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UrlSigner").field("ttl_secs", &self.ttl_secs).finish_non_exhaustive()
    }
}

impl UrlSigner {
    /// A signer with a fresh random key; URLs live `ttl` (whole seconds, at least one).
    pub(crate) fn new(ttl: Duration) -> Self {
        Self::with_key(rand::random(), ttl)
    }

    /// A signer with a given key.
    pub(crate) fn with_key(key: [u8; 32], ttl: Duration) -> Self {
        Self { key, ttl_secs: ttl.as_secs().max(1) }
    }

    /// The query string for `path` signed at `now` (truncated to the second, as
    /// `X-Amz-Date` is), and the instant it expires.
    pub(crate) fn sign(&self, path: &str, now: OffsetDateTime) -> (String, OffsetDateTime) {
        let now = now.to_offset(UtcOffset::UTC);
        let now = now.replace_nanosecond(0).unwrap_or(now);
        let date = now.format(AMZ_DATE).unwrap_or_default();
        let day = now.format(AMZ_DAY).unwrap_or_default();
        let expires = self.ttl_secs.to_string();
        let signature = self.signature(path, &date, &expires);
        let query = format!(
            "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=SIMULATOR%2F{day}%2Fsim-local-1%2Fs3%2Faws4_request\
             &X-Amz-Date={date}&X-Amz-Expires={expires}&X-Amz-SignedHeaders=host&X-Amz-Signature={signature}"
        );
        (query, now + time::Duration::seconds(i64::try_from(self.ttl_secs).unwrap_or(i64::MAX)))
    }

    /// Checks a request for `path` with raw `query` at `now`.
    pub(crate) fn check(&self, path: &str, query: &str, now: OffsetDateTime) -> Result<(), Denied> {
        let param = |name: &str| {
            query
                .split('&')
                .filter_map(|pair| pair.split_once('='))
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v)
        };
        let (Some(date), Some(expires), Some(signature)) =
            (param("X-Amz-Date"), param("X-Amz-Expires"), param("X-Amz-Signature"))
        else {
            return Err(Denied::Missing);
        };
        if !signature.eq_ignore_ascii_case(&self.signature(path, date, expires)) {
            return Err(Denied::BadSignature);
        }
        // Both were signed by us, so they parse; treat anything else as tampering.
        let signed_at = PrimitiveDateTime::parse(date, AMZ_DATE).map_err(|_| Denied::BadSignature)?.assume_utc();
        let expires_secs: u64 = expires.parse().map_err(|_| Denied::BadSignature)?;
        let at = signed_at + time::Duration::seconds(i64::try_from(expires_secs).unwrap_or(i64::MAX));
        if now >= at { Err(Denied::Expired { at, expires_secs }) } else { Ok(()) }
    }

    fn signature(&self, path: &str, date: &str, expires: &str) -> String {
        let message = format!("{path}\n{date}\n{expires}");
        hex::encode(genhook::toolkit::auth::hmac::hmac_sha256(&self.key, message.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-11-23 12:00:00.75 UTC);

    fn signer() -> UrlSigner {
        UrlSigner::with_key([7; 32], Duration::from_secs(900))
    }

    #[test]
    fn minted_urls_carry_their_expiry_like_s3() {
        let (query, expires_at) = signer().sign("/files/job_1/1.png", NOW);
        assert_eq!(expires_at, datetime!(2026-11-23 12:15:00 UTC), "X-Amz-Date is truncated to the second");
        assert!(query.contains("X-Amz-Date=20261123T120000Z&X-Amz-Expires=900&"), "{query}");
        let url = format!("http://127.0.0.1:1/files/job_1/1.png?{query}");
        assert_eq!(genhook::toolkit::http::url_expiry::expiry_from_url(&url), Some(expires_at));
    }

    #[test]
    fn valid_until_expiry_then_denied() {
        let s = signer();
        let (query, expires_at) = s.sign("/files/job_1/1.png", NOW);
        assert_eq!(s.check("/files/job_1/1.png", &query, NOW), Ok(()));
        assert_eq!(s.check("/files/job_1/1.png", &query, expires_at - time::Duration::SECOND), Ok(()));
        assert_eq!(
            s.check("/files/job_1/1.png", &query, expires_at),
            Err(Denied::Expired { at: expires_at, expires_secs: 900 })
        );
    }

    #[test]
    fn tampering_is_denied() {
        let s = signer();
        let (query, _) = s.sign("/files/job_1/1.png", NOW);
        assert_eq!(s.check("/files/job_2/1.png", &query, NOW), Err(Denied::BadSignature));
        let longer = query.replace("X-Amz-Expires=900", "X-Amz-Expires=9000");
        assert_eq!(s.check("/files/job_1/1.png", &longer, NOW), Err(Denied::BadSignature));
        let other_key = UrlSigner::with_key([8; 32], Duration::from_secs(900));
        assert_eq!(other_key.check("/files/job_1/1.png", &query, NOW), Err(Denied::BadSignature));
        assert_eq!(s.check("/files/job_1/1.png", "", NOW), Err(Denied::Missing));
        assert_eq!(s.check("/files/job_1/1.png", "X-Amz-Date=x&X-Amz-Expires=1", NOW), Err(Denied::Missing));
    }

    #[test]
    fn ttl_is_at_least_a_second() {
        let (query, at) = UrlSigner::with_key([1; 32], Duration::ZERO).sign("/p", NOW);
        assert!(query.contains("X-Amz-Expires=1&"));
        assert_eq!(at, datetime!(2026-11-23 12:00:01 UTC));
    }
}
