//! APIMP commands: `genhook callback-url` mints the capability URL to pass as
//! `input.metadata.callback_url` (`genhook watch`, in [`crate::jobs`], then registers the
//! task id the submit returned).

use std::process::ExitCode;

use genhook::providers::apimp::capability::{CapabilityError, mint_callback_url};
use genhook::providers::apimp::upstream::Upstream;
use genhook::toolkit::auth::hmac::HmacSecrets;

/// What can go wrong in the APIMP commands.
#[derive(Debug, thiserror::Error)]
pub enum ApimpError {
    /// The URL cannot be minted.
    #[error("{0}")]
    Capability(#[from] CapabilityError),
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

pub(crate) fn parse_upstream(s: &str) -> Result<Upstream, String> {
    Upstream::parse(s).ok_or_else(|| format!("unknown upstream {s:?}: use kling, doubao, minimax or vidu"))
}

/// Runs `genhook callback-url`: prints the URL.
pub fn callback_url(args: CallbackUrlArgs) -> Result<ExitCode, ApimpError> {
    let secrets = HmacSecrets::new(args.secret, None);
    println!("{}", mint_callback_url(&args.base_url, args.upstream, &args.reference, &secrets)?);
    Ok(ExitCode::SUCCESS)
}
