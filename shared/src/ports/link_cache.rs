//! The output links' cache: a job's current output URLs and the lease that lets one
//! caller at a time refresh them from the provider. It lives in the dedupe table (item
//! `link#<provider>#<job_id>`, [`crate::domain::link_cache::cache_key`]).

use async_trait::async_trait;

use crate::domain::link_cache::CachedOutputs;
use crate::ports::StoreError;

/// Where output links find a job's URLs without asking its provider on every click.
///
/// Provider names must be [`crate::domain::link_cache::valid_provider`] and job ids 1-256
/// bytes: other names are refused with a [`StoreError`], as are outputs beyond
/// [`crate::domain::link_cache::MAX_CACHED_OUTPUTS`] / [`crate::domain::link_cache::MAX_CACHED_BYTES`].
#[async_trait]
pub trait LinkCache: Send + Sync {
    /// The cached outputs of a job, if any, whatever their age. An item holding only a
    /// lease, or outputs that do not read back, has none.
    async fn get_outputs(&self, provider: &str, job_id: &str) -> Result<Option<CachedOutputs>, StoreError>;

    /// Replaces the cached outputs and frees the refresh lease; the item is removed by
    /// TTL at `expires_at` (epoch s).
    async fn put_outputs(
        &self,
        provider: &str,
        job_id: &str,
        outputs: &CachedOutputs,
        expires_at: i64,
    ) -> Result<(), StoreError>;

    /// Takes the job's refresh lease with `token` until `until_ms` if nobody holds a live
    /// one at `now_ms` (a lease is live while `now_ms <= until_ms`, as the worker's is),
    /// creating the item if missing and keeping cached outputs. `true` = taken. An item
    /// the lease creates is removed by TTL once the lease has ended.
    async fn lease_refresh(
        &self,
        provider: &str,
        job_id: &str,
        token: &str,
        until_ms: i64,
        now_ms: i64,
    ) -> Result<bool, StoreError>;

    /// Frees the job's refresh lease if `token` holds it: a refresh that ended without
    /// caching (the provider failed, the job has no outputs, the put failed) lets the next
    /// request read the provider at once instead of waiting for the lease to run out.
    /// Cached outputs stay; a lease someone else holds, or none, is left as it is.
    async fn release_refresh(&self, provider: &str, job_id: &str, token: &str) -> Result<(), StoreError>;
}

/// The job's cache key, or the [`StoreError`] every adapter answers for a name the
/// cache refuses.
pub fn link_cache_key(provider: &str, job_id: &str) -> Result<String, StoreError> {
    crate::domain::link_cache::cache_key(provider, job_id).ok_or_else(|| {
        StoreError(format!(
            "link cache: provider name must be 1-32 of [a-z0-9_-] and job id 1-256 bytes (got a {}-byte job id)",
            job_id.len()
        ))
    })
}

/// The stored form of `outputs`, or the [`StoreError`] every adapter answers for outputs
/// beyond the cache's bounds.
pub fn encode_cached_outputs(outputs: &CachedOutputs) -> Result<String, StoreError> {
    outputs.encode_outputs().map_err(|e| StoreError(format!("link cache: {e}")))
}

/// The epoch second at which an item created by a lease ending at `until_ms` may go.
pub fn lease_item_expiry(until_ms: i64) -> i64 {
    until_ms.div_euclid(1000).saturating_add(1)
}
