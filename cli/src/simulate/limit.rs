//! The API's rate limit: a token bucket per API key.

use std::time::{Duration, Instant};

/// A token bucket refilled at `per_minute / 60` tokens a second, holding at most ten
/// seconds' worth (and at least one), so short bursts pass and sustained overuse is refused.
///
/// Kept as its "theoretical arrival time" (the GCRA form of a token bucket) in exact
/// integer time, so no rounding lets an extra request through or refuses a due one.
#[derive(Debug, Clone)]
pub(crate) struct TokenBucket {
    /// Time for one token to refill.
    interval: Duration,
    /// How far ahead of now `tat` may run: `interval * (capacity - 1)`.
    tolerance: Duration,
    /// When the bucket would be full again, given the requests taken so far.
    tat: Instant,
}

impl TokenBucket {
    /// A full bucket for `per_minute` requests a minute (at least one), starting at `now`.
    pub(crate) fn per_minute(per_minute: u32, now: Instant) -> Self {
        let per_minute = per_minute.max(1);
        let capacity = per_minute.div_ceil(6);
        let interval = Duration::from_secs(60) / per_minute;
        Self { interval, tolerance: interval * (capacity - 1), tat: now }
    }

    /// The most requests that pass at once.
    #[cfg(test)]
    fn capacity(&self) -> u32 {
        (self.tolerance.as_nanos() / self.interval.as_nanos()) as u32 + 1
    }

    /// Takes a token at `now`, or says how long until one is available.
    pub(crate) fn try_take(&mut self, now: Instant) -> Result<(), Duration> {
        let tat = self.tat.max(now);
        let ahead = tat - now;
        if ahead > self.tolerance {
            return Err(ahead - self.tolerance);
        }
        self.tat = tat + self.interval;
        Ok(())
    }
}

/// Whole seconds to announce in `Retry-After` / `retry_after` for a wait (at least 1).
pub(crate) fn retry_after_secs(wait: Duration) -> u64 {
    wait.as_secs_f64().ceil().max(1.0) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bursts_up_to_ten_seconds_then_refills() {
        let t0 = Instant::now();
        let mut b = TokenBucket::per_minute(1200, t0); // 20/s, burst 200
        for _ in 0..200 {
            assert!(b.try_take(t0).is_ok());
        }
        let wait = b.try_take(t0).unwrap_err();
        assert_eq!(wait, Duration::from_millis(50));
        assert!(b.try_take(t0 + Duration::from_millis(50)).is_ok());
        assert!(b.try_take(t0 + Duration::from_millis(50)).is_err());
        // A long idle spell refills only up to capacity.
        let later = t0 + Duration::from_secs(3600);
        for _ in 0..200 {
            assert!(b.try_take(later).is_ok());
        }
        assert!(b.try_take(later).is_err());
    }

    #[test]
    fn tiny_limits_allow_one_then_say_when() {
        let t0 = Instant::now();
        let mut b = TokenBucket::per_minute(1, t0);
        assert!(b.try_take(t0).is_ok());
        let wait = b.try_take(t0 + Duration::from_secs(15)).unwrap_err();
        assert_eq!(retry_after_secs(wait), 45);
        assert!(b.try_take(t0 + Duration::from_secs(60)).is_ok());
        assert_eq!(TokenBucket::per_minute(0, t0).capacity(), 1, "zero is treated as one");
        assert_eq!(TokenBucket::per_minute(1200, t0).capacity(), 200);
        assert_eq!(TokenBucket::per_minute(7, t0).capacity(), 2);
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1001)), 2);
        assert_eq!(retry_after_secs(Duration::from_secs(3)), 3);
    }
}
