//! Retry delays for the worker (SQS message visibility is the timer).

use std::time::Duration;

/// Exponential backoff with jitter, capped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Delay of the first retry.
    pub base: Duration,
    /// Largest delay.
    pub cap: Duration,
    /// Spread delays randomly over the upper half of their ceiling (on by default; off
    /// makes every delay its ceiling, for reproducible simulations).
    pub jitter: bool,
}

impl Default for Backoff {
    /// 10 s, doubling, capped at 15 minutes.
    fn default() -> Self {
        Self { base: Duration::from_secs(10), cap: Duration::from_secs(15 * 60), jitter: true }
    }
}

impl Backoff {
    /// The ceiling for attempt `n` (1-based): `min(cap, base * 2^(n-1))`.
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1).min(20));
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// A delay for attempt `n`, drawn uniformly from the upper half of its ceiling so
    /// retries of many messages spread out; never under one second.
    pub fn delay(&self, attempt: u32) -> Duration {
        let ceiling = self.ceiling(attempt);
        if !self.jitter {
            return ceiling.max(Duration::from_secs(1));
        }
        let half = ceiling / 2;
        let jitter = half.mul_f64(rand::random::<f64>());
        (half + jitter).max(Duration::from_secs(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_and_caps() {
        let b = Backoff::default();
        assert_eq!(b.ceiling(1), Duration::from_secs(10));
        assert_eq!(b.ceiling(2), Duration::from_secs(20));
        assert_eq!(b.ceiling(7), Duration::from_secs(640));
        assert_eq!(b.ceiling(8), Duration::from_secs(900));
        assert_eq!(b.ceiling(10_000), Duration::from_secs(900));
        assert_eq!(b.ceiling(0), Duration::from_secs(10));
        for n in 1..12 {
            let d = b.delay(n);
            assert!(d >= b.ceiling(n) / 2 && d <= b.ceiling(n), "attempt {n}: {d:?}");
        }
    }
}
