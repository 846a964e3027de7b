//! Tables and queues on the emulators.

use aws_sdk_sqs::types::{Message, MessageSystemAttributeName, QueueAttributeName};
use genhook::adapters::aws::load_sdk_config;
use genhook::adapters::provision::provision;

/// SDK clients on the emulators.
#[derive(Clone)]
pub struct Aws {
    /// DynamoDB (Local).
    pub ddb: aws_sdk_dynamodb::Client,
    /// SQS (moto).
    pub sqs: aws_sdk_sqs::Client,
}

/// Clients built the way production builds them. Fails the test, never skips it, when
/// the emulators are not configured.
pub async fn aws() -> Aws {
    for var in ["AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL_SQS"] {
        assert!(
            std::env::var(var).is_ok_and(|v| v.starts_with("http://127.0.0.1") || v.starts_with("http://localhost")),
            "{var} must point at a local emulator: run the suite with scripts/test.sh, which starts DynamoDB Local and the SQS emulator"
        );
    }
    let sdk = load_sdk_config().await;
    Aws { ddb: aws_sdk_dynamodb::Client::new(&sdk), sqs: aws_sdk_sqs::Client::new(&sdk) }
}

/// One deployment's worth of resources, with unique names.
#[derive(Debug, Clone)]
pub struct Stack {
    /// The dedupe table.
    pub table: String,
    /// The inbox queue URL.
    pub inbox: String,
    /// The inbox DLQ URL.
    pub inbox_dlq: String,
    /// The outbox queue URL.
    pub outbox: String,
}

impl Aws {
    /// Creates a table, inbox (+DLQ) and outbox (+DLQ) as `genhook init` does.
    pub async fn stack(&self) -> Stack {
        let urls = provision(&self.ddb, &self.sqs, &crate::unique("genhook-test"), 30).await.expect("provision");
        Stack { table: urls.table, inbox: urls.inbox, inbox_dlq: urls.inbox_dlq, outbox: urls.outbox }
    }

    /// Receives every visible message (hiding them for 5 minutes) without deleting them.
    pub async fn receive_all(&self, url: &str) -> Vec<Message> {
        let mut all = Vec::new();
        loop {
            let out = self
                .sqs
                .receive_message()
                .queue_url(url)
                .max_number_of_messages(10)
                .visibility_timeout(300)
                .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
                .message_attribute_names("All")
                .send()
                .await
                .expect("receive");
            let batch = out.messages().to_vec();
            if batch.is_empty() {
                return all;
            }
            all.extend(batch);
        }
    }

    /// Messages visible, in flight and delayed (moto counts exactly).
    pub async fn depth(&self, url: &str) -> usize {
        let out = self
            .sqs
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
            .send()
            .await
            .expect("queue attributes");
        let attrs = out.attributes().unwrap();
        [
            QueueAttributeName::ApproximateNumberOfMessages,
            QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
            QueueAttributeName::ApproximateNumberOfMessagesDelayed,
        ]
        .iter()
        .map(|a| attrs.get(a).and_then(|v| v.parse::<usize>().ok()).unwrap_or(0))
        .sum()
    }

    /// The dedupe record's raw item.
    pub async fn item(
        &self,
        table: &str,
        key: &str,
    ) -> Option<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> {
        self.ddb
            .get_item()
            .table_name(table)
            .key("pk", aws_sdk_dynamodb::types::AttributeValue::S(key.into()))
            .consistent_read(true)
            .send()
            .await
            .expect("get item")
            .item
    }

    /// A string attribute of the dedupe record.
    pub async fn attr(&self, table: &str, key: &str, name: &str) -> Option<String> {
        let item = self.item(table, key).await?;
        item.get(name).and_then(|v| v.as_s().ok().or(v.as_n().ok())).cloned()
    }
}
