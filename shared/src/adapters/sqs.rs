//! [`Queue`] on SQS: one adapter instance per queue URL. Sends are batched (10 entries
//! and 256 KiB per call), and FIFO queues get a group id and a deduplication id, each
//! written as SQS takes it ([`fifo_id`]: a long job id or event id is hashed).

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry, MessageAttributeValue,
    MessageSystemAttributeName, MessageSystemAttributeNameForSends, MessageSystemAttributeValue, QueueAttributeName,
    SendMessageBatchRequestEntry,
};
use futures_util::future::join_all;

use crate::domain::dedupe::fifo_id;
use crate::domain::trace::TRACE_HEADER_ATTRIBUTE;
use crate::ports::{MAX_DELAY, MAX_VISIBILITY, OutgoingMessage, Queue, QueueConsumer, QueueError, ReceivedMessage};

/// SQS caps a batch at 10 entries.
const MAX_BATCH_ENTRIES: usize = 10;
/// Batch payload budget (the classic SQS limit; kept so any queue configuration works).
const MAX_BATCH_BYTES: usize = 256 * 1024;
/// The default FIFO message group when a message names none.
const DEFAULT_GROUP: &str = "genhook";

/// One SQS queue.
#[derive(Debug, Clone)]
pub struct SqsQueue {
    client: Client,
    url: String,
    fifo: bool,
}

impl SqsQueue {
    /// The queue at `url`.
    pub fn new(client: Client, url: impl Into<String>) -> Self {
        let url = url.into();
        Self { fifo: url.ends_with(".fifo"), client, url }
    }

    /// The queue's URL.
    pub fn url(&self) -> &str {
        &self.url
    }
}

fn unavailable<E: ProvideErrorMetadata + std::error::Error + 'static>(op: &str, e: SdkError<E>) -> QueueError {
    let detail = match e.as_service_error() {
        Some(se) => format!("{}: {}", se.code().unwrap_or("ServiceError"), se.message().unwrap_or_default()),
        None => DisplayErrorContext(&e).to_string(),
    };
    QueueError::Unavailable(format!("{op}: {detail}"))
}

/// Error codes with which SQS refuses the message itself (its size, characters or
/// attributes; a batch of one message that is too long): sending it again cannot succeed.
const MESSAGE_FAULTS: [&str; 5] = [
    "InvalidParameterValue",
    "InvalidMessageContents",
    "InvalidAttributeName",
    "InvalidAttributeValue",
    "BatchRequestTooLong",
];

/// A send that failed as a whole: [`QueueError::Rejected`] when SQS refused the message
/// itself (as the other adapters report it, and as a batch entry's sender fault is),
/// otherwise [`QueueError::Unavailable`].
fn send_failed<E: ProvideErrorMetadata + std::error::Error + 'static>(op: &str, e: SdkError<E>) -> QueueError {
    match e.as_service_error().and_then(|se| se.code()) {
        Some(code) if MESSAGE_FAULTS.iter().any(|f| code == *f || code.ends_with(&format!(".{f}"))) => {
            let message = e.as_service_error().and_then(|se| se.message()).unwrap_or_default();
            QueueError::Rejected(format!("{op}: {code}: {message}"))
        }
        _ => unavailable(op, e),
    }
}

fn attribute(value: &str) -> MessageAttributeValue {
    MessageAttributeValue::builder().data_type("String").string_value(value).build().expect("data_type is set")
}

/// The X-Ray header as SQS's own `AWSTraceHeader` system attribute (what Lambda's event
/// source hands on), rather than a message attribute.
fn trace_header(value: &str) -> Option<MessageSystemAttributeValue> {
    MessageSystemAttributeValue::builder().data_type("String").string_value(value).build().ok()
}

fn delay_seconds(m: &OutgoingMessage) -> Option<i32> {
    m.delay.filter(|d| !d.is_zero()).map(|d| d.min(MAX_DELAY).as_secs().max(1) as i32)
}

