//! Giving up on a job: the reasons the app must hear of, and the `generation.abandoned`
//! event that tells it (besides the inbox DLQ entry, which carries the same reason).

use serde::{Deserialize, Serialize};

/// Why genhook gave up on a job: the `abandon_reason` of its `generation.abandoned`
/// event. The set is documented (docs/events.md); a new reason is a new word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GiveUp {
    /// The job was still running when its poll horizon passed.
    HorizonPassed,
    /// The provider's API says the job does not exist (404, 410).
    NotFound,
    /// The provider refused the API key on every attempt for longer than the grace.
    KeyRefused,
    /// The provider's API failed (5xx, rate limits, timeouts) past the retry horizon.
    RetriesExhausted,
    /// The job finished, but its outputs cannot be published (a host not allowed, more
    /// outputs than a job may have).
    OutputsRefused,
    /// The job succeeded, but the provider had already removed its output files (Replicate
    /// removes an API prediction's an hour after it ends).
    OutputsRemoved,
}

impl GiveUp {
    /// Every reason, for tests and docs.
    pub const ALL: [Self; 6] = [
        Self::HorizonPassed,
        Self::NotFound,
        Self::KeyRefused,
        Self::RetriesExhausted,
        Self::OutputsRefused,
        Self::OutputsRemoved,
    ];

    /// The word the event carries.
    pub fn code(self) -> &'static str {
        match self {
            Self::HorizonPassed => "horizon_passed",
            Self::NotFound => "not_found",
            Self::KeyRefused => "key_refused",
            Self::RetriesExhausted => "retries_exhausted",
            Self::OutputsRefused => "outputs_refused",
            Self::OutputsRemoved => "outputs_removed",
        }
    }
}

/// A decision to give up on a job, with what the event says of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Abandonment {
    /// Why, as a word.
    pub why: GiveUp,
    /// Why, in words: also the DLQ entry's `genhook_failure_reason`.
    pub detail: String,
    /// The job's status word as the provider last reported it, when it did.
    pub provider_status: Option<String>,
}

impl Abandonment {
    /// Giving up for `why`, said as `detail`, with no status known.
    pub fn new(why: GiveUp, detail: impl Into<String>) -> Self {
        Self { why, detail: detail.into(), provider_status: None }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_the_serde_words() {
        for why in GiveUp::ALL {
            assert_eq!(serde_json::to_value(why).unwrap(), why.code());
        }
    }
}
