//! `genhook simulate`: a faithful fake Katalo provider, and with `--provider replicate`
//! a fake Replicate.
//!
//! - [`KataloSimulator`] serves Katalo's job API on loopback: `GET
//!   /api/v1/generations/{job_id}` with a Bearer key, a per-key rate limit answered with
//!   429 + `retry_after`, optional injected 5xx errors, job states that follow the wall
//!   clock, and output URLs signed like S3 pre-signed URLs that really expire. The same
//!   jobs are served as Replicate predictions at `GET /v1/predictions/{id}`, with
//!   Replicate's error bodies.
//! - [`deliver`] creates jobs in it and POSTs their webhooks to a receiver the way the
//!   provider does: Katalo's signed `generation.*` events, or Replicate's
//!   Standard-Webhooks-signed predictions (a `starting` delivery, then the final one). At
//!   least once, retried with bounded exponential backoff, optionally duplicated,
//!   delayed, reordered and mixed with forgeries.
//! - [`run`] is the `genhook simulate` command.

mod api;
mod deliver;
mod files;
mod jobs;
mod limit;
pub mod replicate;
mod retry;
pub mod script;
mod summary;
mod urls;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

pub use api::{ApiOptions, KataloSimulator, SIM_API_KEY};
pub use deliver::{DeliveryOptions, Pacing, deliver, deliver_with};
pub use jobs::{JobOutcome, JobSpec};
pub use summary::Summary;

/// Whose API and webhooks are simulated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Provider {
    /// Katalo: `generation.*` events signed with `x-katalo-signature`.
    #[default]
    Katalo,
    /// Replicate: prediction objects signed per Standard Webhooks (`webhook-*` headers).
    Replicate,
}

impl Provider {
    /// The variable holding this provider's webhook signing secret.
    pub fn secret_var(self) -> &'static str {
        match self {
            Provider::Katalo => "KATALO_WEBHOOK_SECRET",
            Provider::Replicate => "REPLICATE_WEBHOOK_SECRET",
        }
    }

    /// The variable holding this provider's API key.
    pub fn api_key_var(self) -> &'static str {
        match self {
            Provider::Katalo => "KATALO_API_KEY",
            Provider::Replicate => "REPLICATE_API_TOKEN",
        }
    }

    /// The provider's name.
    pub fn name(self) -> &'static str {
        match self {
            Provider::Katalo => "Katalo",
            Provider::Replicate => "Replicate",
        }
    }

    /// A value given on the command line, else the provider's variable (empty counts as
    /// unset).
    pub fn or_env(given: Option<String>, var: &str) -> Option<String> {
        given.or_else(|| std::env::var(var).ok()).filter(|v| !v.is_empty())
    }
}

const EXAMPLES: &str = "\
Without --url: serve the fake API until Ctrl-C; the first line printed is its base URL.
With --url: also deliver --jobs signed webhooks there (at least once, retried with bounded
exponential backoff), print a summary table to standard output, and exit; with --serve,
keep serving the API afterwards until Ctrl-C.

Examples:
  # Serve the fake API (until Ctrl-C), and point a worker at it:
  genhook simulate
  export KATALO_API_BASE_URL=http://127.0.0.1:8787 KATALO_API_KEY=sim_katalo_local_key

  # Create a job that fails after 3 s, then read it (fresh signed URLs on every read):
  curl -s -H 'Authorization: Bearer sim_katalo_local_key' \\
       -d '{\"runs_for_ms\": 3000, \"outcome\": \"failed\"}' http://127.0.0.1:8787/api/v1/generations
  curl -s -H 'Authorization: Bearer sim_katalo_local_key' \\
       http://127.0.0.1:8787/api/v1/generations/<job_id>

  # Deliver 50 signed webhooks to a receiver, with duplicates, forgeries and reordering,
  # print the summary, then keep serving the API for the worker's reads:
  genhook simulate --url http://127.0.0.1:8080/webhooks/katalo --secret \"$KATALO_WEBHOOK_SECRET\" \\
       --jobs 50 --duplicate-rate 0.3 --forged 3 --reorder --max-delay-ms 500 --serve

  # A hostile API: 20 % transient errors, 60 reads a minute, URLs that live 30 s:
  genhook simulate --error-rate 0.2 --rate-limit-per-min 60 --url-ttl-secs 30

  # Replicate: predictions at GET /v1/predictions/<id>, and Standard-Webhooks-signed
  # deliveries (each prediction's `starting` webhook, then its final one; a failing
  # prediction ends `failed` or `canceled`):
  genhook simulate --provider replicate --url http://127.0.0.1:8080/webhooks/replicate \\
       --secret \"$REPLICATE_WEBHOOK_SECRET\" --jobs 20 --fail-rate 0.2 --forged 2 --reorder
  curl -s -H 'Authorization: Bearer sim_katalo_local_key' http://127.0.0.1:8787/v1/predictions/<id>

