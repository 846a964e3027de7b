//! Output links' cache: a job's current output URLs, kept in the dedupe table so a burst
//! of clicks on its links costs one provider read. Times are epoch seconds.

use serde::{Deserialize, Serialize};

use crate::domain::job::Job;

/// The most outputs one cached job holds.
pub const MAX_CACHED_OUTPUTS: usize = 100;
/// The largest encoding of a job's cached outputs (JSON), so the item stays well under
/// DynamoDB's 400 KB item limit.
pub const MAX_CACHED_BYTES: usize = 350 * 1024;
/// The longest job id a link or the cache takes.
pub const MAX_JOB_ID_BYTES: usize = 256;
/// The longest provider name a link or the cache takes.
pub const MAX_PROVIDER_BYTES: usize = 32;

/// One cached output URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedUrl {
    /// The provider's (signed) URL. A credential: never log it whole.
    pub url: String,
    /// When it stops working (epoch s), if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
}

/// A job's output URLs as last read from its provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedOutputs {
    /// The outputs, in the job's order (a link's index points into it).
    pub outputs: Vec<CachedUrl>,
    /// When they were read (epoch s).
    pub fetched_at: i64,
}

/// Why outputs cannot be cached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CacheBoundsError {
    /// More than [`MAX_CACHED_OUTPUTS`] outputs.
    #[error("{0} outputs: at most {MAX_CACHED_OUTPUTS} are cached")]
    TooManyOutputs(usize),
    /// The encoding is longer than [`MAX_CACHED_BYTES`].
    #[error("outputs of {0} bytes: at most {MAX_CACHED_BYTES} are cached")]
    TooLarge(usize),
}

impl CachedOutputs {
    /// A job's outputs as cached when read at `now` (epoch s).
    pub fn of_job(job: &Job, now: i64) -> Self {
        let outputs = job
            .outputs
            .iter()
            .map(|o| CachedUrl { url: o.url.clone(), expires_at: o.expires_at.map(|t| t.unix_timestamp()) })
            .collect();
        Self { outputs, fetched_at: now }
    }

    /// The URL at `index` if it can be handed out at `now`: one whose expiry is known
    /// must live at least `min_ttl_secs` more. One whose expiry is unknown is trusted
    /// only while it was read less than `min_ttl_secs` ago: the provider vouched for it
    /// then, and nothing says how long it lasts.
    pub fn fresh_for(&self, index: usize, now: i64, min_ttl_secs: i64) -> Option<&str> {
        let out = self.outputs.get(index)?;
        let fresh = match out.expires_at {
            Some(expires_at) => expires_at >= now.saturating_add(min_ttl_secs),
            None => now < self.fetched_at.saturating_add(min_ttl_secs),
        };
        fresh.then_some(out.url.as_str())
    }

    /// The outputs as stored (a JSON array), refused beyond the cache's bounds.
    pub fn encode_outputs(&self) -> Result<String, CacheBoundsError> {
        if self.outputs.len() > MAX_CACHED_OUTPUTS {
            return Err(CacheBoundsError::TooManyOutputs(self.outputs.len()));
        }
        // Serializing strings and integers cannot fail; an empty array would do if it did.
        let json = serde_json::to_string(&self.outputs).unwrap_or_else(|_| "[]".into());
        if json.len() > MAX_CACHED_BYTES {
            return Err(CacheBoundsError::TooLarge(json.len()));
        }
        Ok(json)
    }

    /// Reads stored outputs back; `None` when the text is not an encoding
    /// [`Self::encode_outputs`] could have written (a damaged item reads as a miss).
    pub fn decode_outputs(json: &str, fetched_at: i64) -> Option<Self> {
        if json.len() > MAX_CACHED_BYTES {
            return None;
        }
        let outputs: Vec<CachedUrl> = serde_json::from_str(json).ok()?;
        (outputs.len() <= MAX_CACHED_OUTPUTS).then_some(Self { outputs, fetched_at })
    }
}

