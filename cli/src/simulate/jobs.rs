//! The job book: simulated generation jobs whose state follows the wall clock.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use time::OffsetDateTime;

use super::replicate::Prediction;

/// How a simulated job ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobOutcome {
    /// `succeeded`, with a primary output and maybe an alternate (`generation.completed`).
    #[default]
    #[serde(alias = "succeeded")]
    Completed,
    /// `failed`, with a `failure {code, message}` (`generation.failed`).
    Failed,
    /// Canceled: Replicate's `canceled` (no error); on the Katalo API, `failed` like
    /// [`Failed`](Self::Failed).
    #[serde(alias = "cancelled")]
    Canceled,
}

/// A job to simulate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobSpec {
    /// How it ends.
    pub outcome: JobOutcome,
    /// How long after creation it reaches its terminal state.
    pub runs_for: Duration,
    /// The caller's external id, echoed back in the job and its webhook.
    pub reference: Option<String>,
}

impl Default for JobSpec {
    /// Completes after one second, without a reference.
    fn default() -> Self {
        Self { outcome: JobOutcome::Completed, runs_for: Duration::from_secs(1), reference: None }
    }
}

/// Where a job is at some moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// The first fifth of its run.
    Queued,
    /// Running; `progress` is a percentage below 100.
    Processing { progress: u8 },
    /// Done, with outputs.
    Succeeded,
    /// Done, with a failure.
    Failed,
}

impl Phase {
    /// The API's `status` value.
    pub(crate) fn status(self) -> &'static str {
        match self {
            Phase::Queued => "queued",
            Phase::Processing { .. } => "processing",
            Phase::Succeeded => "succeeded",
            Phase::Failed => "failed",
        }
    }

    /// Whether the job has finished.
    pub(crate) fn is_terminal(self) -> bool {
        matches!(self, Phase::Succeeded | Phase::Failed)
    }
}

/// The phase of a job `elapsed` after creation.
pub(crate) fn phase(elapsed: Duration, runs_for: Duration, outcome: JobOutcome) -> Phase {
    if elapsed >= runs_for {
        return match outcome {
            JobOutcome::Completed => Phase::Succeeded,
            JobOutcome::Failed | JobOutcome::Canceled => Phase::Failed,
        };
    }
    if elapsed < runs_for / 5 {
        return Phase::Queued;
    }
    let percent = (elapsed.as_secs_f64() / runs_for.as_secs_f64() * 100.0).floor();
    Phase::Processing { progress: percent.clamp(0.0, 99.0) as u8 }
}

/// Failure details a failed job reports (one is picked per job).
const FAILURES: [(&str, &str); 3] = [
    ("content_policy", "The source image was rejected by the content policy."),
    ("source_unreadable", "The source image could not be decoded."),
    ("generation_timeout", "The generation did not finish in time."),
];

/// One simulated job.
#[derive(Debug, Clone)]
pub(crate) struct JobRecord {
    pub(crate) id: String,
    pub(crate) spec: JobSpec,
    pub(crate) started: Instant,
    pub(crate) created_at: OffsetDateTime,
    pub(crate) source_asset_id: String,
    pub(crate) metadata: Value,
    /// 1 (primary only) or 2 (primary and alternate) when it succeeds.
    pub(crate) outputs: u8,
    failure: (&'static str, &'static str),
    /// Created as a Replicate prediction: Replicate's list shows it.
    pub(crate) prediction: bool,
}

impl JobRecord {
    /// Its phase now.
    pub(crate) fn phase(&self) -> Phase {
        phase(self.started.elapsed(), self.spec.runs_for, self.spec.outcome)
    }

    /// When it reaches its terminal state.
    pub(crate) fn finishes_at(&self) -> Instant {
        self.started + self.spec.runs_for
    }