/// Splits messages into batches by entry count and payload size; yields index ranges.
fn batches(msgs: &[OutgoingMessage]) -> Vec<std::ops::Range<usize>> {
    let size =
        |m: &OutgoingMessage| m.body.len() + m.attributes.iter().map(|(k, v)| k.len() + v.len() + 6).sum::<usize>();
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, m) in msgs.iter().enumerate() {
        let len = size(m);
        if i > start && (i - start == MAX_BATCH_ENTRIES || bytes + len > MAX_BATCH_BYTES) {
            out.push(start..i);
            (start, bytes) = (i, 0);
        }
        bytes += len;
    }
    if start < msgs.len() {
        out.push(start..msgs.len());
    }
    out
}

impl SqsQueue {
    async fn send_chunk(&self, msgs: &[OutgoingMessage]) -> Vec<Result<String, QueueError>> {
        let entries = msgs.iter().enumerate().map(|(i, m)| {
            let mut e = SendMessageBatchRequestEntry::builder()
                .id(i.to_string())
                .message_body(&m.body)
                .set_delay_seconds(delay_seconds(m));
            for (k, v) in &m.attributes {
                e = match (k.as_str(), trace_header(v)) {
                    (TRACE_HEADER_ATTRIBUTE, Some(h)) => {
                        e.message_system_attributes(MessageSystemAttributeNameForSends::AwsTraceHeader, h)
                    }
                    _ => e.message_attributes(k, attribute(v)),
                };
            }
            if self.fifo {
                e = e
                    .message_group_id(fifo_id(m.group_id.as_deref().unwrap_or(DEFAULT_GROUP)))
                    .set_message_deduplication_id(m.dedup_id.as_deref().map(fifo_id));
            }
            e.build().expect("id and body are set")
        });
        let out = match self
            .client
            .send_message_batch()
            .queue_url(&self.url)
            .set_entries(Some(entries.collect()))
            .send()
            .await
        {
            Ok(out) => out,
            // A batch of one message refused as a whole is that message's refusal (an
            // oversized message always travels alone, see `batches`).
            Err(e) if msgs.len() == 1 => return vec![Err(send_failed("SendMessageBatch", e))],
            Err(e) => {
                let e = unavailable("SendMessageBatch", e).to_string();
                return msgs.iter().map(|_| Err(QueueError::Unavailable(e.clone()))).collect();
            }
        };
        let mut results: Vec<Result<String, QueueError>> =
            msgs.iter().map(|_| Err(QueueError::Unavailable("no result for batch entry".into()))).collect();
        for ok in out.successful() {
            if let Some(r) = ok.id().parse::<usize>().ok().and_then(|i| results.get_mut(i)) {
                *r = Ok(ok.message_id().to_string());
            }
        }
        for failed in out.failed() {
            if let Some(r) = failed.id().parse::<usize>().ok().and_then(|i| results.get_mut(i)) {
                let why = format!("{}: {}", failed.code(), failed.message().unwrap_or_default());
                *r = Err(if failed.sender_fault() { QueueError::Rejected(why) } else { QueueError::Unavailable(why) });
            }
        }
        results
    }
}

#[async_trait]
impl Queue for SqsQueue {
    async fn send(&self, msg: OutgoingMessage) -> Result<String, QueueError> {
        let mut req = self
            .client
            .send_message()
            .queue_url(&self.url)
            .set_delay_seconds(delay_seconds(&msg))
            .message_body(msg.body);
        for (k, v) in &msg.attributes {
            req = match (k.as_str(), trace_header(v)) {
                (TRACE_HEADER_ATTRIBUTE, Some(h)) => {
                    req.message_system_attributes(MessageSystemAttributeNameForSends::AwsTraceHeader, h)
                }
                _ => req.message_attributes(k, attribute(v)),
            };
        }
        if self.fifo {
            req = req
                .message_group_id(fifo_id(msg.group_id.as_deref().unwrap_or(DEFAULT_GROUP)))
                .set_message_deduplication_id(msg.dedup_id.as_deref().map(fifo_id));
        }
        let out = req.send().await.map_err(|e| send_failed("SendMessage", e))?;
        Ok(out.message_id().unwrap_or_default().to_string())
    }

    async fn send_batch(&self, msgs: Vec<OutgoingMessage>) -> Vec<Result<String, QueueError>> {
        let chunks = batches(&msgs);
        let results = join_all(chunks.iter().map(|r| self.send_chunk(&msgs[r.clone()]))).await;
        results.into_iter().flatten().collect()
    }

