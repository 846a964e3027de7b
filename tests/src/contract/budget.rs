//! The [`ReadBudget`](genhook::ports::budget::ReadBudget) contract: reads counted per
//! provider and one-second window, up to a limit, across everyone sharing the store.

use super::Store;
use super::store::T0;

/// A window (epoch s) near the contract's epoch.
const W: i64 = T0 / 1000;

async fn take(s: &dyn Store, provider: &str, window_s: i64, limit: u32) -> bool {
    s.take_read(provider, window_s, limit).await.expect("take_read")
}

/// A window grants exactly `limit` reads; the next window grants its own.
pub async fn budget_grants_the_limit_per_window(s: &dyn Store) {
    let granted: Vec<bool> = futures_util::future::join_all((0..5).map(|_| take(s, "katalo", W, 3))).await;
    assert_eq!(granted.iter().filter(|g| **g).count(), 3, "{granted:?}");
    assert!(!take(s, "katalo", W, 3).await, "the window stays full");
    assert!(take(s, "katalo", W + 1, 3).await, "the next second has its own");
    assert!(take(s, "katalo", W, 4).await, "a larger limit grants one more in the same window");
}

/// Providers have separate budgets, and a limit of 0 grants nothing.
pub async fn budget_providers_are_independent(s: &dyn Store) {
    assert!(take(s, "katalo", W + 10, 1).await);
    assert!(!take(s, "katalo", W + 10, 1).await);
    assert!(take(s, "replicate", W + 10, 1).await);
    assert!(!take(s, "apimp", W + 10, 0).await);
}

/// A provider name that could meet another key is refused as an error.
pub async fn budget_refuses_an_invalid_provider(s: &dyn Store) {
    assert!(s.take_read("ka#talo", W, 3).await.is_err());
    assert!(s.take_read("", W, 3).await.is_err());
}
