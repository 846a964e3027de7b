//! The worker Lambda's handler: SQS batches in, partial batch responses out.
//! All logic lives in [`genhook::worker`].

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use genhook::worker::{InboxRecord, Worker};
use lambda_runtime::{Error, LambdaEvent};

/// Handles one SQS batch; failed records are reported by message id so SQS delivers
/// only those again (`ReportBatchItemFailures`).
pub async fn function_handler(worker: &Worker, event: LambdaEvent<SqsEvent>) -> Result<SqsBatchResponse, Error> {
    let records = event.payload.records.into_iter().map(inbox_record).collect();
    let report = worker.process_batch(records).await;
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = report
        .failed
        .into_iter()
        .map(|id| {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            failure
        })
        .collect();
    Ok(response)
}

fn inbox_record(m: SqsMessage) -> InboxRecord {
    let receive_count = m.attributes.get("ApproximateReceiveCount").and_then(|v| v.parse().ok()).unwrap_or(1);
    InboxRecord {
        message_id: m.message_id.unwrap_or_default(),
        receipt_handle: m.receipt_handle.unwrap_or_default(),
        body: m.body.unwrap_or_default(),
        receive_count,
    }
}
