//! The worker Lambda's handler: SQS batches in, partial batch responses out.
//! All logic lives in [`genhook::engine::worker`].

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use genhook::domain::retry::RetryState;
use genhook::domain::trace::{REQUEST_ID_ATTRIBUTE, TRACE_HEADER_ATTRIBUTE, Trace};
use genhook::engine::worker::{InboxRecord, Worker};
use lambda_runtime::{Error, LambdaEvent};

/// Handles one SQS batch; failed records are reported by message id so SQS delivers
/// only those again (`ReportBatchItemFailures`).
pub async fn function_handler(worker: &Worker, event: LambdaEvent<SqsEvent>) -> Result<SqsBatchResponse, Error> {
    let records = event.payload.records.into_iter().map(inbox_record).collect();
    let deadline_ms = deadline(event.context.deadline);
    // The invocation's deadline (epoch ms): no provider call starts that could outlast
    // it, so a slow record never costs the whole batch a Lambda timeout.
    let report = worker.process_batch_by(records, deadline_ms).await;
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

/// The invocation deadline as epoch ms, or `None` when the value cannot be one: Lambda
/// sends an epoch time, but some local emulators send the timeout itself (e.g. 600000),
/// which read as a date in 1970 would leave no time for anything.
fn deadline(raw: u64) -> Option<i64> {
    /// 2000-01-01T00:00:00Z in epoch ms.
    const PLAUSIBLE: i64 = 946_684_800_000;
    i64::try_from(raw).ok().filter(|d| *d >= PLAUSIBLE)
}

fn inbox_record(m: SqsMessage) -> InboxRecord {
    let receive_count = m.attributes.get("ApproximateReceiveCount").and_then(|v| v.parse().ok()).unwrap_or(1);
    // The receiver's request id (a message attribute) and the X-Ray header (the SQS
    // system attribute Lambda hands over with the others).
    let request_id = m.message_attributes.get(REQUEST_ID_ATTRIBUTE).and_then(|a| a.string_value.as_deref());
    let trace = Trace::new(request_id, m.attributes.get(TRACE_HEADER_ATTRIBUTE).map(String::as_str));
    // The attempts of the copies sent before this one while the record waited.
    let strings: Vec<(String, String)> =
        m.message_attributes.iter().filter_map(|(k, v)| v.string_value.clone().map(|s| (k.clone(), s))).collect();
    let retry = RetryState::from_attributes(&strings);
    InboxRecord {
        message_id: m.message_id.unwrap_or_default(),
        receipt_handle: m.receipt_handle.unwrap_or_default(),
        body: m.body.unwrap_or_default(),
        receive_count,
        trace,
        retry,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use async_trait::async_trait;
    use genhook::adapters::memory::{MemoryQueue, MemoryStore};
    use genhook::domain::clock::SystemClock;
    use genhook::domain::job::{Job, JobState};
    use genhook::engine::worker::{WorkerPorts, WorkerSettings};
    use genhook::ports::{JobApi, JobApiError};
    use genhook::providers::katalo::reconcile::{DEFAULT_POLL_HORIZON, KataloReconciler};
    use lambda_runtime::Context;

    use super::*;

    const FIXTURE: &str = include_str!("../fixtures/sqs-inbox-batch.json");

    struct Done;

    #[async_trait]
    impl JobApi for Done {
        async fn get_job(&self, job_id: &str) -> Result<Job, JobApiError> {
            Ok(Job {
                job_id: job_id.into(),
                state: JobState::Succeeded,
                status: "succeeded".into(),
                outputs: vec![],
                failure: None,
                reference: None,
                metadata: None,
                progress: None,
                source_asset_id: None,
                outputs_removed: false,
            })
        }
    }

    #[tokio::test]
    async fn handles_the_sqs_fixture() {
        let outbox = Arc::new(MemoryQueue::default());
        let store = Arc::new(MemoryStore::default());
        let ports = WorkerPorts {
            store,
            inbox: Arc::new(MemoryQueue::default()),
            inbox_dlq: None,
            outbox: outbox.clone(),
            clock: Arc::new(SystemClock),
        };
        let katalo = Arc::new(KataloReconciler::new(Arc::new(Done), DEFAULT_POLL_HORIZON));
        let worker = Worker::new(ports, vec![katalo], WorkerSettings::default());
        let event: SqsEvent = serde_json::from_str(FIXTURE).unwrap();
        let response = function_handler(&worker, LambdaEvent::new(event, Context::default())).await.unwrap();
        // msg-1 is published; msg-2 is not JSON and, with no DLQ configured, is reported
        // failed so the queue's redrive policy takes it.
        assert_eq!(outbox.messages().len(), 1);
        let failed: Vec<_> = response.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect();
        assert_eq!(failed, ["msg-2"]);
    }

    #[test]
    fn a_record_carries_the_attempts_of_the_copies_before_it() {
        let event: SqsEvent = serde_json::from_str(FIXTURE).unwrap();
        let records: Vec<InboxRecord> = event.records.into_iter().map(inbox_record).collect();
        let carried =
            RetryState { earlier_attempts: 3, waiting_since_ms: Some(1_795_435_100_000), key_refused_since_ms: None };
        assert_eq!(records[0].retry, carried);
        assert_eq!(records[0].attempt(), 4);
        assert_eq!((records[1].retry, records[1].attempt()), (RetryState::default(), 1));
    }

    /// The worker dead-letters a record at the inbox's `maxReceiveCount` itself, with the
    /// reason, so the number it is given must be the template's.
    #[test]
    fn the_worker_knows_the_inbox_redrive_limit() {
        let template = include_str!("../../../template.yaml");
        let value = |after: &str, key: &str| -> String {
            let (_, rest) = template.split_once(after).unwrap();
            let line = rest.lines().find_map(|l| l.trim().strip_prefix(key)).unwrap();
            line.trim().trim_matches('"').to_string()
        };
        let redrive = value("\n  InboxQueue:\n", "maxReceiveCount:");
        let worker = value("\n  WorkerFunction:\n", "GENHOOK_INBOX_MAX_RECEIVES:");
        assert_eq!(redrive, worker);
        assert_eq!(redrive, genhook::engine::worker::DEFAULT_MAX_RECEIVES.to_string());
    }

    #[test]
    fn a_deadline_that_is_not_an_epoch_time_is_unknown() {
        assert_eq!(deadline(1_795_486_095_792), Some(1_795_486_095_792));
        assert_eq!(deadline(600_000), None, "a local emulator's relative timeout");
        assert_eq!(deadline(0), None);
        assert_eq!(deadline(u64::MAX), None);
    }
}
