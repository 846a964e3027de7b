//! A request-rate limit for provider APIs: calls are spaced evenly, so one worker
//! instance never exceeds its share of the provider's read limit however fast it answers.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Spaces calls at least `1 / rate` apart (no bursts).
#[derive(Debug)]
pub struct RateLimiter {
    interval: Duration,
    next: Mutex<Option<Instant>>,
}

impl RateLimiter {
    /// At most `per_second` calls per second.
    pub fn per_second(per_second: u32) -> Self {
        Self { interval: Duration::from_secs(1) / per_second.max(1), next: Mutex::new(None) }
    }

    /// Waits for this call's slot.
    pub async fn acquire(&self) {
        let slot = {
            let mut next = self.next.lock().expect("rate limiter lock");
            let now = Instant::now();
            let slot = next.map_or(now, |n| n.max(now));
            *next = Some(slot + self.interval);
            slot
        };
        tokio::time::sleep_until(slot).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Virtual time (paused clock): this checks the spacing logic, not the machine's speed.
    #[tokio::test(start_paused = true)]
    async fn spaces_calls_evenly() {
        let limiter = std::sync::Arc::new(RateLimiter::per_second(4));
        let start = Instant::now();
        let calls: Vec<_> = (0..9)
            .map(|_| {
                let l = limiter.clone();
                tokio::spawn(async move {
                    l.acquire().await;
                    Instant::now()
                })
            })
            .collect();
        let mut times = Vec::new();
        for c in calls {
            times.push(c.await.unwrap() - start);
        }
        times.sort();
        assert_eq!(times[0], Duration::ZERO);
        assert_eq!(times[8], Duration::from_secs(2), "9 calls at 4/s span exactly 2 s");
        // After an idle spell there is no burst credit beyond the next slot.
        tokio::time::sleep(Duration::from_secs(10)).await;
        let t = Instant::now();
        limiter.acquire().await;
        limiter.acquire().await;
        assert_eq!(Instant::now() - t, Duration::from_millis(250));
    }
}
