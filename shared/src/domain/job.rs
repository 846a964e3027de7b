//! A provider job as its API reports it: the truth the worker publishes.

use serde_json::Value;
use time::OffsetDateTime;

/// Where a job (or task) is, as far as genhook is concerned: every provider's status
/// word maps to one of these. Serialized in inbox messages as `running`, `succeeded`,
/// `failed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Finished with outputs.
    Succeeded,
    /// Finished without outputs (failed, expired, cancelled).
    Failed,
    /// Not finished (queued, running, or a state genhook does not know).
    #[serde(rename = "running")]
    Pending,
}

impl JobState {
    /// Whether the job has finished.
    pub fn is_terminal(self) -> bool {
        self != Self::Pending
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
    /// The source asset the job ran on.
    pub source_asset_id: Option<String>,
}
