//! APIMP commands: `genhook callback-url` mints the capability URL to pass as
//! `input.metadata.callback_url`; `genhook watch` registers the task id a submit
//! returned, so its callbacks can be confirmed and it is polled until terminal.

use std::process::ExitCode;
use std::time::Duration;

use genhook::domain::clock::{Clock, SystemClock};
use genhook::providers::apimp::Upstream;
use genhook::providers::apimp::capability::{CapabilityError, mint_callback_url};
use genhook::providers::apimp::watch::{DEFAULT_HORIZON, WatchError, watch};
use genhook::signature::HmacSecrets;

use crate::backend::{BackendArgs, BackendError};

/// What can go wrong in the APIMP commands.
#[derive(Debug, thiserror::Error)]
pub enum ApimpError {
    /// The URL cannot be minted.
    #[error("{0}")]
    Capability(#[from] CapabilityError),
    /// The registration was refused.
    #[error("{0}")]
    Watch(#[from] WatchError),
    /// The backend cannot be opened.
    #[error(transparent)]
    Backend(#[from] BackendError),
}

/// `genhook callback-url` arguments.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  genhook callback-url --upstream kling --ref order-42 --base-url https://abc.execute-api.us-east-1.amazonaws.com
  # then submit with {\"input\": {\"metadata\": {\"callback_url\": \"<that URL>\"}}} and register the task:
  genhook watch --ref order-42 --task-id task_01HF8Z3KQX2A6Y4N3R8M5W7V9P --upstream kling")]
pub struct CallbackUrlArgs {
    /// The upstream that will call back.
    #[arg(long, value_parser = parse_upstream)]
    pub upstream: Upstream,
    /// Your reference for the task (1-200 of A-Z a-z 0-9 . _ : -), chosen before submit.
    #[arg(long = "ref")]
    pub reference: String,
    /// The receiver's base URL (the stack's ApimpCallbackBaseUrl output, or genhook dev's).
    #[arg(long, env = "GENHOOK_BASE_URL", default_value = "http://127.0.0.1:8080")]
    pub base_url: String,
    /// The callback URLs' key.
    #[arg(long, env = "APIMP_CALLBACK_SECRET", hide_env_values = true)]
    pub secret: String,
}

fn parse_upstream(s: &str) -> Result<Upstream, String> {
    Upstream::parse(s).ok_or_else(|| format!("unknown upstream {s:?}: use kling, doubao, minimax or vidu"))
}

/// Runs `genhook callback-url`: prints the URL.
pub fn callback_url(args: CallbackUrlArgs) -> Result<ExitCode, ApimpError> {
    let secrets = HmacSecrets::new(args.secret, None);
    println!("{}", mint_callback_url(&args.base_url, args.upstream, &args.reference, &secrets)?);
    Ok(ExitCode::SUCCESS)
}

/// `genhook watch` arguments.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  genhook watch --ref order-42 --task-id task_01HF8Z --upstream kling   # a task that calls back
  genhook watch --ref render-9 --task-id task_01HF90                    # polling-only (Sora, Veo, ...)
  genhook watch --aws --ref order-42 --task-id task_01HF8Z              # on the deployed stack's inbox")]
pub struct WatchArgs {
    /// The reference used in the callback URL (any reference, for polling-only tasks).
    #[arg(long = "ref")]
    pub reference: String,
    /// APIMP's task id, from the submit response.
    #[arg(long)]
    pub task_id: String,
    /// The upstream, when the task calls back.
    #[arg(long, value_parser = parse_upstream)]
    pub upstream: Option<Upstream>,
    /// Stop polling after this many seconds.
    #[arg(long, env = "APIMP_WATCH_HORIZON_SECS", default_value_t = DEFAULT_HORIZON.as_secs())]
    pub horizon_secs: u64,
    #[command(flatten)]
    pub backend: BackendArgs,
}

/// Runs `genhook watch`: queues the registration on the inbox.
pub async fn watch_command(args: WatchArgs) -> Result<ExitCode, ApimpError> {
    let backend = args.backend.open().await?;
    let horizon = Duration::from_secs(args.horizon_secs);
    let id = watch(backend.inbox.as_ref(), &args.reference, &args.task_id, args.upstream, horizon, SystemClock.now())
        .await?;
    println!("watching {} as {} (registration {id})", args.task_id, args.reference);
    Ok(ExitCode::SUCCESS)
}