/// Whether a provider name can appear in a link and a cache key: 1-32 characters of
/// `[a-z0-9_-]`.
pub fn valid_provider(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_PROVIDER_BYTES
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// The key of a job's cache item in the shared table, `link#<provider>#<job_id>`; `None`
/// for a provider name that is not [`valid_provider`] (it could hold `#` and make two
/// jobs share a key) or a job id that is empty or longer than [`MAX_JOB_ID_BYTES`].
pub fn cache_key(provider: &str, job_id: &str) -> Option<String> {
    let ok = valid_provider(provider) && !job_id.is_empty() && job_id.len() <= MAX_JOB_ID_BYTES;
    ok.then(|| format!("link#{provider}#{job_id}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(u: &str, expires_at: Option<i64>) -> CachedUrl {
        CachedUrl { url: u.into(), expires_at }
    }

    #[test]
    fn known_expiries_must_outlive_the_minimum() {
        let c = CachedOutputs {
            outputs: vec![url("https://a", Some(1_000)), url("https://b", Some(2_000))],
            fetched_at: 0,
        };
        assert_eq!(c.fresh_for(0, 400, 600), Some("https://a"), "exactly the minimum left");
        assert_eq!(c.fresh_for(0, 401, 600), None);
        assert_eq!(c.fresh_for(1, 401, 600), Some("https://b"));
        assert_eq!(c.fresh_for(2, 0, 0), None, "no such output");
        assert_eq!(c.fresh_for(0, i64::MAX, i64::MAX), None, "saturates");
        assert_eq!(c.fresh_for(0, i64::MIN, i64::MIN), Some("https://a"));
    }

    #[test]
    fn unknown_expiries_are_trusted_for_the_minimum_after_the_read() {
        let c = CachedOutputs { outputs: vec![url("https://a", None)], fetched_at: 1_000 };
        assert_eq!(c.fresh_for(0, 1_000, 600), Some("https://a"));
        assert_eq!(c.fresh_for(0, 1_599, 600), Some("https://a"));
        assert_eq!(c.fresh_for(0, 1_600, 600), None);
        let far = CachedOutputs { outputs: vec![url("https://a", None)], fetched_at: i64::MAX };
        assert_eq!(far.fresh_for(0, i64::MAX - 1, 600), Some("https://a"), "saturates");
    }

    #[test]
    fn encoding_round_trips_within_bounds() {
        let c = CachedOutputs { outputs: vec![url("https://a", Some(5)), url("https://b", None)], fetched_at: 7 };
        let json = c.encode_outputs().unwrap();
        assert_eq!(json, r#"[{"url":"https://a","expires_at":5},{"url":"https://b"}]"#);
        assert_eq!(CachedOutputs::decode_outputs(&json, 7), Some(c));
        assert_eq!(CachedOutputs::decode_outputs("not json", 7), None);
        assert_eq!(CachedOutputs::decode_outputs(r#"{"url":"x"}"#, 7), None);

        let many = CachedOutputs { outputs: vec![url("u", None); MAX_CACHED_OUTPUTS + 1], fetched_at: 0 };
        assert_eq!(many.encode_outputs(), Err(CacheBoundsError::TooManyOutputs(MAX_CACHED_OUTPUTS + 1)));
        let many_json = serde_json::to_string(&many.outputs).unwrap();
        assert_eq!(CachedOutputs::decode_outputs(&many_json, 0), None);

        let big = CachedOutputs { outputs: vec![url(&"x".repeat(MAX_CACHED_BYTES), None)], fetched_at: 0 };
        assert!(matches!(big.encode_outputs(), Err(CacheBoundsError::TooLarge(_))));
        let big_json = serde_json::to_string(&big.outputs).unwrap();
        assert_eq!(CachedOutputs::decode_outputs(&big_json, 0), None);
    }

    #[test]
    fn cache_keys_name_one_job() {
        assert_eq!(cache_key("replicate", "a#b").as_deref(), Some("link#replicate#a#b"));
        assert_eq!(cache_key("re#p", "b"), None, "a provider name cannot shift bytes into the job id");
        assert_eq!(cache_key("", "b"), None);
        assert_eq!(cache_key("Katalo", "b"), None);
        assert_eq!(cache_key(&"p".repeat(MAX_PROVIDER_BYTES + 1), "b"), None);
        assert_eq!(cache_key("p", ""), None);
        assert!(cache_key("p", &"j".repeat(MAX_JOB_ID_BYTES)).is_some());
        assert_eq!(cache_key("p", &"j".repeat(MAX_JOB_ID_BYTES + 1)), None);
    }
}
