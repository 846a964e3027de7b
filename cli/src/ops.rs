//! Operator commands: `genhook init` (create a stack's table and queues on an endpoint),
//! `genhook tail` (read published events back) and `genhook redrive` (move dead-lettered
//! messages back to their queue).

use std::collections::HashSet;
use std::process::ExitCode;
use std::time::Duration;

use genhook::adapters::aws::load_sdk_config;
use genhook::adapters::provision::{MAX_RECEIVES, ProvisionError, provision};
use genhook::ports::{OutgoingMessage, Queue, QueueConsumer, QueueError};
use genhook::worker::FAILURE_REASON_ATTRIBUTE;

use crate::backend::{BackendArgs, BackendError};

/// What can go wrong in an operator command.
#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    /// The backend cannot be opened.
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// Provisioning failed.
    #[error("cannot create the resources: {0} (check AWS_ENDPOINT_URL / credentials and region)")]
    Provision(#[from] ProvisionError),
    /// A queue call failed.
    #[error("{0}")]
    Queue(#[from] QueueError),
}

/// `genhook init` arguments.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  AWS_ENDPOINT_URL=http://127.0.0.1:4566 genhook init        # DynamoDB Local / SQS emulator
  eval \"$(genhook init --prefix my-sandbox)\"                 # export the variables it prints")]
pub struct InitArgs {
    /// Name prefix: creates `<prefix>-dedupe`, `<prefix>-inbox`, `<prefix>-inbox-dlq`,
    /// `<prefix>-outbox` and `<prefix>-outbox-dlq`.
    #[arg(long, default_value = "genhook-dev")]
    pub prefix: String,
    /// The queues' visibility timeout.
    #[arg(long, default_value_t = 30)]
    pub visibility_timeout_secs: u32,
}

/// Runs `genhook init`: prints `export NAME=value` lines for the created resources.
pub async fn init(args: InitArgs) -> Result<ExitCode, OpsError> {
    let sdk = load_sdk_config().await;
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let urls = provision(&ddb, &sqs, &args.prefix, args.visibility_timeout_secs).await?;
    eprintln!("genhook init: table and queues ready (TTL on expires_at, DLQs after {MAX_RECEIVES} receives)");
    for (name, value) in urls.env() {
        println!("export {name}={value}");
    }
    Ok(ExitCode::SUCCESS)
}

/// `genhook tail` arguments.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  genhook tail                 # every event genhook dev published (embedded store)
  genhook tail --follow        # and keep printing new ones
  genhook tail --aws --ack     # consume the SQS outbox (deletes what it prints)")]
pub struct TailArgs {
    #[command(flatten)]
    pub backend: BackendArgs,
    /// Keep waiting for new events.
    #[arg(long, short)]
    pub follow: bool,
    /// Delete events after printing them (consume the outbox). Without it, the embedded
    /// outbox is only read, and SQS messages become visible again after their timeout.
    #[arg(long)]
    pub ack: bool,
}

/// Runs `genhook tail`: outbox events as JSON lines on standard output.
pub async fn tail(args: TailArgs) -> Result<ExitCode, OpsError> {
    let backend = args.backend.open().await?;
    match (&backend.embedded, args.ack) {
        (Some(embedded), false) => {
            let mut after = 0;
            loop {
                let batch = embedded.outbox.list_after(after, 100)?;
                for m in &batch {
                    println!("{}", m.body);
                    after = m.seq;
                }
                if batch.is_empty() {
                    if !args.follow {
                        return Ok(ExitCode::SUCCESS);
                    }
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
            }
        }
        _ => {
            let source = backend.outbox_consumer;
            let mut seen = HashSet::new();
            loop {
                let batch = source.receive(10, Duration::from_secs(if args.follow { 20 } else { 1 })).await?;
                // Without --ack a message can come round again; print it once.
                let fresh: Vec<_> = batch.iter().filter(|m| seen.insert(m.message_id.clone())).collect();
                for m in &fresh {
                    println!("{}", m.body);
                }
                if args.ack && !batch.is_empty() {
                    source.delete(batch.iter().map(|m| m.receipt_handle.clone()).collect()).await?;
                }
                if fresh.is_empty() && !args.follow {
                    return Ok(ExitCode::SUCCESS);
                }
            }
        }
    }
}

/// `genhook redrive` arguments.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  genhook redrive --dry-run            # how many are dead-lettered, and why
  genhook redrive --max 10             # move ten back to the inbox
  genhook redrive --aws                # GENHOOK_INBOX_DLQ_URL -> GENHOOK_INBOX_QUEUE_URL")]
pub struct RedriveArgs {
    #[command(flatten)]
    pub backend: BackendArgs,
    /// Move at most this many messages.
    #[arg(long)]
    pub max: Option<u64>,
    /// Only count and show what would move.
    #[arg(long)]
    pub dry_run: bool,
}

/// What a redrive did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RedriveReport {
    /// Messages moved back.
    pub moved: u64,
    /// Messages that could not be sent back (left in the DLQ).
    pub failed: u64,
}

