//! Test harness for genhook's end-to-end suite: real DynamoDB Local and SQS emulator
//! (endpoints from `AWS_ENDPOINT_URL_DYNAMODB` / `AWS_ENDPOINT_URL_SQS`, which
//! `scripts/test.sh` starts), the real Lambda handlers, and a fake Katalo API.

pub mod aws;
pub mod calls;
pub mod contract;
pub mod fake_apimp;
pub mod fake_katalo;
pub mod lambda;
pub mod proxied;
pub mod proxy;
pub mod schema;
pub mod sim;

use genhook::ports::env::Env;

/// A name no other test uses.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", &genhook::domain::dedupe::random_id()[..12])
}

/// An [`Env`] over fixed pairs (the product's variables, without touching the process).
pub fn env(pairs: &[(&str, String)]) -> Env {
    Env::from_pairs(pairs.iter().cloned())
}

use aws::{Aws, Stack};
use genhook::config::{ReceiverConfig, WorkerConfig};
use genhook::engine::receiver::Receiver;
use genhook::engine::worker::Worker;
use genhook_cli::simulate::KataloSimulator;

/// The signing secret deliveries use.
pub const WEBHOOK_SECRET: &str = "whsec_integration_current_0001";
/// The APIMP callback URLs' key.
pub const APIMP_CALLBACK_SECRET: &str = "apimp_integration_callback_key";
/// Replicate's webhook signing secret in the tests (a Standard Webhooks `whsec_` key).
pub const REPLICATE_WEBHOOK_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
/// Replicate's API token in the tests (the fake API takes one key for every provider).
pub const REPLICATE_API_TOKEN: &str = fake_katalo::API_KEY;
/// The secret being rotated out.
pub const WEBHOOK_SECRET_PREVIOUS: &str = "whsec_integration_previous_0001";

/// Everything one test needs: fresh resources on the emulators, a fake Katalo, and the
/// receiver and worker built from the product's environment variables.
pub struct Harness {
    /// SDK clients.
    pub aws: Aws,
    /// This test's table and queues.
    pub stack: Stack,
    /// The fake Katalo API.
    pub katalo: KataloSimulator,
    /// The fake APIMP status API.
    pub apimp: fake_apimp::FakeApimp,
    /// The receiver, as its Lambda builds it.
    pub receiver: Receiver,
    /// The worker, as its Lambda builds it.
    pub worker: Worker,
}

impl Harness {
    /// Sets everything up.
    pub async fn new() -> Self {
        let aws = aws::aws().await;
        let stack = aws.stack().await;
        let katalo = fake_katalo::start().await;
        let apimp = fake_apimp::FakeApimp::start().await;
        let receiver = Self::receiver_for(&stack, &stack.inbox).await;
        let worker = WorkerConfig::from_env(&env(&[
            ("GENHOOK_TABLE", stack.table.clone()),
            ("GENHOOK_INBOX_QUEUE_URL", stack.inbox.clone()),
            ("GENHOOK_INBOX_DLQ_URL", stack.inbox_dlq.clone()),
            ("GENHOOK_OUTBOX_QUEUE_URL", stack.outbox.clone()),
            ("KATALO_API_BASE_URL", katalo.base_url()),
            ("KATALO_API_KEY", fake_katalo::API_KEY.into()),
            ("GENHOOK_HTTP_TIMEOUT_SECS", "1".into()),
            ("GENHOOK_RETRY_BASE_SECS", "1".into()),
            ("GENHOOK_RETRY_MAX_SECS", "1".into()),
            // The limiter has its own (virtual-time) test; here it would only slow things.
            ("KATALO_API_MAX_RPS", "1000".into()),
            ("APIMP_API_BASE_URL", apimp.base_url.clone()),
            ("APIMP_API_KEY", fake_apimp::API_KEY.into()),
            ("APIMP_API_MAX_RPS", "1000".into()),
            ("REPLICATE_API_BASE_URL", katalo.base_url()),
            ("REPLICATE_API_TOKEN", REPLICATE_API_TOKEN.into()),
            ("REPLICATE_API_MAX_RPS", "1000".into()),
            // The simulator serves the files of the predictions it runs itself.
            ("REPLICATE_OUTPUT_HOSTS", format!("replicate.delivery,{}", katalo.base_url())),
        ]))
        .expect("worker config")
        .build()
        .await
        .expect("worker providers");
        Self { aws, stack, katalo, apimp, receiver, worker }
    }

