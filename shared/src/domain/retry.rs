//! How long an inbox record has been retried, carried on the message itself.
//!
//! The worker does not retry a record through its visibility (every receive counts
//! toward the queue's `maxReceiveCount`, and a minute of rate limiting would move
//! acknowledged deliveries to the DLQ): it sends the record anew with a delay and
//! deletes the one it received. The new message carries how many attempts came before
//! it and since when the record has been waiting, in two message attributes, so the
//! backoff keeps growing and the wait stays bounded across the copies.

/// Message attribute: attempts made on the record before this message was sent.
pub const ATTEMPTS_ATTRIBUTE: &str = "genhook_attempts";

/// Message attribute: when the record's first attempt failed (epoch ms).
pub const WAITING_SINCE_ATTRIBUTE: &str = "genhook_waiting_since";

/// Message attribute: since when the provider has refused the API key on every attempt
/// (epoch ms), while it does.
pub const KEY_REFUSED_SINCE_ATTRIBUTE: &str = "genhook_key_refused_since";

/// The most attempts a message may claim; a larger count is corrupt and read as this.
pub const MAX_ATTEMPTS: u32 = 1_000_000;

/// What a message says of the record's earlier attempts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetryState {
    /// Attempts made before this message was sent (0 for a first message).
    pub earlier_attempts: u32,
    /// When the record started waiting (epoch ms), if it has.
    pub waiting_since_ms: Option<i64>,
    /// Since when every attempt has found the API key refused (epoch ms), if the last
    /// one did.
    pub key_refused_since_ms: Option<i64>,
}

impl RetryState {
    /// Reads the state from a message's attributes. A missing or unreadable value reads
    /// as a first attempt (a message redriven from the DLQ starts afresh).
    pub fn from_attributes(attributes: &[(String, String)]) -> Self {
        let get = |name: &str| attributes.iter().find(|(k, _)| k == name).map(|(_, v)| v.trim());
        let earlier_attempts =
            get(ATTEMPTS_ATTRIBUTE).and_then(|v| v.parse::<u32>().ok()).map_or(0, |n| n.min(MAX_ATTEMPTS));
        let epoch_ms = |name| get(name).and_then(|v| v.parse::<i64>().ok()).filter(|ms| *ms > 0);
        Self {
            earlier_attempts,
            waiting_since_ms: epoch_ms(WAITING_SINCE_ATTRIBUTE),
            key_refused_since_ms: epoch_ms(KEY_REFUSED_SINCE_ATTRIBUTE),
        }
    }

    /// This attempt's number (1-based) when the message is received for the
    /// `receive_count`th time.
    pub fn attempt(&self, receive_count: u32) -> u32 {
        self.earlier_attempts.saturating_add(receive_count.max(1)).min(MAX_ATTEMPTS)
    }

    /// The state the next message carries after attempt `attempt` failed at `now_ms`
    /// (`key_refused`: because the provider refused the API key).
    pub fn next(&self, attempt: u32, now_ms: i64, key_refused: bool) -> Self {
        Self {
            earlier_attempts: attempt.min(MAX_ATTEMPTS),
            waiting_since_ms: Some(self.waiting_since(now_ms)),
            key_refused_since_ms: key_refused.then(|| self.key_refused_since(now_ms)),
        }
    }

    /// Since when the key has been refused: the first refusal of the current run, or
    /// `now_ms`.
    pub fn key_refused_since(&self, now_ms: i64) -> i64 {
        self.key_refused_since_ms.map_or(now_ms, |since| since.min(now_ms))
    }

    /// Since when the record has been waiting: its first failure, or `now_ms`.
    pub fn waiting_since(&self, now_ms: i64) -> i64 {
        self.waiting_since_ms.map_or(now_ms, |since| since.min(now_ms))
    }

    /// The attributes that carry this state on a message.
    pub fn attributes(&self) -> Vec<(String, String)> {
        let mut out = vec![(ATTEMPTS_ATTRIBUTE.to_string(), self.earlier_attempts.to_string())];
        if let Some(since) = self.waiting_since_ms {
            out.push((WAITING_SINCE_ATTRIBUTE.to_string(), since.to_string()));
        }
        if let Some(since) = self.key_refused_since_ms {
            out.push((KEY_REFUSED_SINCE_ATTRIBUTE.to_string(), since.to_string()));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn attrs(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_string(), (*v).to_string())).collect()
    }

    #[test]
    fn a_first_message_is_attempt_one_and_counts_its_receives() {
        let first = RetryState::from_attributes(&[]);
        assert_eq!(first, RetryState::default());
        assert_eq!((first.attempt(1), first.attempt(3)), (1, 3));
        assert_eq!(first.attempt(0), 1, "a receive count of 0 (unknown) is the first");
    }

    #[test]
    fn the_state_round_trips_and_keeps_the_first_failure() {
        let first = RetryState::default();
        let second = first.next(first.attempt(1), 1_000, false);
        assert_eq!(
            second,
            RetryState { earlier_attempts: 1, waiting_since_ms: Some(1_000), key_refused_since_ms: None }
        );
        let read = RetryState::from_attributes(&second.attributes());
        assert_eq!(read, second);
        assert_eq!(read.attempt(1), 2);
        let third = read.next(read.attempt(1), 9_000, true);
        assert_eq!(third.waiting_since_ms, Some(1_000), "the wait counts from the first failure");
        assert_eq!(third.earlier_attempts, 2);
        assert_eq!(third.key_refused_since_ms, Some(9_000));
        let read = RetryState::from_attributes(&third.attributes());
        assert_eq!(read, third);
        let fourth = read.next(read.attempt(1), 20_000, true);
        assert_eq!(fourth.key_refused_since_ms, Some(9_000), "refusals count from the first of the run");
        assert_eq!(fourth.next(4, 30_000, false).key_refused_since_ms, None, "another outcome ends the run");
    }

    #[test]
    fn odd_values_read_as_a_first_attempt_or_are_bounded() {
        for (a, s) in [("x", "y"), ("-1", "-5"), ("", "0"), ("1e3", "12.5")] {
            let read = RetryState::from_attributes(&attrs(&[
                (ATTEMPTS_ATTRIBUTE, a),
                (WAITING_SINCE_ATTRIBUTE, s),
                (KEY_REFUSED_SINCE_ATTRIBUTE, s),
            ]));
            assert_eq!(read, RetryState::default(), "{a:?} {s:?}");
        }
        let huge = RetryState::from_attributes(&attrs(&[(ATTEMPTS_ATTRIBUTE, "4294967295")]));
        assert_eq!(huge.earlier_attempts, MAX_ATTEMPTS);
        assert_eq!(huge.attempt(u32::MAX), MAX_ATTEMPTS);
        // A start in the future (a skewed clock) counts from now.
        let ahead = RetryState { earlier_attempts: 1, waiting_since_ms: Some(50_000), key_refused_since_ms: None };
        assert_eq!(ahead.waiting_since(10_000), 10_000);
    }

    proptest! {
        #[test]
        fn attempts_never_go_back(earlier in 0u32..=MAX_ATTEMPTS, receives in 1u32..100, now in 1i64..i64::MAX) {
            let state = RetryState { earlier_attempts: earlier, ..RetryState::default() };
            let attempt = state.attempt(receives);
            prop_assert!(attempt >= earlier && attempt <= MAX_ATTEMPTS);
            let next = RetryState::from_attributes(&state.next(attempt, now, false).attributes());
            prop_assert!(next.attempt(1) >= attempt);
            prop_assert_eq!(next.waiting_since_ms, Some(now));
        }
    }
}
