//! `genhook`: local tools for genhook webhooks (see `genhook --help`).

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use genhook::toolkit::auth::hmac::{HmacSecrets, sign_hex};
use genhook::toolkit::auth::standard_webhooks::Secret as WebhookSecret;
use genhook_cli::simulate::Provider;
use genhook_cli::simulate::replicate::{Prediction, message_id, prediction_id};
use serde_json::json;

/// genhook: the webhook pipeline for AI-generation APIs (Katalo, APIMP) on your machine,
/// a faithful provider simulator (Katalo, Replicate), signed test webhooks, and operator
/// tools for a deployed stack.
///
/// Start with `genhook dev --demo`.
#[derive(Parser)]
#[command(name = "genhook", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the whole pipeline locally: the receiver on a local port, the worker on the
    /// inbox, published events printed as JSON lines.
    ///
    /// State is kept in an embedded SQLite file (`--state-dir`), or in DynamoDB + SQS with
    /// `--aws`. Without KATALO_API_KEY, jobs are read from the built-in simulator.
    Dev(genhook_cli::dev::DevArgs),
    /// Print the events genhook published (the outbox) as JSON lines.
    Tail(genhook_cli::ops::TailArgs),
    /// Move dead-lettered inbox messages back to the inbox.
    Redrive(genhook_cli::ops::RedriveArgs),
    /// Create the table (with TTL) and queues (with DLQs) on an endpoint or sandbox account.
    Init(genhook_cli::ops::InitArgs),
    /// Print an APIMP callback URL carrying a reference and its token.
    CallbackUrl(genhook_cli::apimp::CallbackUrlArgs),
    /// Register a job right after creating it: it is polled until terminal and published
    /// even if its webhook never comes (Katalo), or its callbacks are confirmed (APIMP).
    Watch(genhook_cli::jobs::WatchArgs),
    /// Sweep Replicate's recent predictions now: every ended one never published is
    /// (the stack runs this on its schedule).
    Sweep(genhook_cli::jobs::SweepArgs),
    /// Ask for fresh output URLs of a finished job: a generation.urls_refreshed event
    /// follows (or a dead letter saying why not).
    Refresh(genhook_cli::jobs::RefreshArgs),
    /// Print the x-katalo-signature (hex HMAC-SHA256) of a body.
    ///
    /// Example: genhook sign --secret "$KATALO_WEBHOOK_SECRET" body.json
    Sign {
        #[command(flatten)]
        secret: Secret,
        /// The body file; standard input when omitted or `-`.
        file: Option<PathBuf>,
    },
    /// Check a signature over a body; exits 0 when valid, 1 when not.
    ///
    /// Example: genhook verify --signature 9c46…cc66 body.json
    Verify {
        #[command(flatten)]
        secret: Secret,
        /// The x-katalo-signature value to check.
        #[arg(long)]
        signature: String,
        /// The body file; standard input when omitted or `-`.
        file: Option<PathBuf>,
    },
    /// POST a body, signed, to a receiver and print the answer.
    ///
    /// Example: genhook send --url https://abc.execute-api.us-east-1.amazonaws.com/webhooks/katalo body.json
    Send {
        #[command(flatten)]
        target: Target,
        #[command(flatten)]
        secret: Secret,
        /// The body file; standard input when omitted or `-`.
        file: Option<PathBuf>,
    },
    /// Send a realistic signed Katalo event, or Replicate prediction webhook, to a receiver
    ///
    /// Replicate's is signed per Standard Webhooks (`webhook-id`, `webhook-timestamp`,
    /// `webhook-signature`): one message id for all --repeat copies, each signed at the
    /// time it is sent.
    ///
    /// Examples:
    ///   genhook trigger completed --url http://127.0.0.1:8080/webhooks/katalo
    ///   genhook trigger --provider replicate failed --secret whsec_... \
    ///       --url http://127.0.0.1:8080/webhooks/replicate
    #[command(verbatim_doc_comment)]
    Trigger {
        /// Which event to send.
        event: Event,
        /// Whose webhook to send.
        #[arg(long, value_enum, default_value_t = Provider::Katalo)]
        provider: Provider,
        #[command(flatten)]
        target: Target,
        /// The signing secret [default: $KATALO_WEBHOOK_SECRET, or $REPLICATE_WEBHOOK_SECRET
        /// with --provider replicate]; Replicate's is `whsec_<base64>`.
        #[arg(long)]
        secret: Option<String>,
        /// The job id, or Replicate prediction id (a fresh random one when omitted).
        #[arg(long)]
        job_id: Option<String>,
        /// Send the same delivery this many times (the provider's at-least-once retries).
        #[arg(long, default_value_t = 1)]
        repeat: u32,
    },
    /// Run a fake Katalo (or Replicate) provider: its status API, and signed webhook
    /// deliveries to a URL.
    Simulate(genhook_cli::simulate::SimulateArgs),
}

