//! The port of a provider's shared read budget ([`crate::domain::budget`]).

use async_trait::async_trait;

use super::StoreError;

/// Counts a provider's reads per one-second window, across every function and instance.
#[async_trait]
pub trait ReadBudget: Send + Sync {
    /// Takes one read of `provider` in the window starting at `window_s` (epoch s) if
    /// fewer than `limit` were taken in it; `false` when the window is full.
    async fn take_read(&self, provider: &str, window_s: i64, limit: u32) -> Result<bool, StoreError>;
}
