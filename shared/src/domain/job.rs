//! A provider job as its API reports it: the truth the worker publishes.

use serde_json::Value;
use time::OffsetDateTime;

/// Where a job (or task) is, as far as genhook is concerned: every provider's status
/// word maps to one of these, and the event's `status` is its [`JobState::word`].
/// Serialized in inbox messages as that word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Finished with outputs.
    Succeeded,
    /// Finished without outputs because it went wrong (error, moderation, timeout).
    Failed,
    /// Finished without outputs because someone stopped it (cancelled, aborted).
    Canceled,
    /// Finished without outputs because it was never run in time or its results are gone.
    Expired,
    /// Not finished (queued, running, or a state genhook does not know).
    #[serde(rename = "running")]
    Pending,
}

impl JobState {
    /// Every state, in the order the schema lists their words.
    pub const ALL: [JobState; 5] = [Self::Succeeded, Self::Failed, Self::Canceled, Self::Expired, Self::Pending];

    /// Whether the job has finished.
    pub fn is_terminal(self) -> bool {
        self != Self::Pending
    }

    /// Whether the job has finished without outputs (failed, canceled or expired).
    pub fn is_unsuccessful(self) -> bool {
        self.is_terminal() && self != Self::Succeeded
    }

    /// The normalized status word events carry: `succeeded`, `failed`, `canceled`,
    /// `expired` or `running`.
    pub fn word(self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Canceled => "canceled",
            Self::Expired => "expired",
            Self::Pending => "running",
        }
    }

    /// The state of a common status word (trimmed, any case) that means a finished job,
    /// or `None`: the words every provider so far uses alike.
    pub fn terminal_word(word: &str) -> Option<Self> {
        match word.trim().to_ascii_lowercase().as_str() {
            "succeeded" | "success" | "completed" | "complete" | "finished" | "done" => Some(Self::Succeeded),
            "failed" | "failure" | "error" | "errored" => Some(Self::Failed),
            "canceled" | "cancelled" | "aborted" => Some(Self::Canceled),
            "expired" | "timed_out" | "timeout" => Some(Self::Expired),
            _ => None,
        }
    }
}

/// One output file of a job.
#[derive(Debug, Clone, PartialEq)]
pub struct JobOutput {
    /// The (usually signed) URL.
    pub url: String,
    /// When the URL stops working, if known.
    pub expires_at: Option<OffsetDateTime>,
}

/// A job as read from the provider's API.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    /// The provider's job id.
    pub job_id: String,
    /// Normalized state.
    pub state: JobState,
    /// The provider's own status word, lowercased (e.g. `succeeded`, `processing`).
    pub status: String,
    /// Output files (empty unless succeeded).
    pub outputs: Vec<JobOutput>,
    /// Failure details, as the provider gave them.
    pub failure: Option<Value>,
    /// The caller's reference, echoed by the provider.
    pub reference: Option<Value>,
    /// The caller's metadata, echoed by the provider.
    pub metadata: Option<Value>,
    /// Progress in percent, when the provider reports it.
    pub progress: Option<u8>,
    /// The source asset the job ran on.
    pub source_asset_id: Option<String>,
    /// The provider says the job's output files are gone (Replicate's `data_removed`):
    /// its links answer 410 and a refresh of it is dead-lettered, with the reason.
    pub outputs_removed: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_round_trip_through_serde_and_the_common_words() {
        for state in JobState::ALL {
            assert_eq!(serde_json::to_value(state).unwrap(), state.word());
            assert_eq!(serde_json::from_value::<JobState>(state.word().into()).unwrap(), state);
            assert_eq!(JobState::terminal_word(state.word()), state.is_terminal().then_some(state));
        }
        assert_eq!(JobState::terminal_word(" Cancelled "), Some(JobState::Canceled));
        assert_eq!(JobState::terminal_word("processing"), None);
    }
}