/// Moves up to `max` messages from `from` to `to`: each is sent to `to` before it is
/// deleted from `from`, so a failure midway duplicates at worst (the worker dedupes) and
/// never loses one. The failure-reason attribute is dropped on the way back.
pub async fn redrive(from: &dyn QueueConsumer, to: &dyn Queue, max: Option<u64>) -> Result<RedriveReport, QueueError> {
    let mut report = RedriveReport::default();
    let mut attempted = HashSet::new();
    loop {
        let left = max.map_or(10, |m| m.saturating_sub(report.moved + report.failed).min(10)) as usize;
        if left == 0 {
            return Ok(report);
        }
        let batch = from.receive(left, Duration::ZERO).await?;
        let batch: Vec<_> = batch.into_iter().filter(|m| attempted.insert(m.message_id.clone())).collect();
        if batch.is_empty() {
            return Ok(report);
        }
        let msgs = batch
            .iter()
            .map(|m| OutgoingMessage {
                body: m.body.clone(),
                attributes: m.attributes.iter().filter(|(k, _)| k != FAILURE_REASON_ATTRIBUTE).cloned().collect(),
                ..OutgoingMessage::default()
            })
            .collect();
        let results = to.send_batch(msgs).await;
        let mut done = Vec::new();
        for (m, r) in batch.iter().zip(results) {
            match r {
                Ok(_) => {
                    report.moved += 1;
                    done.push(m.receipt_handle.clone());
                }
                Err(e) => {
                    report.failed += 1;
                    eprintln!("genhook redrive: message {} stays in the DLQ: {e}", m.message_id);
                }
            }
        }
        from.delete(done).await?;
    }
}

/// Runs `genhook redrive` on the inbox's DLQ.
pub async fn redrive_command(args: RedriveArgs) -> Result<ExitCode, OpsError> {
    let backend = args.backend.open().await?;
    let depth = backend.inbox_dlq_consumer.depth().await?;
    if args.dry_run {
        let would = args.max.map_or(depth, |m| m.min(depth));
        println!("would move {would} of {depth} dead-lettered messages back to the inbox");
        // Show why the first few died, then make them visible again at once.
        let peek = backend.inbox_dlq_consumer.receive(would.min(10) as usize, Duration::ZERO).await?;
        for m in &peek {
            let reason = m.attributes.iter().find(|(k, _)| k == FAILURE_REASON_ATTRIBUTE).map(|(_, v)| v.as_str());
            println!("  {}: {}", m.message_id, reason.unwrap_or("(no reason recorded)"));
        }
        let release = peek.iter().map(|m| (m.receipt_handle.clone(), Duration::ZERO)).collect();
        backend.inbox_dlq.delay_retries(release).await?;
        return Ok(ExitCode::SUCCESS);
    }
    let report = redrive(backend.inbox_dlq_consumer.as_ref(), backend.inbox.as_ref(), args.max).await?;
    println!("moved {} messages back to the inbox ({} failed and stay in the DLQ)", report.moved, report.failed);
    Ok(if report.failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