#[derive(clap::Args)]
struct Secret {
    /// The signing secret.
    #[arg(long, env = "KATALO_WEBHOOK_SECRET", hide_env_values = true)]
    secret: String,
}

#[derive(clap::Args)]
struct Target {
    /// The receiver's webhook URL.
    #[arg(long, env = "GENHOOK_WEBHOOK_URL")]
    url: String,
    /// Sign with a wrong secret instead (to see a forged delivery rejected).
    #[arg(long)]
    forge: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum Event {
    /// generation.completed (Replicate: a succeeded prediction)
    Completed,
    /// generation.failed (Replicate: a failed prediction)
    Failed,
}

/// What can go wrong, with what to do about it.
#[derive(Debug, thiserror::Error)]
enum CliError {
    #[error("cannot read {path}: {source} (pass a readable file, or `-` for standard input)")]
    Read { path: String, source: std::io::Error },
    #[error("cannot reach {url}: {reason} (is the receiver running and the URL right?)")]
    Send { url: String, reason: String },
    #[error("the receiver answered HTTP {0}")]
    Refused(u16),
    #[error("sending needs the signing secret: pass --secret or set {0}")]
    MissingSecret(&'static str),
    #[error("invalid --secret: {0} (Replicate's comes from GET /v1/webhooks/default/secret)")]
    BadSecret(#[from] genhook::toolkit::auth::standard_webhooks::SecretError),
    #[error("simulate: {0}")]
    Simulate(#[from] genhook_cli::simulate::SimulateError),
    #[error("dev: {0}")]
    Dev(#[from] genhook_cli::dev::DevError),
    #[error("{0}")]
    Ops(#[from] genhook_cli::ops::OpsError),
    #[error("{0}")]
    Apimp(#[from] genhook_cli::apimp::ApimpError),
    #[error("{0}")]
    Jobs(#[from] genhook_cli::jobs::JobsError),
}

fn read_body(file: Option<&PathBuf>) -> Result<Vec<u8>, CliError> {
    match file {
        Some(p) if p.as_os_str() != "-" => {
            std::fs::read(p).map_err(|source| CliError::Read { path: p.display().to_string(), source })
        }
        _ => {
            let mut buf = Vec::new();
            std::io::stdin()
                .read_to_end(&mut buf)
                .map_err(|source| CliError::Read { path: "standard input".into(), source })?;
            Ok(buf)
        }
    }
}

/// POSTs `body` with `headers` (the signature) and prints the answer.
async fn post(url: &str, headers: &[(&'static str, String)], body: Vec<u8>) -> Result<u16, CliError> {
    let mut request = genhook::toolkit::http::http_client(Duration::from_secs(30))
        .post(url)
        .header("content-type", "application/json")
        .body(body);
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let resp = request
        .send()
        .await
        .map_err(|e| CliError::Send { url: url.to_string(), reason: e.without_url().to_string() })?;
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    println!("{status} {text}");
    Ok(status)
}

/// The wrong key `--forge` signs with.
const FORGED_SECRET: &[u8] = b"not-the-signing-secret";

/// Katalo's signature header for `body`.
fn katalo_signature(target: &Target, secret: &str, body: &[u8]) -> [(&'static str, String); 1] {
    let secret = if target.forge { FORGED_SECRET } else { secret.as_bytes() };
    [(genhook::providers::katalo::SIGNATURE_HEADER, sign_hex(secret, body))]
}

/// A realistic Replicate prediction webhook body: a prediction that just ended.
fn prediction_body(event: Event, id: &str) -> Vec<u8> {
    let now = time::OffsetDateTime::now_utc();
    let (status, output, error) = match event {
        Event::Completed => ("succeeded", json!([format!("https://replicate.delivery/xezq/{id}/out-0.webp")]), None),
        Event::Failed => ("failed", json!(null), Some("CUDA out of memory. Tried to allocate 2.00 GiB")),
    };
    Prediction {
        id,
        status,
        output,
        error,
        created_at: now - time::Duration::seconds(9),
        started_at: Some(now - time::Duration::seconds(8)),
        completed_at: Some(now),
        api_base: genhook::providers::replicate::DEFAULT_BASE_URL,
    }
    .to_json()
    .to_string()
    .into_bytes()
}

fn event_body(event: Event, job_id: &str) -> Vec<u8> {
    let (event_type, outputs, failure) = match event {
        Event::Completed => (
            genhook::domain::event::COMPLETED,
            json!([{"url": format!("https://katalo-outputs.s3.amazonaws.com/{job_id}/primary.png")}]),
            json!(null),
        ),
        Event::Failed => (
            genhook::domain::event::FAILED,
            json!([]),
            json!({"code": "content_policy", "message": "The source image was rejected."}),
        ),
    };
    json!({
        "event_type": event_type,
        "job_id": job_id,
        "source_asset_id": "src_01JXAMPLE",
        "reference": "genhook-trigger",
        "outputs": outputs,
        "failure": failure,
        "metadata": {"sent_by": "genhook trigger"}
    })
    .to_string()
    .into_bytes()
}

async fn run(cli: Cli) -> Result<ExitCode, CliError> {
    match cli.command {
        Command::Sign { secret, file } => {
            println!("{}", sign_hex(secret.secret.as_bytes(), &read_body(file.as_ref())?));
            Ok(ExitCode::SUCCESS)
        }
        Command::Verify { secret, signature, file } => {
            let body = read_body(file.as_ref())?;
            match HmacSecrets::new(secret.secret, None).verify_hex(&body, Some(&signature)) {
                Ok(_) => {
                    println!("valid");
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    println!("invalid: {e}");
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        Command::Send { target, secret, file } => {
            let body = read_body(file.as_ref())?;
            let status = post(&target.url, &katalo_signature(&target, &secret.secret, &body), body).await?;
            if (200..300).contains(&status) { Ok(ExitCode::SUCCESS) } else { Err(CliError::Refused(status)) }
        }
        Command::Trigger { event, provider, target, secret, job_id, repeat } => {
            let secret = Provider::or_env(secret, provider.secret_var())
                .ok_or(CliError::MissingSecret(provider.secret_var()))?;
            let mut worst = 200;
            match provider {
                Provider::Katalo => {
                    let job_id =
                        job_id.unwrap_or_else(|| format!("job_{}", &genhook::domain::dedupe::random_id()[..16]));
                    let body = event_body(event, &job_id);
                    let signature = katalo_signature(&target, &secret, &body);
                    for _ in 0..repeat.max(1) {
                        worst = worst.max(post(&target.url, &signature, body.clone()).await?);
                    }
                }
                Provider::Replicate => {
                    let key = if target.forge {
                        WebhookSecret::from_bytes(FORGED_SECRET)?
                    } else {
                        WebhookSecret::parse(&secret)?
                    };
                    let body = prediction_body(event, &job_id.unwrap_or_else(prediction_id));
                    // One message: every copy carries its id, each signed when it is sent.
                    let message = message_id();
                    for _ in 0..repeat.max(1) {
                        let now = time::OffsetDateTime::now_utc().unix_timestamp();
                        worst = worst.max(post(&target.url, &key.headers(&message, now, &body), body.clone()).await?);
                    }
                }
            }
            if (200..300).contains(&worst) { Ok(ExitCode::SUCCESS) } else { Err(CliError::Refused(worst)) }
        }
        Command::Simulate(args) => Ok(genhook_cli::simulate::run(args).await?),
        Command::Dev(args) => Ok(genhook_cli::dev::run(args).await?),
        Command::Tail(args) => Ok(genhook_cli::ops::tail(args).await?),
        Command::Redrive(args) => Ok(genhook_cli::ops::redrive_command(args).await?),
        Command::Init(args) => Ok(genhook_cli::ops::init(args).await?),
        Command::CallbackUrl(args) => Ok(genhook_cli::apimp::callback_url(args)?),
        Command::Watch(args) => Ok(genhook_cli::jobs::watch_command(args).await?),
        Command::Sweep(args) => Ok(genhook_cli::jobs::sweep_command(args).await?),
        Command::Refresh(args) => Ok(genhook_cli::jobs::refresh_command(args).await?),
    }
}

/// Logs go to standard error (standard output carries events and answers); `RUST_LOG`
/// overrides the default level.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,genhook=info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .with_target(false)
        .compact()
        .init();
}

#[tokio::main]
async fn main() -> ExitCode {
    init_logging();
    match run(Cli::parse()).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("genhook: {e}");
            ExitCode::from(2)
        }
    }
}
