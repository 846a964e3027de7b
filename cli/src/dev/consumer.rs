//! What Lambda's SQS event source mapping does for the deployed worker, for places that
//! consume a queue themselves (`genhook dev`): receive a batch, hand it to the worker,
//! delete what succeeded, and leave the batch item failures for redelivery (the worker
//! has already set their retry delay).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tracing::warn;

use genhook::engine::worker::{BatchReport, InboxRecord, Worker};
use genhook::ports::{QueueConsumer, QueueError};

/// Messages received per batch (the template's batch size).
pub const BATCH_SIZE: usize = 10;

/// Receives one batch (waiting up to `wait`) and processes it; `None` when the queue had
/// nothing. Successful records are deleted; failures stay for their retry.
pub async fn process_one_batch(
    source: &dyn QueueConsumer,
    worker: &Worker,
    wait: Duration,
) -> Result<Option<BatchReport>, QueueError> {
    let messages = source.receive(BATCH_SIZE, wait).await?;
    if messages.is_empty() {
        return Ok(None);
    }
    let records: Vec<InboxRecord> = messages.into_iter().map(InboxRecord::from).collect();
    let receipts: Vec<(String, String)> =
        records.iter().map(|r| (r.message_id.clone(), r.receipt_handle.clone())).collect();
    let report = worker.process_batch(records).await;
    let failed: HashSet<&str> = report.failed.iter().map(String::as_str).collect();
    let done = receipts.into_iter().filter(|(id, _)| !failed.contains(id.as_str())).map(|(_, r)| r).collect();
    source.delete(done).await?;
    Ok(Some(report))
}

/// Consumes `source` until `stop` turns true, calling `on_batch` after each batch. Queue
/// outages are logged and retried after a pause; a batch in progress always finishes.
pub async fn run(
    source: Arc<dyn QueueConsumer>,
    worker: Arc<Worker>,
    mut stop: watch::Receiver<bool>,
    mut on_batch: impl FnMut(&BatchReport) + Send,
) {
    const WAIT: Duration = Duration::from_secs(1);
    while !*stop.borrow() {
        match process_one_batch(source.as_ref(), &worker, WAIT).await {
            Ok(Some(report)) => on_batch(&report),
            Ok(None) => {}
            Err(e) => {
                warn!(error = %e, "cannot receive from the inbox; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(WAIT) => {}
                    _ = stop.changed() => {}
                }
            }
        }
    }
}