Exit status: 0 when every genuine delivery was acknowledged and no forged one was,
1 otherwise, 2 on bad usage.";

/// `genhook simulate` arguments (the long help ends with the modes and examples).
#[derive(clap::Args)]
#[command(after_help = "Examples: see `genhook simulate --help`.", after_long_help = EXAMPLES)]
pub struct SimulateArgs {
    /// Address the fake API listens on; port 0 picks a free port.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8787")]
    pub listen: SocketAddr,
    /// Whose API and webhooks to simulate.
    #[arg(long, value_enum, default_value_t = Provider::Katalo)]
    pub provider: Provider,
    /// The API key the fake API accepts as `Authorization: Bearer <key>` [default:
    /// $KATALO_API_KEY, or $REPLICATE_API_TOKEN with --provider replicate; else
    /// sim_katalo_local_key].
    #[arg(long, value_name = "KEY")]
    pub api_key: Option<String>,
    /// Job reads allowed per minute (bursts of ten seconds' worth; 0 = no limit).
    #[arg(long, value_name = "N", default_value_t = 1200)]
    pub rate_limit_per_min: u32,
    /// Fraction (0-1) of job reads answered with a retryable 5xx error body.
    #[arg(long, value_name = "FRACTION", default_value_t = 0.0, value_parser = fraction)]
    pub error_rate: f64,
    /// Lifetime of the signed output URLs, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 3600, value_parser = clap::value_parser!(u64).range(1..))]
    pub url_ttl_secs: u64,
    /// Answer reads of unknown job ids as already-succeeded jobs instead of 404 (so
    /// webhooks sent with `genhook trigger` reconcile against the simulator).
    #[arg(long)]
    pub adopt_unknown_jobs: bool,

    /// Deliver webhooks to this receiver URL (else only serve the API).
    #[arg(long, env = "GENHOOK_WEBHOOK_URL", help_heading = "Webhook delivery")]
    pub url: Option<String>,
    /// The webhook signing secret (required with --url) [default: $KATALO_WEBHOOK_SECRET,
    /// or $REPLICATE_WEBHOOK_SECRET with --provider replicate]. Replicate's is
    /// `whsec_<base64>`.
    #[arg(long, value_name = "SECRET", help_heading = "Webhook delivery")]
    pub secret: Option<String>,
    /// Jobs to create, one webhook each.
    #[arg(long, value_name = "N", default_value_t = 10, help_heading = "Webhook delivery")]
    pub jobs: u32,
    /// Fraction (0-1) of jobs that end failed (generation.failed); exactly round(jobs x fraction).
    /// With --provider replicate, every second failing prediction ends canceled instead.
    #[arg(long, value_name = "FRACTION", default_value_t = 0.1, value_parser = fraction, help_heading = "Webhook delivery")]
    pub fail_rate: f64,
    /// Fraction (0-1) of webhooks sent twice (identical bytes, as at-least-once delivery
    /// does); exactly round(jobs x fraction).
    #[arg(long, value_name = "FRACTION", default_value_t = 0.2, value_parser = fraction, help_heading = "Webhook delivery")]
    pub duplicate_rate: f64,
    /// Extra deliveries signed with a wrong secret (a correct receiver answers 401).
    #[arg(long, value_name = "N", default_value_t = 0, help_heading = "Webhook delivery")]
    pub forged: u32,
    /// Shuffle the delivery order.
    #[arg(long, help_heading = "Webhook delivery")]
    pub reorder: bool,
    /// Random delay before each delivery, up to this many milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 0, help_heading = "Webhook delivery")]
    pub max_delay_ms: u64,
    /// HTTP attempts per delivery; network errors, 408, 429 and 5xx are retried.
    #[arg(long, value_name = "N", default_value_t = 6, value_parser = clap::value_parser!(u32).range(1..), help_heading = "Webhook delivery")]
    pub max_attempts: u32,
    /// First retry delay in milliseconds; doubles per retry (capped at 32x), with jitter.
    #[arg(long, value_name = "MS", default_value_t = 250, help_heading = "Webhook delivery")]
    pub retry_base_ms: u64,
    /// Deliveries in flight at once.
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..), help_heading = "Webhook delivery")]
    pub concurrency: u32,
    /// Shortest simulated job run time in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 200, help_heading = "Webhook delivery")]
    pub min_runtime_ms: u64,
    /// Longest simulated job run time in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 1500, help_heading = "Webhook delivery")]
    pub max_runtime_ms: u64,
    /// Timeout of each delivery attempt in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..), help_heading = "Webhook delivery")]
    pub timeout_secs: u64,
    /// Do not show the progress bar (it only ever shows on a terminal, on stderr).
    #[arg(long, help_heading = "Webhook delivery")]
    pub no_progress: bool,
    /// After delivering, keep serving the API until Ctrl-C (for the worker's reads).
    #[arg(long, help_heading = "Webhook delivery")]
    pub serve: bool,
}