    async fn delay_retries(&self, retries: Vec<(String, Duration)>) -> Result<(), QueueError> {
        let calls = retries.chunks(MAX_BATCH_ENTRIES).map(|chunk| {
            let entries = chunk.iter().enumerate().map(|(i, (receipt, delay))| {
                ChangeMessageVisibilityBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(receipt)
                    .visibility_timeout(delay.min(&MAX_VISIBILITY).as_secs() as i32)
                    .build()
                    .expect("id and receipt are set")
            });
            self.client
                .change_message_visibility_batch()
                .queue_url(&self.url)
                .set_entries(Some(entries.collect()))
                .send()
        });
        for result in join_all(calls).await {
            let out = result.map_err(|e| unavailable("ChangeMessageVisibilityBatch", e))?;
            if let Some(f) = out.failed().first() {
                return Err(QueueError::Unavailable(format!("{}: {}", f.code(), f.message().unwrap_or_default())));
            }
        }
        Ok(())
    }
}

#[async_trait]
impl QueueConsumer for SqsQueue {
    async fn receive(&self, max: usize, wait: Duration) -> Result<Vec<ReceivedMessage>, QueueError> {
        let out = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(max.clamp(1, MAX_BATCH_ENTRIES) as i32)
            .wait_time_seconds(wait.as_secs().min(20) as i32)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .message_system_attribute_names(MessageSystemAttributeName::AwsTraceHeader)
            .message_attribute_names("All")
            .send()
            .await
            .map_err(|e| unavailable("ReceiveMessage", e))?;
        Ok(out
            .messages()
            .iter()
            .map(|m| ReceivedMessage {
                message_id: m.message_id().unwrap_or_default().to_string(),
                receipt_handle: m.receipt_handle().unwrap_or_default().to_string(),
                body: m.body().unwrap_or_default().to_string(),
                attributes: m
                    .message_attributes()
                    .into_iter()
                    .flatten()
                    .filter_map(|(k, v)| Some((k.clone(), v.string_value()?.to_string())))
                    .chain(
                        m.attributes()
                            .and_then(|a| a.get(&MessageSystemAttributeName::AwsTraceHeader))
                            .map(|h| (TRACE_HEADER_ATTRIBUTE.to_string(), h.clone())),
                    )
                    .collect(),
                receive_count: m
                    .attributes()
                    .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(1),
            })
            .collect())
    }

    async fn delete(&self, receipt_handles: Vec<String>) -> Result<(), QueueError> {
        let calls = receipt_handles.chunks(MAX_BATCH_ENTRIES).map(|chunk| {
            let entries = chunk.iter().enumerate().map(|(i, receipt)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(receipt)
                    .build()
                    .expect("id and receipt are set")
            });
            self.client.delete_message_batch().queue_url(&self.url).set_entries(Some(entries.collect())).send()
        });
        for result in join_all(calls).await {
            let out = result.map_err(|e| unavailable("DeleteMessageBatch", e))?;
            if let Some(f) = out.failed().first() {
                return Err(QueueError::Unavailable(format!("{}: {}", f.code(), f.message().unwrap_or_default())));
            }
        }
        Ok(())
    }

    async fn depth(&self) -> Result<u64, QueueError> {
        let out = self
            .client
            .get_queue_attributes()
            .queue_url(&self.url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
            .send()
            .await
            .map_err(|e| unavailable("GetQueueAttributes", e))?;
        Ok(out.attributes().into_iter().flatten().filter_map(|(_, v)| v.parse::<u64>().ok()).sum())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(len: usize) -> OutgoingMessage {
        OutgoingMessage { body: "x".repeat(len), ..Default::default() }
    }

    #[test]
    fn batches_split_by_count_and_size() {
        let msgs: Vec<_> = (0..23).map(|_| msg(10)).collect();
        assert_eq!(batches(&msgs), vec![0..10, 10..20, 20..23]);
        let big: Vec<_> = (0..3).map(|_| msg(100 * 1024)).collect();
        assert_eq!(batches(&big), vec![0..2, 2..3]);
        assert!(batches(&[]).is_empty());
        // A single oversized message still gets its own batch (SQS then rejects it).
        assert_eq!(batches(&[msg(300 * 1024)]), vec![0..1]);
    }
}