    /// The job JSON of `GET /api/v1/generations/{job_id}`, with `outputs` freshly minted.
    pub(crate) fn to_json(&self, phase: Phase, outputs: Vec<Value>) -> Value {
        let rfc3339 = |t: OffsetDateTime| t.format(&time::format_description::well_known::Rfc3339).ok();
        let progress = match phase {
            Phase::Queued => 0,
            Phase::Processing { progress } => progress,
            Phase::Succeeded | Phase::Failed => 100,
        };
        let completed_at = phase.is_terminal().then(|| rfc3339(self.created_at + self.spec.runs_for)).flatten();
        json!({
            "job_id": self.id,
            "status": phase.status(),
            "progress": progress,
            "source_asset_id": self.source_asset_id,
            "reference": self.spec.reference,
            "metadata": self.metadata,
            "created_at": rfc3339(self.created_at),
            "completed_at": completed_at,
            "outputs": if phase == Phase::Succeeded { outputs } else { Vec::new() },
            "failure": self.failure_json(phase),
        })
    }

    /// The `generation.completed` / `generation.failed` webhook body; `None` while running.
    pub(crate) fn webhook_json(&self, phase: Phase, outputs: Vec<Value>) -> Option<Value> {
        let event_type = match phase {
            Phase::Succeeded => genhook::domain::event::COMPLETED,
            Phase::Failed => genhook::domain::event::FAILED,
            Phase::Queued | Phase::Processing { .. } => return None,
        };
        Some(json!({
            "event_type": event_type,
            "job_id": self.id,
            "source_asset_id": self.source_asset_id,
            "reference": self.spec.reference,
            "outputs": if phase == Phase::Succeeded { outputs } else { Vec::new() },
            "failure": self.failure_json(phase),
            "metadata": self.metadata,
        }))
    }

    /// The job as a Replicate prediction in `phase` (what `GET /v1/predictions/{id}`
    /// answers and Replicate's webhooks carry), with output URLs `outputs` and its
    /// `urls` under `api_base`.
    pub(crate) fn prediction_json(&self, phase: Phase, outputs: Vec<Value>, api_base: &str) -> Value {
        let canceled = self.spec.outcome == JobOutcome::Canceled;
        let (status, error) = match phase {
            Phase::Queued => ("starting", None),
            Phase::Processing { .. } => ("processing", None),
            Phase::Succeeded => ("succeeded", None),
            Phase::Failed if canceled => ("canceled", None),
            Phase::Failed => ("failed", Some(self.failure.1)),
        };
        let started = self.created_at + self.spec.runs_for / 5;
        Prediction {
            id: &self.id,
            status,
            output: if phase == Phase::Succeeded { Value::Array(outputs) } else { Value::Null },
            error,
            created_at: self.created_at,
            started_at: (phase != Phase::Queued).then_some(started),
            completed_at: phase.is_terminal().then(|| self.created_at + self.spec.runs_for),
            api_base,
        }
        .to_json()
    }

    fn failure_json(&self, phase: Phase) -> Value {
        match phase {
            Phase::Failed => json!({"code": self.failure.0, "message": self.failure.1}),
            _ => Value::Null,
        }
    }
}

/// All jobs of one simulator, by id.
#[derive(Debug, Default)]
pub(crate) struct JobBook {
    jobs: Mutex<HashMap<String, JobRecord>>,
}

impl JobBook {
    /// Adds a job starting now and returns its id (`job_sim_<random>`).
    pub(crate) fn create(&self, spec: JobSpec, metadata: Option<Value>) -> String {
        let id = format!("job_sim_{}", random_hex(8));
        self.insert(id.clone(), spec, metadata, false);
        id
    }

    /// Adds a Replicate prediction starting now and returns its id (`p_sim_<random>`):
    /// a job like any other, which Replicate's list also shows.
    pub(crate) fn create_prediction(&self, spec: JobSpec) -> String {
        let id = format!("p_sim_{}", random_hex(8));
        self.insert(id.clone(), spec, None, true);
        id
    }

    /// The job with this id; when there is none, first adds it as a job that already
    /// succeeded (for webhooks the simulator did not send, such as `genhook trigger`'s).
    pub(crate) fn get_or_adopt(&self, id: &str) -> JobRecord {
        if let Some(job) = self.get(id) {
            return job;
        }
        let spec = JobSpec { runs_for: Duration::ZERO, ..JobSpec::default() };
        self.insert(id.to_string(), spec, None, false)
    }

