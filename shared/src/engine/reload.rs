//! Rebuilding what a function built from its secrets, when the secret store changes: the
//! receiver's sources, the worker's reconcilers, the links' service. The composition
//! root implements it over the store; the engine asks on the period and after a refusal.

use async_trait::async_trait;

/// Rebuilds a `T` from freshly read secrets, so a rotated (or revoked) secret takes effect
/// without a redeploy.
#[async_trait]
pub trait Reload<T>: Send + Sync {
    /// A new `T`, if the secrets may be read again now (the implementation limits how
    /// often) and changed since the last read; `None` otherwise.
    async fn reload(&self) -> Option<T>;

    /// Whether the secrets are due for their periodic re-read at `now_ms` (also without a
    /// refusal, so a revocation holds within the period). Cheap: it is asked on every
    /// request.
    fn due(&self, _now_ms: i64) -> bool {
        false
    }
}
