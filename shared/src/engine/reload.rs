//! Rebuilding what a function built from its secrets, when the secret store changes: the
//! receiver's sources, the worker's reconcilers and link minter, the links' service. The
//! composition root implements [`Reload`] over the store; [`Reloading`] holds what is in
//! use and asks on the period and after a refusal.

use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use tracing::{info, warn};

/// The longest a re-read of the secrets may hold a request or a batch up; past it the
/// work goes on with the secrets in use (the receiver's `Timeout` counts it).
pub const SECRET_RELOAD_BUDGET: Duration = Duration::from_secs(2);

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

/// The `T` in use, and what rebuilds it.
pub struct Reloading<T> {
    current: RwLock<Arc<T>>,
    reload: Option<Arc<dyn Reload<T>>>,
    /// What the secrets are, for the logs.
    what: &'static str,
}

impl<T> Reloading<T> {
    /// `value`, never rebuilt until [`Self::with_reload`].
    pub fn new(value: T, what: &'static str) -> Self {
        Self { current: RwLock::new(Arc::new(value)), reload: None, what }
    }

    /// Rebuilt through `reload`.
    pub fn with_reload(self, reload: Option<Arc<dyn Reload<T>>>) -> Self {
        Self { reload, ..self }
    }

    /// What is in use.
    pub fn current(&self) -> Arc<T> {
        self.current.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Replaces what is in use.
    pub fn set(&self, value: T) {
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(value);
    }

    /// Whether the periodic re-read is due at `now_ms` (read only when something can
    /// reload: the clock stays off the hot path otherwise).
    pub fn due(&self, now_ms: impl FnOnce() -> i64) -> bool {
        self.reload.as_ref().is_some_and(|r| r.due(now_ms()))
    }

    /// Re-reads the secrets (within [`SECRET_RELOAD_BUDGET`]) and puts what they build in
    /// use; it, when they changed.
    pub async fn reload(&self) -> Option<Arc<T>> {
        let reload = self.reload.as_ref()?;
        let fresh = match tokio::time::timeout(SECRET_RELOAD_BUDGET, reload.reload()).await {
            Ok(fresh) => Arc::new(fresh?),
            Err(_) => {
                warn!(what = self.what, "re-reading the secrets took too long; keeping the ones in use");
                return None;
            }
        };
        info!(what = self.what, "the secrets changed in the secret store: reloaded");
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = fresh.clone();
        Some(fresh)
    }
}