    /// A receiver on the stack's table that sends to `inbox` (to simulate a broken queue).
    pub async fn receiver_for(stack: &Stack, inbox: &str) -> Receiver {
        Self::receiver_with(stack, inbox, &[]).await
    }

    /// A receiver built from the stack's variables plus `extra` ones.
    pub async fn receiver_with(stack: &Stack, inbox: &str, extra: &[(&str, String)]) -> Receiver {
        let mut vars = vec![
            ("GENHOOK_TABLE", stack.table.clone()),
            ("GENHOOK_INBOX_QUEUE_URL", inbox.to_string()),
            ("KATALO_WEBHOOK_SECRET", WEBHOOK_SECRET.into()),
            ("KATALO_WEBHOOK_SECRET_PREVIOUS", WEBHOOK_SECRET_PREVIOUS.into()),
            ("APIMP_CALLBACK_SECRET", APIMP_CALLBACK_SECRET.into()),
            ("REPLICATE_WEBHOOK_SECRET", REPLICATE_WEBHOOK_SECRET.into()),
        ];
        vars.extend(extra.iter().cloned());
        ReceiverConfig::from_env(&env(&vars)).expect("receiver config").build().await
    }

    /// Posts a body signed with the current secret through the receiver's Lambda handler.
    pub async fn post(&self, body: &[u8]) -> (u16, serde_json::Value) {
        self.post_with(&self.receiver, body).await
    }

    /// Posts a signed body through a given receiver.
    pub async fn post_with(&self, receiver: &Receiver, body: &[u8]) -> (u16, serde_json::Value) {
        let (status, _, json) = Self::post_full(receiver, body).await;
        (status, json)
    }

    /// Posts a signed body through a given receiver; the answer's headers too.
    pub async fn post_full(receiver: &Receiver, body: &[u8]) -> (u16, http::HeaderMap, serde_json::Value) {
        let sig = genhook::toolkit::auth::hmac::sign_hex(WEBHOOK_SECRET.as_bytes(), body);
        lambda::deliver_full(receiver, lambda::apigw_event("POST", "/webhooks/katalo", body, Some(&sig), true)).await
    }

    /// Posts a Replicate webhook signed per Standard Webhooks with
    /// [`REPLICATE_WEBHOOK_SECRET`] now, under `webhook_id`.
    pub async fn post_replicate(&self, webhook_id: &str, body: &[u8]) -> (u16, serde_json::Value) {
        let secret = genhook::toolkit::auth::standard_webhooks::Secret::parse(REPLICATE_WEBHOOK_SECRET)
            .expect("a whsec_ secret");
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let mut headers = vec![("content-type".to_string(), "application/json".to_string())];
        headers.extend(secret.headers(webhook_id, now, body).into_iter().map(|(n, v)| (n.to_string(), v)));
        lambda::deliver(&self.receiver, lambda::apigw_event_with("POST", "/webhooks/replicate", body, &headers, false))
            .await
    }

    /// Pumps the inbox through the worker until it is empty.
    pub async fn drain(&self) -> Vec<lambda::Pump> {
        lambda::pump_until_empty(&self.aws, &self.worker, &self.stack.inbox, 80).await
    }

    /// Every event on the outbox, parsed.
    pub async fn events(&self) -> Vec<serde_json::Value> {
        self.aws.receive_all(&self.stack.outbox).await.iter().map(|m| schema::parse_event(m.body().unwrap())).collect()
    }
}

/// A Katalo webhook body.
pub fn webhook(job_id: &str, event_type: &str) -> Vec<u8> {
    serde_json::json!({
        "event_type": event_type,
        "job_id": job_id,
        "source_asset_id": "src_01JXAMPLE",
        "reference": "listing-123",
        "outputs": [{"url": "https://katalo-outputs.s3.amazonaws.com/old.png?X-Amz-Signature=x"}],
        "failure": null,
        "metadata": {"tenant": "acme"}
    })
    .to_string()
    .into_bytes()
}