/// What can go wrong in `genhook simulate`, with what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum SimulateError {
    /// The API server could not bind its address.
    #[error("cannot listen on {addr}: {source} (pick another --listen address, or port 0 for a free one)")]
    Bind {
        /// The address.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// An option is out of range.
    #[error("invalid {option}: {reason}")]
    InvalidOption {
        /// Which option.
        option: &'static str,
        /// What is wrong and what is accepted.
        reason: String,
    },
    /// The receiver URL is not a usable http(s) URL.
    #[error("invalid receiver URL {url}: {reason} (pass e.g. --url http://127.0.0.1:8080/webhooks/katalo)")]
    InvalidUrl {
        /// The URL, query redacted.
        url: String,
        /// Why.
        reason: String,
    },
    /// Deliveries need the signing secret (held in the named variable, or passed).
    #[error("delivering webhooks needs the signing secret: pass --secret or set {0}")]
    MissingSecret(&'static str),
    /// Waiting for Ctrl-C failed.
    #[error("cannot wait for Ctrl-C: {0}")]
    Signal(std::io::Error),
}

impl SimulateError {
    pub(crate) fn invalid(option: &'static str, reason: &str) -> Self {
        SimulateError::InvalidOption { option, reason: reason.into() }
    }
}

/// Checks that `value` is a fraction in 0–1.
pub(crate) fn check_fraction(option: &'static str, value: f64) -> Result<(), SimulateError> {
    if (0.0..=1.0).contains(&value) {
        Ok(())
    } else {
        Err(SimulateError::invalid(option, "must be a fraction between 0 and 1, e.g. 0.2"))
    }
}

/// Parses a fraction in 0–1 for clap.
fn fraction(s: &str) -> Result<f64, String> {
    let value: f64 = s.trim().parse().map_err(|_| format!("`{s}` is not a number; use a fraction such as 0.2"))?;
    if (0.0..=1.0).contains(&value) { Ok(value) } else { Err(format!("{s} is not between 0 and 1")) }
}

/// Runs `genhook simulate`: serves the fake API and, with `--url`, delivers webhooks.
pub async fn run(args: SimulateArgs) -> Result<ExitCode, SimulateError> {
    let provider = args.provider;
    // Check the delivery options before anything starts listening.
    let delivery = args.url.clone().map(|url| delivery_options(&args, url)).transpose()?;
    let api_key = Provider::or_env(args.api_key.clone(), provider.api_key_var());
    let api = ApiOptions {
        api_key: api_key.clone().unwrap_or_else(|| SIM_API_KEY.into()),
        rate_limit_per_min: args.rate_limit_per_min,
        error_rate: args.error_rate,
        url_ttl: Duration::from_secs(args.url_ttl_secs),
        adopt_unknown_jobs: args.adopt_unknown_jobs,
    };
    let sim = KataloSimulator::start(args.listen, api).await?;
    let base = sim.base_url();
    // The default key is public; a key the user passed may be a real one, so it is never shown.
    let key_var = provider.api_key_var();
    let key_hint = match api_key.as_deref() {
        None | Some(SIM_API_KEY) => format!("{key_var} at {SIM_API_KEY}"),
        Some(_) => format!("{key_var} at the key you passed"),
    };
    let Some((opts, pacing)) = delivery else {
        let read = match provider {
            Provider::Katalo => format!(
                "point KATALO_API_BASE_URL at {base} and {key_hint}.\n\
                 Create a job with POST {base}/api/v1/generations, read it with GET {base}/api/v1/generations/<job_id>.\n"
            ),
            Provider::Replicate => format!(
                "point the Replicate API base URL at {base} and {key_hint}.\n\
                 Read a prediction with GET {base}/v1/predictions/<id>; create one with POST {base}/api/v1/generations.\n"
            ),
        };
        stdout(&format!("{base}\n{} simulator: {read}", provider.name()));
        eprintln!("Serving until Ctrl-C.");
        tokio::signal::ctrl_c().await.map_err(SimulateError::Signal)?;
        return Ok(ExitCode::SUCCESS);
    };
    eprintln!(
        "{} simulator at {base} ({key_hint}); delivering {} job webhook(s) to {}",
        provider.name(),
        opts.jobs,
        genhook::toolkit::http::redact::redact(&opts.url)
    );
    let summary = deliver_with(&sim, &opts, &pacing).await?;
    stdout(&summary.to_string());
    let code = if summary.all_acknowledged() {
        ExitCode::SUCCESS
    } else {
        eprintln!(
            "Not every genuine delivery was acknowledged{}; see the table above.",
            if summary.forged_accepted > 0 { ", and forged deliveries were accepted" } else { "" }
        );
        ExitCode::FAILURE
    };
    if args.serve {
        eprintln!("Deliveries done; still serving the API at {base} until Ctrl-C.");
        tokio::signal::ctrl_c().await.map_err(SimulateError::Signal)?;
    }
    Ok(code)
}

/// Writes to standard output, ignoring a closed pipe (`genhook simulate | head -1` must
/// not stop the server).
fn stdout(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

/// The delivery settings from the arguments, checked.
fn delivery_options(args: &SimulateArgs, url: String) -> Result<(DeliveryOptions, Pacing), SimulateError> {
    let opts = DeliveryOptions {
        url,
        provider: args.provider,
        secret: Provider::or_env(args.secret.clone(), args.provider.secret_var())
            .ok_or(SimulateError::MissingSecret(args.provider.secret_var()))?,
        jobs: args.jobs,
        fail_rate: args.fail_rate,
        duplicate_rate: args.duplicate_rate,
        forged: args.forged,
        reorder: args.reorder,
        max_delay: Duration::from_millis(args.max_delay_ms),
        max_attempts: args.max_attempts,
        retry_base: Duration::from_millis(args.retry_base_ms),
        concurrency: usize::try_from(args.concurrency).unwrap_or(usize::MAX),
        progress: !args.no_progress,
    };
    let pacing = Pacing {
        runs_for_min: Duration::from_millis(args.min_runtime_ms),
        runs_for_max: Duration::from_millis(args.max_runtime_ms),
        timeout: Duration::from_secs(args.timeout_secs),
    };
    opts.validate()?;
    pacing.validate()?;
    Ok((opts, pacing))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fractions() {
        assert_eq!(fraction("0.25"), Ok(0.25));
        assert_eq!(fraction(" 1 "), Ok(1.0));
        assert!(fraction("1.5").unwrap_err().contains("between 0 and 1"));
        assert!(fraction("NaN").is_err());
        assert!(fraction("lots").unwrap_err().contains("not a number"));
        assert!(check_fraction("x", -0.0).is_ok());
        assert!(check_fraction("x", f64::INFINITY).is_err());
    }
}
