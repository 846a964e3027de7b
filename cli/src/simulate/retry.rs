//! The delivery retry policy.
//!
//! Katalo's docs say only "transient delivery failures are retried with bounded
//! exponential backoff" (no counts, no status list). The simulator reads "transient" as:
//! no answer at all (connection refused or reset, timeout), `408 Request Timeout`,
//! `429 Too Many Requests` and any `5xx`. Every other answer is final: `2xx` acknowledges
//! the delivery; any other status (`4xx` such as `401` for a bad signature or `400` for a
//! body the receiver cannot use, and `1xx`/`3xx`, which a webhook sender does not follow)
//! rejects it. Retries wait `min(cap, base · 2^(n-1))` with jitter over its upper half,
//! and at least as long as a `Retry-After` the receiver sent (itself capped).
//!
//! Replicate documents its policy: only a prediction's final webhook is retried, when
//! the request fails or is answered `4xx` or `5xx`, on an exponential backoff; webhooks
//! of intermediate states are never retried.

use std::time::Duration;

/// The cap on one retry delay, as a multiple of the base delay.
const CAP_FACTOR: u32 = 32;

/// What one delivery attempt's answer means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// `2xx`; `duplicate` when the answer's JSON says `"duplicate": true`.
    Acked { duplicate: bool },
    /// Transient: try again (after `retry_after` if the receiver said so).
    Retry { retry_after: Option<Duration> },
    /// Final refusal with this status.
    Rejected { status: u16 },
}

/// Judges an HTTP answer. With `retry_client_errors` (Replicate's final webhooks), every
/// `4xx` is retried too.
pub(crate) fn judge(status: u16, body: &[u8], retry_after: Option<Duration>, retry_client_errors: bool) -> Verdict {
    match status {
        200..=299 => Verdict::Acked { duplicate: says_duplicate(body) },
        408 | 429 | 500..=599 => Verdict::Retry { retry_after },
        400..=499 if retry_client_errors => Verdict::Retry { retry_after },
        _ => Verdict::Rejected { status },
    }
}

/// Whether an acknowledgement body is JSON with `"duplicate": true`.
fn says_duplicate(body: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(body).is_ok_and(|v| v.get("duplicate") == Some(&true.into()))
}

/// Bounded exponential backoff with jitter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Backoff {
    base: Duration,
    cap: Duration,
}

impl Backoff {
    /// Doubling from `base`, capped at 32 × `base`.
    pub(crate) fn new(base: Duration) -> Self {
        Self { base, cap: base.saturating_mul(CAP_FACTOR) }
    }

    /// The ceiling before retry `n` (1-based): `min(cap, base · 2^(n-1))`.
    pub(crate) fn ceiling(&self, retry: u32) -> Duration {
        let factor = 2u32.saturating_pow(retry.saturating_sub(1).min(20));
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// The wait before retry `n`: uniform over the upper half of its ceiling, and at
    /// least the receiver's `Retry-After` (capped, so local runs stay short).
    pub(crate) fn delay(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        let ceiling = self.ceiling(retry);
        let jittered = ceiling / 2 + (ceiling / 2).mul_f64(rand::random::<f64>());
        jittered.max(retry_after.unwrap_or_default().min(self.cap))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn which_answers_are_retried() {
        assert_eq!(judge(200, br#"{"ok":true}"#, None, false), Verdict::Acked { duplicate: false });
        assert_eq!(judge(202, br#"{"ok":true,"duplicate":true}"#, None, false), Verdict::Acked { duplicate: true });
        assert_eq!(judge(204, b"", None, false), Verdict::Acked { duplicate: false });
        assert_eq!(judge(200, br#"{"duplicate":"yes"}"#, None, false), Verdict::Acked { duplicate: false });
        for s in [408, 429, 500, 502, 503, 504] {
            assert_eq!(judge(s, b"", Some(MS(5)), false), Verdict::Retry { retry_after: Some(MS(5)) }, "{s}");
        }
        for s in [301, 400, 401, 403, 404, 410, 413, 422] {
            assert_eq!(judge(s, b"", None, false), Verdict::Rejected { status: s }, "{s}");
        }
        // Replicate's final webhooks: any 4xx is retried, other statuses as before.
        for s in [400, 401, 404, 410, 422] {
            assert_eq!(judge(s, b"", None, true), Verdict::Retry { retry_after: None }, "{s}");
        }
        assert_eq!(judge(301, b"", None, true), Verdict::Rejected { status: 301 });
    }

    #[test]
    fn backoff_doubles_then_caps() {
        let b = Backoff::new(MS(250));
        let ceilings: Vec<_> = (1..=8).map(|n| b.ceiling(n)).collect();
        assert_eq!(ceilings, [250, 500, 1000, 2000, 4000, 8000, 8000, 8000].map(MS));
        assert_eq!(b.ceiling(u32::MAX), MS(8000));
        assert_eq!(b.ceiling(0), MS(250));
        for n in 1..10 {
            let d = b.delay(n, None);
            assert!(d >= b.ceiling(n) / 2 && d <= b.ceiling(n), "retry {n}: {d:?}");
        }
    }

    #[test]
    fn retry_after_is_honoured_up_to_the_cap() {
        let b = Backoff::new(MS(10));
        assert_eq!(b.delay(1, Some(MS(200))), MS(200));
        assert_eq!(b.delay(1, Some(Duration::from_secs(3600))), MS(320));
        assert_eq!(Backoff::new(Duration::ZERO).delay(3, Some(MS(5))), Duration::ZERO);
    }
}
