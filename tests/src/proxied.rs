//! Receivers and workers whose SDK clients talk to explicit endpoints (a [`FaultProxy`]
//! in front of an emulator) with short timeouts, wired like the Lambdas wire theirs but
//! without touching the process environment.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::config::timeout::TimeoutConfig;
use genhook::adapters::aws::load_sdk_config;
use genhook::adapters::dynamodb::DynamoDedupeStore;
use genhook::adapters::sqs::SqsQueue;
use genhook::config::worker_settings;
use genhook::domain::clock::SystemClock;
use genhook::engine::receiver::Receiver;
use genhook::engine::worker::{UnconfiguredReconciler, Worker, WorkerPorts, WorkerSettings};
use genhook::providers::apimp::Apimp;
use genhook::providers::katalo::api::KataloApi;
use genhook::providers::katalo::reconcile::{DEFAULT_POLL_HORIZON, KataloReconciler};

use crate::aws::Aws;
use crate::proxy::FaultProxy;
use crate::{Harness, env, fake_katalo};

/// The SDK clients' timeouts and retries. The default, 1 s per attempt and a single
/// attempt, makes each SDK call exactly one request through the proxy, so a rule maps
/// onto a call; raise `max_attempts` to see the SDK's own retries land too.
#[derive(Debug, Clone, Copy)]
pub struct Tuning {
    /// Per attempt (production: 3 s).
    pub attempt_timeout: Duration,
    /// Whole operation, retries included (production: 8 s).
    pub operation_timeout: Duration,
    /// Attempts per call, the first included (production: the SDK's standard 3).
    pub max_attempts: u32,
}

impl Default for Tuning {
    fn default() -> Self {
        Self { attempt_timeout: Duration::from_secs(1), operation_timeout: Duration::from_secs(5), max_attempts: 1 }
    }
}

impl Tuning {
    /// The SDK's standard retries (3 attempts, short backoff) with the short timeouts.
    pub fn with_retries() -> Self {
        Self { max_attempts: 3, ..Self::default() }
    }
}

/// A proxy in front of each emulator (from `AWS_ENDPOINT_URL_DYNAMODB` / `_SQS`).
pub struct Proxies {
    /// In front of DynamoDB Local.
    pub ddb: FaultProxy,
    /// In front of the SQS emulator.
    pub sqs: FaultProxy,
}

impl Proxies {
    /// Starts both, passing everything through.
    pub async fn start() -> Self {
        let var = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name} is set (see crate::aws::aws)"));
        Self {
            ddb: FaultProxy::start(&var("AWS_ENDPOINT_URL_DYNAMODB")).await,
            sqs: FaultProxy::start(&var("AWS_ENDPOINT_URL_SQS")).await,
        }
    }

    /// Clients through both proxies.
    pub async fn clients(&self, tuning: Tuning) -> Aws {
        clients(self.ddb.url(), self.sqs.url(), tuning).await
    }
}

/// SDK clients on the given endpoints, configured as production configures them (region,
/// credentials, HTTP client) except for `tuning`.
pub async fn clients(ddb_endpoint: &str, sqs_endpoint: &str, tuning: Tuning) -> Aws {
    let sdk = load_sdk_config().await;
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(1))
        .operation_attempt_timeout(tuning.attempt_timeout)
        .operation_timeout(tuning.operation_timeout)
        .build();
    let retries =
        RetryConfig::standard().with_max_attempts(tuning.max_attempts).with_initial_backoff(Duration::from_millis(50));
    let ddb = aws_sdk_dynamodb::config::Builder::from(&sdk)
        .endpoint_url(ddb_endpoint)
        .timeout_config(timeouts.clone())
        .retry_config(retries.clone())
        .build();
    let sqs = aws_sdk_sqs::config::Builder::from(&sdk)
        .endpoint_url(sqs_endpoint)
        .timeout_config(timeouts)
        .retry_config(retries)
        .build();
    Aws { ddb: aws_sdk_dynamodb::Client::from_conf(ddb), sqs: aws_sdk_sqs::Client::from_conf(sqs) }
}

/// How a worker built by [`Harness::worker_on`] differs from the harness's own.
#[derive(Debug, Clone, Copy)]
pub struct WorkerOptions {
    /// The Katalo API timeout (`GENHOOK_HTTP_TIMEOUT_SECS`; the harness uses 1 s).
    pub http_timeout: Duration,
    /// The work lease (production: 120 s).
    pub lease: Duration,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        Self { http_timeout: Duration::from_secs(1), lease: WorkerSettings::default().lease }
    }
}

impl Harness {
    /// A receiver like the harness's, on `aws`'s clients.
    pub fn receiver_on(&self, aws: &Aws) -> Receiver {
        let vars = [
            ("KATALO_WEBHOOK_SECRET", crate::WEBHOOK_SECRET.to_string()),
            ("KATALO_WEBHOOK_SECRET_PREVIOUS", crate::WEBHOOK_SECRET_PREVIOUS.to_string()),
            ("APIMP_CALLBACK_SECRET", crate::APIMP_CALLBACK_SECRET.to_string()),
        ];
        let store = DynamoDedupeStore::new(aws.ddb.clone(), self.stack.table.clone());
        let inbox = SqsQueue::new(aws.sqs.clone(), self.stack.inbox.clone());
        genhook::config::receiver(&env(&vars), Arc::new(store), Arc::new(inbox), Arc::new(SystemClock))
            .expect("receiver config")
    }

    /// A Katalo worker like the harness's (same retry settings, same fake API), on
    /// `aws`'s clients.
    pub fn worker_on(&self, aws: &Aws, options: WorkerOptions) -> Worker {
        let vars = [("GENHOOK_RETRY_BASE_SECS", "1".to_string()), ("GENHOOK_RETRY_MAX_SECS", "1".to_string())];
        let mut settings = worker_settings(&env(&vars), WorkerSettings::default()).expect("worker settings");
        settings.lease = options.lease;
        let clock = Arc::new(SystemClock);
        let katalo = KataloApi::new(&self.katalo.base_url(), fake_katalo::API_KEY, options.http_timeout, clock.clone())
            .expect("the fake's URL")
            .with_rate_limit(1000);
        let store = Arc::new(DynamoDedupeStore::new(aws.ddb.clone(), self.stack.table.clone()));
        let ports = WorkerPorts {
            store: store.clone(),
            inbox: Arc::new(SqsQueue::new(aws.sqs.clone(), self.stack.inbox.clone())),
            inbox_dlq: Some(Arc::new(SqsQueue::new(aws.sqs.clone(), self.stack.inbox_dlq.clone()))),
            outbox: Arc::new(SqsQueue::new(aws.sqs.clone(), self.stack.outbox.clone())),
            clock,
        };
        let katalo = KataloReconciler::new(Arc::new(katalo), DEFAULT_POLL_HORIZON);
        Worker::new(ports, vec![Arc::new(katalo), Arc::new(UnconfiguredReconciler(&Apimp))], settings)
    }
}

/// Waits (polling) until `done` holds; fails the test naming `what` after 15 s.
pub async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while !done() {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
