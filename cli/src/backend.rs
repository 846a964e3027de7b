//! Where `genhook dev`, `tail` and `redrive` keep their state: the embedded SQLite file
//! (the default, nothing to install) or DynamoDB + SQS (`--aws`: DynamoDB Local and an
//! SQS emulator, or a real account).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use genhook::adapters::aws::load_sdk_config;
use genhook::adapters::dynamodb::DynamoDedupeStore;
use genhook::adapters::provision::{MAX_RECEIVES, ProvisionError, StackUrls, provision};
use genhook::adapters::sqlite::{OpenError, QueueSettings, SqliteDb, SqliteQueue};
use genhook::adapters::sqs::SqsQueue;
use genhook::domain::clock::SystemClock;
use genhook::ports::env::Env;
use genhook::ports::link_cache::LinkCache;
use genhook::ports::{DedupeStore, ProviderTables, Queue, QueueConsumer};

/// The embedded queues' names.
pub mod names {
    /// The inbox.
    pub const INBOX: &str = "inbox";
    /// The inbox's dead-letter queue.
    pub const INBOX_DLQ: &str = "inbox-dlq";
    /// The outbox.
    pub const OUTBOX: &str = "outbox";
    /// The outbox's dead-letter queue.
    pub const OUTBOX_DLQ: &str = "outbox-dlq";
}

/// The database file inside the state directory.
pub const DB_FILE: &str = "genhook.sqlite";

/// Options choosing the backend, shared by the commands that use one.
#[derive(clap::Args, Debug, Clone)]
pub struct BackendArgs {
    /// Directory of the embedded database (created if missing).
    #[arg(long, env = "GENHOOK_STATE_DIR", default_value = ".genhook")]
    pub state_dir: PathBuf,
    /// Use DynamoDB and SQS instead of the embedded database: the resources named by
    /// GENHOOK_TABLE / GENHOOK_*_QUEUE_URL, or, when only an endpoint is set
    /// (AWS_ENDPOINT_URL*), ones created there under --prefix.
    #[arg(long)]
    pub aws: bool,
    /// Name prefix of the resources `--aws` creates on an endpoint (as `genhook init`).
    #[arg(long, default_value = "genhook-dev")]
    pub prefix: String,
    /// How long a received inbox message stays hidden before it is delivered again.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=43_200))]
    pub visibility_timeout_secs: u32,
}

/// What can go wrong choosing or opening a backend.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The state directory cannot be created.
    #[error("cannot create the state directory {path}: {source} (pass a writable --state-dir)")]
    StateDir {
        /// The directory.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The database cannot be opened.
    #[error("{0} (is another program holding it, or is the file damaged?)")]
    Open(#[from] OpenError),
    /// `--aws` without resources or an endpoint.
    #[error(
        "--aws needs GENHOOK_TABLE, GENHOOK_INBOX_QUEUE_URL, GENHOOK_INBOX_DLQ_URL and GENHOOK_OUTBOX_QUEUE_URL (run `genhook init` to create them), or AWS_ENDPOINT_URL pointing at DynamoDB Local and an SQS emulator"
    )]
    NoResources,
    /// Creating resources on the endpoint failed.
    #[error("cannot create the resources on the endpoint: {0} (is the endpoint up?)")]
    Provision(#[from] ProvisionError),
}

/// One backend's ports.
pub struct Backend {
    /// The dedupe store.
    pub store: Arc<dyn DedupeStore>,
    /// APIMP task watches and the providers' read budgets (the same table).
    pub watches: Arc<dyn ProviderTables>,
    /// The output links' cache (the same table).
    pub links: Arc<dyn LinkCache>,
    /// The inbox, for sending and retry delays.
    pub inbox: Arc<dyn Queue>,
    /// The inbox, for receiving.
    pub inbox_consumer: Arc<dyn QueueConsumer>,
    /// The inbox's dead-letter queue, for sending.
    pub inbox_dlq: Arc<dyn Queue>,
    /// The inbox's dead-letter queue, for receiving (redrive).
    pub inbox_dlq_consumer: Arc<dyn QueueConsumer>,
    /// The outbox.
    pub outbox: Arc<dyn Queue>,
    /// The outbox, for receiving (`tail --ack`).
    pub outbox_consumer: Arc<dyn QueueConsumer>,
    /// The embedded parts, when embedded (for listing without receiving).
    pub embedded: Option<Embedded>,
    /// One line saying where the state lives.
    pub description: String,
    /// On AWS: the SQS client and the inbox DLQ and inbox URLs, for SQS's own redrive
    /// (`StartMessageMoveTask`).
    pub sqs_redrive: Option<(aws_sdk_sqs::Client, String, String)>,
}

