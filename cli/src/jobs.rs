//! Commands on one provider job: `genhook watch` registers a job right after it was
//! created, so it is published even if its webhook or callback never comes; `genhook
//! refresh` asks for fresh output URLs of a finished job.

use std::process::ExitCode;
use std::time::Duration;

use genhook::domain::clock::{Clock, SystemClock};
use genhook::providers::apimp::upstream::Upstream;

use genhook::providers::katalo::watch::DEFAULT_HORIZON;

use crate::apimp::parse_upstream;
use crate::backend::{BackendArgs, BackendError};

/// What can go wrong in the job commands.
#[derive(Debug, thiserror::Error)]
pub enum JobsError {
    /// A Katalo registration was refused.
    #[error("{0}")]
    Katalo(#[from] genhook::providers::katalo::watch::WatchError),
    /// An APIMP registration was refused.
    #[error("{0}")]
    Apimp(#[from] genhook::providers::apimp::watch::WatchError),
    /// A Replicate registration was refused.
    #[error("{0}")]
    Replicate(#[from] genhook::providers::replicate::watch::WatchError),
    /// The refresh request was refused.
    #[error("{0}")]
    Refresh(#[from] genhook::providers::common::refresh::RequestError),
    /// The inbox did not take the registration.
    #[error("could not queue the registration: {0}")]
    Queue(#[from] genhook::ports::QueueError),
    /// The arguments do not fit the provider.
    #[error("{0}")]
    Usage(String),
    /// The backend cannot be opened.
    #[error(transparent)]
    Backend(#[from] BackendError),
}

/// The providers whose jobs can be watched.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchProvider {
    /// Katalo: the job id from `POST /api/v1/generations`.
    Katalo,
    /// APIMP: the task id from the submit response, with the callback URL's reference.
    Apimp,
    /// Replicate: the prediction id from `POST /v1/predictions` (its `starting` webhook
    /// registers the watch by itself; this covers a prediction whose webhooks never come).
    Replicate,
}

/// `genhook watch` arguments.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  genhook watch --provider katalo --job-id job_01JX                     # a Katalo job, in case its webhook never comes
  genhook watch --ref order-42 --task-id task_01HF8Z --upstream kling   # an APIMP task that calls back
  genhook watch --ref render-9 --task-id task_01HF90                    # an APIMP polling-only task (Sora, Veo, ...)
  genhook watch --provider replicate --job-id gm3qorzdhgbfurvjtvhg6dckhu # a Replicate prediction
  genhook watch --aws --provider katalo --job-id job_01JX               # on the deployed stack's inbox")]
pub struct WatchArgs {
    /// Whose job it is.
    #[arg(long, value_enum, default_value = "apimp")]
    pub provider: WatchProvider,
    /// The provider's job id (APIMP: its task id).
    #[arg(long, visible_alias = "task-id")]
    pub job_id: String,
    /// APIMP: the reference used in the callback URL (any reference, for polling-only tasks).
    #[arg(long = "ref")]
    pub reference: Option<String>,
    /// APIMP: the upstream, when the task calls back.
    #[arg(long, value_parser = parse_upstream)]
    pub upstream: Option<Upstream>,
    /// Stop polling after this many seconds [default: KATALO_WATCH_HORIZON_SECS,
    /// APIMP_WATCH_HORIZON_SECS or REPLICATE_POLL_HORIZON_SECS, else 86400].
    #[arg(long)]
    pub horizon_secs: Option<u64>,
    #[command(flatten)]
    pub backend: BackendArgs,
}

/// Runs `genhook watch`: queues the registration on the inbox (one message).
pub async fn watch_command(args: WatchArgs) -> Result<ExitCode, JobsError> {
    let variable = match args.provider {
        WatchProvider::Katalo => "KATALO_WATCH_HORIZON_SECS",
        WatchProvider::Apimp => "APIMP_WATCH_HORIZON_SECS",
        WatchProvider::Replicate => "REPLICATE_POLL_HORIZON_SECS",
    };
    let horizon = match (args.horizon_secs, std::env::var(variable).ok()) {
        (Some(secs), _) => secs,
        (None, Some(text)) => {
            text.trim().parse().map_err(|_| JobsError::Usage(format!("{variable} must be a number of seconds")))?
        }
        (None, None) => DEFAULT_HORIZON.as_secs(),
    };
    let horizon = Duration::from_secs(horizon);
    let now = SystemClock.now();
    match args.provider {
        WatchProvider::Katalo | WatchProvider::Replicate => {
            let what = if args.provider == WatchProvider::Katalo { "Katalo job" } else { "Replicate prediction" };
            if args.reference.is_some() || args.upstream.is_some() {
                return Err(JobsError::Usage(format!(
                    "--ref and --upstream are APIMP's; a {what} needs only --job-id"
                )));
            }
            // Checked before the backend is opened, so a bad id never touches a queue.
            let registration = match args.provider {
                WatchProvider::Katalo => {
                    genhook::providers::katalo::watch::registration(&args.job_id, horizon, now)?.outgoing(None)
                }
                _ => genhook::providers::replicate::watch::registration(&args.job_id, horizon, now)?.outgoing(None),
            };
            let backend = args.backend.open().await?;
            let id = backend.inbox.send(registration).await?;
            println!("watching {what} {} (registration {id})", args.job_id.trim());
        }
        WatchProvider::Apimp => {
            let Some(reference) = args.reference else {
                return Err(JobsError::Usage("an APIMP task needs --ref (the callback URL's reference)".into()));
            };
            let backend = args.backend.open().await?;
            let inbox = backend.inbox.as_ref();
            let id =
                genhook::providers::apimp::watch::watch(inbox, &reference, &args.job_id, args.upstream, horizon, now)
                    .await?;
            println!("watching {} as {reference} (registration {id})", args.job_id);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `genhook sweep` arguments.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  genhook sweep                          # the predictions of the last hour, through genhook dev
  genhook sweep --aws --lookback-secs 1800")]
pub struct SweepArgs {
    /// Whose jobs to sweep: replicate (Katalo and APIMP document no list of jobs).
    #[arg(long, default_value = "replicate")]
    pub provider: String,
    /// How far back to look, in seconds (at most a week).
    #[arg(long, default_value_t = genhook::providers::replicate::sweep::DEFAULT_LOOKBACK.as_secs())]
    pub lookback_secs: u64,
    #[command(flatten)]
    pub backend: BackendArgs,
}

/// Runs `genhook sweep`: queues a sweep's first page on the inbox (one message); the
/// worker reads the pages and registers every prediction that ended.
pub async fn sweep_command(args: SweepArgs) -> Result<ExitCode, JobsError> {
    use genhook::providers::replicate::sweep::{MAX_LOOKBACK, ReplicateSweepMessage};
    if args.provider.trim() != "replicate" {
        return Err(JobsError::Usage(format!(
            "only Replicate lists its jobs (GET /v1/predictions); {:?} has no list to sweep: register its jobs with genhook watch",
            args.provider
        )));
    }
    if args.lookback_secs == 0 || args.lookback_secs > MAX_LOOKBACK.as_secs() {
        return Err(JobsError::Usage(format!("--lookback-secs must be 1 to {}", MAX_LOOKBACK.as_secs())));
    }
    let message = ReplicateSweepMessage::start(Duration::from_secs(args.lookback_secs)).outgoing();
    let backend = args.backend.open().await?;
    let id = backend.inbox.send(message).await?;
    println!("sweeping Replicate's predictions of the last {} s (message {id})", args.lookback_secs);
    Ok(ExitCode::SUCCESS)
}

/// `genhook refresh` arguments.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  genhook refresh --provider katalo --job-id job_01JX                   # a generation.urls_refreshed event follows
  genhook refresh --aws --provider apimp --job-id task_01HF8Z --request-id listing-42-view-7")]
pub struct RefreshArgs {
    /// Whose job it is (katalo, apimp, replicate).
    #[arg(long)]
    pub provider: String,
    /// The provider's job id (APIMP: task id; Replicate: prediction id).
    #[arg(long, visible_alias = "task-id")]
    pub job_id: String,
    /// Your id for this request: retrying with the same id publishes one event
    /// [default: a new random id].
    #[arg(long)]
    pub request_id: Option<String>,
    #[command(flatten)]
    pub backend: BackendArgs,
}

/// Runs `genhook refresh`: queues the request on the inbox (one message).
pub async fn refresh_command(args: RefreshArgs) -> Result<ExitCode, JobsError> {
    let names: Vec<&str> = genhook::providers::ALL.iter().map(|p| p.name()).collect();
    if !names.contains(&args.provider.as_str()) {
        return Err(JobsError::Usage(format!("unknown provider {:?}: use one of {}", args.provider, names.join(", "))));
    }
    let request_id = args.request_id.unwrap_or_else(genhook::domain::dedupe::random_id);
    let now = SystemClock.now();
    // Checked before the backend is opened, so bad ids never touch a queue.
    let message = genhook::providers::common::refresh::message(&args.provider, &args.job_id, &request_id, now)
        .map_err(genhook::providers::common::refresh::RequestError::from)?;
    let backend = args.backend.open().await?;
    let id = backend.inbox.send(message).await.map_err(genhook::providers::common::refresh::RequestError::from)?;
    println!("refresh of {} job {} requested as {request_id} (message {id})", args.provider, args.job_id.trim());
    Ok(ExitCode::SUCCESS)
}