    fn insert(&self, id: String, spec: JobSpec, metadata: Option<Value>, prediction: bool) -> JobRecord {
        let record = JobRecord {
            id: id.clone(),
            started: Instant::now(),
            created_at: OffsetDateTime::now_utc(),
            source_asset_id: format!("src_sim_{}", random_hex(6)),
            metadata: metadata.unwrap_or_else(|| json!({"simulator": "genhook simulate"})),
            outputs: if rand::random::<bool>() { 2 } else { 1 },
            failure: FAILURES[rand::random_range(0..FAILURES.len())],
            spec,
            prediction,
        };
        // A concurrent adoption of the same id keeps the first record.
        self.lock().entry(id).or_insert(record).clone()
    }

    /// The predictions created in `[from, until)`, newest first (then by id), as
    /// Replicate lists them.
    pub(crate) fn created_between(&self, from: OffsetDateTime, until: OffsetDateTime) -> Vec<JobRecord> {
        let mut jobs: Vec<JobRecord> = self
            .lock()
            .values()
            .filter(|j| j.prediction && j.created_at >= from && j.created_at < until)
            .cloned()
            .collect();
        jobs.sort_by(|a, b| b.created_at.cmp(&a.created_at).then_with(|| a.id.cmp(&b.id)));
        jobs
    }

    /// A copy of the job, if it exists.
    pub(crate) fn get(&self, id: &str) -> Option<JobRecord> {
        self.lock().get(id).cloned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, JobRecord>> {
        // A panic while holding the lock cannot leave the map half-updated.
        self.jobs.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// `bytes` random bytes as lowercase hex.
pub(crate) fn random_hex(bytes: usize) -> String {
    hex::encode((0..bytes).map(|_| rand::random::<u8>()).collect::<Vec<_>>())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn phases_follow_the_clock() {
        let run = MS(1000);
        assert_eq!(phase(MS(0), run, JobOutcome::Completed), Phase::Queued);
        assert_eq!(phase(MS(199), run, JobOutcome::Completed), Phase::Queued);
        assert_eq!(phase(MS(200), run, JobOutcome::Completed), Phase::Processing { progress: 20 });
        assert_eq!(phase(MS(999), run, JobOutcome::Failed), Phase::Processing { progress: 99 });
        assert_eq!(phase(MS(1000), run, JobOutcome::Completed), Phase::Succeeded);
        assert_eq!(phase(MS(5000), run, JobOutcome::Failed), Phase::Failed);
        assert_eq!(phase(MS(0), Duration::ZERO, JobOutcome::Completed), Phase::Succeeded);
    }

    #[test]
    fn json_matches_what_the_worker_parses() {
        let book = JobBook::default();
        let id = book.create(
            JobSpec { outcome: JobOutcome::Failed, runs_for: Duration::ZERO, reference: Some("r1".into()) },
            None,
        );
        let job = book.get(&id).unwrap();
        let value = job.to_json(job.phase(), Vec::new());
        let parsed = genhook::providers::katalo::job::parse_job(&value, &id, OffsetDateTime::now_utc()).unwrap();
        assert_eq!(parsed.state, genhook::domain::job::JobState::Failed);
        assert_eq!(parsed.reference, Some(json!("r1")));
        assert!(parsed.failure.unwrap()["code"].is_string());
        let hook = job.webhook_json(job.phase(), Vec::new()).unwrap();
        let text = hook.to_string();
        let hook = genhook::providers::katalo::webhook::KataloWebhook::parse(text.as_bytes()).unwrap();
        assert_eq!((&*hook.job_id, &*hook.event_type), (id.as_str(), "generation.failed"));
    }

    #[test]
    fn no_webhook_while_running() {
        let book = JobBook::default();
        let id = book.create(JobSpec { runs_for: Duration::from_secs(3600), ..JobSpec::default() }, None);
        let job = book.get(&id).unwrap();
        assert!(job.webhook_json(job.phase(), Vec::new()).is_none());
        assert!(id.starts_with("job_sim_"));
        assert!(book.get("job_unknown").is_none());
        let adopted = book.get_or_adopt("job_from_elsewhere");
        assert_eq!((adopted.id.as_str(), adopted.phase()), ("job_from_elsewhere", Phase::Succeeded));
        assert_eq!(book.get_or_adopt("job_from_elsewhere").source_asset_id, adopted.source_asset_id);
    }
}