/// The embedded backend's concrete parts.
#[derive(Clone)]
pub struct Embedded {
    /// The outbox.
    pub outbox: SqliteQueue,
}

fn env(name: &str) -> Option<String> {
    Env::process().optional(name)
}

impl BackendArgs {
    /// Whether the AWS adapters are wanted: `--aws`, or resources named in the environment.
    pub fn wants_aws(&self) -> bool {
        self.aws || env("GENHOOK_TABLE").is_some()
    }

    /// Opens the chosen backend.
    pub async fn open(&self) -> Result<Backend, BackendError> {
        if self.wants_aws() { self.open_aws().await } else { self.open_embedded() }
    }

    /// Opens the embedded database in the state directory.
    pub fn open_embedded(&self) -> Result<Backend, BackendError> {
        std::fs::create_dir_all(&self.state_dir)
            .map_err(|source| BackendError::StateDir { path: self.state_dir.display().to_string(), source })?;
        let path = self.state_dir.join(DB_FILE);
        let db = SqliteDb::open(&path, Arc::new(SystemClock))?;
        let visibility = Duration::from_secs(self.visibility_timeout_secs.into());
        let queue = |name: &str, dlq: Option<&str>| {
            let dead_letter = dlq.map(|d| (d.to_string(), MAX_RECEIVES));
            Arc::new(db.queue(name, QueueSettings { visibility_timeout: visibility, dead_letter }))
        };
        let inbox = queue(names::INBOX, Some(names::INBOX_DLQ));
        let inbox_dlq = queue(names::INBOX_DLQ, None);
        let outbox = queue(names::OUTBOX, Some(names::OUTBOX_DLQ));
        let store = db.store();
        Ok(Backend {
            store: Arc::new(store.clone()),
            watches: Arc::new(store.clone()),
            links: Arc::new(store.clone()),
            inbox: inbox.clone(),
            inbox_consumer: inbox,
            inbox_dlq: inbox_dlq.clone(),
            inbox_dlq_consumer: inbox_dlq,
            outbox: outbox.clone(),
            outbox_consumer: outbox.clone(),
            embedded: Some(Embedded { outbox: (*outbox).clone() }),
            description: format!("embedded SQLite at {}", path.display()),
            sqs_redrive: None,
        })
    }

    /// Resolves the AWS resources: from the environment, or created on the endpoint.
    async fn aws_resources(
        &self,
        ddb: &aws_sdk_dynamodb::Client,
        sqs: &aws_sdk_sqs::Client,
    ) -> Result<StackUrls, BackendError> {
        if let (Some(table), Some(inbox), Some(inbox_dlq), Some(outbox)) = (
            env("GENHOOK_TABLE"),
            env("GENHOOK_INBOX_QUEUE_URL"),
            env("GENHOOK_INBOX_DLQ_URL"),
            env("GENHOOK_OUTBOX_QUEUE_URL"),
        ) {
            return Ok(StackUrls {
                table,
                inbox,
                inbox_dlq,
                outbox,
                outbox_dlq: env("GENHOOK_OUTBOX_DLQ_URL").unwrap_or_default(),
            });
        }
        if !["AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB"].iter().any(|v| env(v).is_some()) {
            return Err(BackendError::NoResources);
        }
        Ok(provision(ddb, sqs, &self.prefix, self.visibility_timeout_secs).await?)
    }

    async fn open_aws(&self) -> Result<Backend, BackendError> {
        // One SDK configuration and one client per service, for resolving and for use.
        let sdk = load_sdk_config().await;
        let (ddb, sqs) = (aws_sdk_dynamodb::Client::new(&sdk), aws_sdk_sqs::Client::new(&sdk));
        let urls = self.aws_resources(&ddb, &sqs).await?;
        let sqs_redrive = Some((sqs.clone(), urls.inbox_dlq.clone(), urls.inbox.clone()));
        let queue = |url: &str| Arc::new(SqsQueue::new(sqs.clone(), url));
        let (inbox, inbox_dlq, outbox) = (queue(&urls.inbox), queue(&urls.inbox_dlq), queue(&urls.outbox));
        let store = Arc::new(DynamoDedupeStore::new(ddb, urls.table.clone()));
        Ok(Backend {
            store: store.clone(),
            watches: store.clone(),
            links: store,
            inbox: inbox.clone(),
            inbox_consumer: inbox,
            inbox_dlq: inbox_dlq.clone(),
            inbox_dlq_consumer: inbox_dlq,
            outbox: outbox.clone(),
            outbox_consumer: outbox,
            embedded: None,
            description: format!("DynamoDB table {} and SQS inbox {}", urls.table, urls.inbox),
            sqs_redrive,
        })
    }
}
