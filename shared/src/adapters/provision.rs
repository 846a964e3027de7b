//! Creates a genhook stack's table and queues on an endpoint (DynamoDB Local + an SQS
//! emulator, or a sandbox account), shaped like `template.yaml`'s: the table keyed on
//! `pk` with TTL on `expires_at`, the inbox with a redrive policy to its DLQ, and the
//! outbox with its own DLQ. Every step is idempotent, so it can run again.

use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType, TimeToLiveSpecification,
};
use aws_sdk_sqs::types::QueueAttributeName;

/// The template's inbox redrive threshold.
pub const MAX_RECEIVES: u32 = 20;

/// A provisioning failure, naming the step.
#[derive(Debug, thiserror::Error)]
#[error("{step}: {detail}")]
pub struct ProvisionError {
    /// What was being done.
    pub step: String,
    /// What the service said.
    pub detail: String,
}

fn fail<E: ProvideErrorMetadata + std::fmt::Debug>(step: impl Into<String>, e: E) -> ProvisionError {
    let detail = match (e.code(), e.message()) {
        (Some(c), Some(m)) => format!("{c}: {m}"),
        (Some(c), None) => c.to_string(),
        _ => format!("{e:?}"),
    };
    ProvisionError { step: step.into(), detail }
}

/// Names and URLs of a provisioned stack (what the functions' variables want).
#[derive(Debug, Clone, PartialEq)]
pub struct StackUrls {
    /// `GENHOOK_TABLE`.
    pub table: String,
    /// `GENHOOK_INBOX_QUEUE_URL`.
    pub inbox: String,
    /// `GENHOOK_INBOX_DLQ_URL`.
    pub inbox_dlq: String,
    /// `GENHOOK_OUTBOX_QUEUE_URL`.
    pub outbox: String,
    /// The outbox's DLQ (for the outbox's consumers).
    pub outbox_dlq: String,
}

impl StackUrls {
    /// The variables to export, as `NAME=value` pairs.
    pub fn env(&self) -> Vec<(&'static str, &str)> {
        vec![
            ("GENHOOK_TABLE", &self.table),
            ("GENHOOK_INBOX_QUEUE_URL", &self.inbox),
            ("GENHOOK_INBOX_DLQ_URL", &self.inbox_dlq),
            ("GENHOOK_OUTBOX_QUEUE_URL", &self.outbox),
            ("GENHOOK_OUTBOX_DLQ_URL", &self.outbox_dlq),
        ]
    }
}

/// Creates (or finds) the table `{prefix}-dedupe` and the queues `{prefix}-inbox`,
/// `{prefix}-inbox-dlq`, `{prefix}-outbox`, `{prefix}-outbox-dlq`.
pub async fn provision(
    ddb: &aws_sdk_dynamodb::Client,
    sqs: &aws_sdk_sqs::Client,
    prefix: &str,
    visibility_timeout_secs: u32,
) -> Result<StackUrls, ProvisionError> {
    let table = format!("{prefix}-dedupe");
    create_table(ddb, &table).await?;
    let inbox_dlq = create_queue(sqs, &format!("{prefix}-inbox-dlq"), visibility_timeout_secs, None).await?;
    let inbox = create_queue(sqs, &format!("{prefix}-inbox"), visibility_timeout_secs, Some(&inbox_dlq)).await?;
    let outbox_dlq = create_queue(sqs, &format!("{prefix}-outbox-dlq"), visibility_timeout_secs, None).await?;
    let outbox = create_queue(sqs, &format!("{prefix}-outbox"), visibility_timeout_secs, Some(&outbox_dlq)).await?;
    Ok(StackUrls { table, inbox, inbox_dlq, outbox, outbox_dlq })
}

/// Creates the dedupe table with TTL on `expires_at`, unless it exists.
pub async fn create_table(ddb: &aws_sdk_dynamodb::Client, table: &str) -> Result<(), ProvisionError> {
    let created = ddb
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("pk")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .expect("name and type are set"),
        )
        .key_schema(KeySchemaElement::builder().attribute_name("pk").key_type(KeyType::Hash).build().expect("set"))
        .send()
        .await;
    match created {
        Ok(_) => {}
        Err(e) if e.code() == Some("ResourceInUseException") => return Ok(()),
        Err(e) => return Err(fail(format!("CreateTable {table}"), e)),
    }
    ddb.update_time_to_live()
        .table_name(table)
        .time_to_live_specification(
            TimeToLiveSpecification::builder().attribute_name("expires_at").enabled(true).build().expect("set"),
        )
        .send()
        .await
        .map_err(|e| fail(format!("UpdateTimeToLive {table}"), e))?;
    Ok(())
}

/// The ARN of a queue.
pub async fn queue_arn(sqs: &aws_sdk_sqs::Client, url: &str) -> Result<String, ProvisionError> {
    let out = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| fail(format!("GetQueueAttributes {url}"), e))?;
    out.attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .ok_or_else(|| ProvisionError { step: format!("GetQueueAttributes {url}"), detail: "no QueueArn".into() })
}

/// Creates a queue (1 MiB messages, 14-day retention), with a redrive policy to `dlq`
/// after [`MAX_RECEIVES`] receives if given; returns its URL.
pub async fn create_queue(
    sqs: &aws_sdk_sqs::Client,
    name: &str,
    visibility_timeout_secs: u32,
    dlq: Option<&str>,
) -> Result<String, ProvisionError> {
    let mut req = sqs
        .create_queue()
        .queue_name(name)
        .attributes(QueueAttributeName::VisibilityTimeout, visibility_timeout_secs.to_string())
        .attributes(QueueAttributeName::MessageRetentionPeriod, "1209600");
    if let Some(dlq) = dlq {
        let arn = queue_arn(sqs, dlq).await?;
        let policy = serde_json::json!({"deadLetterTargetArn": arn, "maxReceiveCount": MAX_RECEIVES}).to_string();
        req = req.attributes(QueueAttributeName::RedrivePolicy, policy);
    }
    let out = req.send().await.map_err(|e| fail(format!("CreateQueue {name}"), e))?;
    out.queue_url()
        .map(str::to_string)
        .ok_or_else(|| ProvisionError { step: format!("CreateQueue {name}"), detail: "no QueueUrl".into() })
}
