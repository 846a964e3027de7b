//! Operator commands: `genhook init` (create a stack's table and queues on an endpoint),
//! `genhook tail` (read published events back) and `genhook redrive` (move dead-lettered
//! messages back to their queue).

use std::collections::HashSet;
use std::process::ExitCode;
use std::time::Duration;

use genhook::adapters::aws::load_sdk_config;
use genhook::adapters::provision::{MAX_RECEIVES, ProvisionError, provision};
use genhook::engine::worker::FAILURE_REASON_ATTRIBUTE;
use genhook::ports::{OutgoingMessage, Queue, QueueConsumer, QueueError};

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
    /// The command would do harm as asked.
    #[error("{0}")]
    Refused(&'static str),
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
  genhook tail --aws --ack     # consume the SQS outbox (deletes what it prints)
  genhook tail --aws --peek    # look without consuming (each look still counts a receive)")]
pub struct TailArgs {
    #[command(flatten)]
    pub backend: BackendArgs,
    /// Keep waiting for new events.
    #[arg(long, short)]
    pub follow: bool,
    /// Delete events after printing them (consume the outbox). Without it, the embedded
    /// outbox is only read.
    #[arg(long, conflicts_with = "peek")]
    pub ack: bool,
    /// On SQS: print events and make them visible again at once, without deleting them.
    /// Every read still counts toward the outbox DLQ's receive limit (5), so peeking at a
    /// production outbox moves its messages toward the DLQ; it is refused without this.
    #[arg(long)]
    pub peek: bool,
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
        (None, false) if !args.peek => Err(OpsError::Refused(
            "reading the SQS outbox counts a receive on each event, and after 5 the queue moves it to its DLQ: \
             pass --ack to consume the events (delete what is printed), or --peek to look anyway",
        )),
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
                } else if !batch.is_empty() {
                    // Peeking: hand them straight back to the real consumer.
                    let back = batch.iter().map(|m| (m.receipt_handle.clone(), Duration::ZERO)).collect();
                    backend.outbox.delay_retries(back).await?;
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
    let mut empty_receives = 0;
    loop {
        let left = max.map_or(10, |m| m.saturating_sub(report.moved + report.failed).min(10)) as usize;
        if left == 0 {
            return Ok(report);
        }
        // Long polls: one empty short poll of SQS does not mean the queue is empty.
        let batch = from.receive(left, REDRIVE_WAIT).await?;
        let batch: Vec<_> = batch.into_iter().filter(|m| attempted.insert(m.message_id.clone())).collect();
        if batch.is_empty() {
            empty_receives += 1;
            if empty_receives >= 2 || from.depth().await? == 0 {
                return Ok(report);
            }
            continue;
        }
        empty_receives = 0;
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

/// How long one redrive receive waits for messages.
const REDRIVE_WAIT: Duration = Duration::from_secs(2);

/// Starts SQS's own redrive of the whole DLQ back to the inbox; returns the task handle.
async fn start_move_task(sqs: &aws_sdk_sqs::Client, dlq_url: &str, inbox_url: &str) -> Result<String, String> {
    let arn = |url: &str| {
        let sqs = sqs.clone();
        let url = url.to_string();
        async move {
            let out = sqs
                .get_queue_attributes()
                .queue_url(&url)
                .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
                .send()
                .await
                .map_err(|e| aws_sdk_sqs::error::DisplayErrorContext(e).to_string())?;
            out.attributes()
                .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn))
                .cloned()
                .ok_or_else(|| format!("no ARN for {url}"))
        }
    };
    let (source, destination) = (arn(dlq_url).await?, arn(inbox_url).await?);
    let out = sqs
        .start_message_move_task()
        .source_arn(source)
        .destination_arn(destination)
        .send()
        .await
        .map_err(|e| aws_sdk_sqs::error::DisplayErrorContext(e).to_string())?;
    Ok(out.task_handle().unwrap_or("-").to_string())
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
    if let (Some((sqs, dlq, inbox)), None) = (&backend.sqs_redrive, args.max) {
        match start_move_task(sqs, dlq, inbox).await {
            Ok(handle) => {
                println!("SQS is moving all {depth} dead-lettered messages back to the inbox (task {handle})");
                return Ok(ExitCode::SUCCESS);
            }
            Err(e) => eprintln!(
                "genhook redrive: SQS's own redrive is not available ({e}); moving messages one batch at a time"
            ),
        }
    }
    let report = redrive(backend.inbox_dlq_consumer.as_ref(), backend.inbox.as_ref(), args.max).await?;
    println!("moved {} messages back to the inbox ({} failed and stay in the DLQ)", report.moved, report.failed);
    Ok(if report.failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
