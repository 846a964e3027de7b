//! The worker's per-provider pause: when a provider says to slow down (a 429, or a
//! 5xx with `Retry-After`), this instance stops calling it until then, and every record
//! for that provider waits instead of taking its own 429.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// Until when (epoch ms) each provider is not to be called.
#[derive(Debug, Default)]
pub(super) struct Gates {
    until_ms: Mutex<HashMap<&'static str, i64>>,
}

impl Gates {
    /// Pauses calls to `provider` until `until_ms` (a later pause wins).
    pub(super) fn close(&self, provider: &'static str, until_ms: i64) {
        let mut gates = self.until_ms.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let until = gates.entry(provider).or_insert(until_ms);
        *until = (*until).max(until_ms);
    }

    /// How long `provider` is still paused at `now_ms`, if it is.
    pub(super) fn closed_for(&self, provider: &str, now_ms: i64) -> Option<Duration> {
        let gates = self.until_ms.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let left = gates.get(provider)?.saturating_sub(now_ms);
        u64::try_from(left).ok().filter(|ms| *ms > 0).map(Duration::from_millis)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gate_closes_until_the_latest_time_and_only_for_its_provider() {
        let gates = Gates::default();
        assert_eq!(gates.closed_for("katalo", 0), None);
        gates.close("katalo", 5_000);
        gates.close("katalo", 3_000);
        assert_eq!(gates.closed_for("katalo", 1_000), Some(Duration::from_millis(4_000)));
        assert_eq!(gates.closed_for("replicate", 1_000), None);
        assert_eq!(gates.closed_for("katalo", 5_000), None, "open again at its time");
        assert_eq!(gates.closed_for("katalo", i64::MIN), Some(Duration::from_millis(i64::MAX.unsigned_abs())));
    }
}
