//! A provider's read budget, shared by every function that reads its API (the worker and
//! the output links): at most a number of reads in each one-second window, counted in the
//! dedupe table, so the provider's per-minute limit holds however many instances run.

use crate::domain::link_cache::valid_provider;

/// The `kind` of a budget window's item in the shared table.
pub const BUDGET_KIND: &str = "budget";

/// How long a window's item is kept after the window (its TTL; a window is never read
/// again once it has passed).
pub const WINDOW_RETENTION_SECS: i64 = 120;

/// The key of `provider`'s window starting at `window_s` (epoch s),
/// `budget#<provider>#<window_s>`; `None` for a provider name that is not valid.
pub fn budget_key(provider: &str, window_s: i64) -> Option<String> {
    valid_provider(provider).then(|| format!("{BUDGET_KIND}#{provider}#{window_s}"))
}

/// The reads of one second that keep `per_minute` (at least one).
pub fn per_second(per_minute: u32) -> u32 {
    (per_minute / 60).max(1)
}

/// The window a time falls in (epoch s), and the milliseconds until the next one.
pub fn window(now_ms: i64) -> (i64, i64) {
    (now_ms.div_euclid(1000), 1000 - now_ms.rem_euclid(1000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_seconds_and_shares_keep_the_minute() {
        assert_eq!(window(1_795_435_200_250), (1_795_435_200, 750));
        assert_eq!(window(-1), (-1, 1));
        assert_eq!((per_second(1_200), per_second(3_000), per_second(59), per_second(0)), (20, 50, 1, 1));
        assert_eq!(budget_key("katalo", 7).as_deref(), Some("budget#katalo#7"));
        assert_eq!(budget_key("ka#talo", 7), None, "a name with # could meet another key");
    }
}
