//! The composition root: configuration from environment variables (the product's
//! public interface) → the services, for the Lambdas (on DynamoDB and SQS, SDK clients
//! built once per cold start) and for `genhook dev` (on whatever ports it opened). Every
//! provider in [`crate::providers::ALL`] is asked for its halves; a provider whose
//! variables are unset is mounted as [`receiver::UnconfiguredSource`] /
//! [`worker::UnconfiguredReconciler`], so its deliveries and messages get a reason naming the
//! variable.

use std::sync::Arc;
use std::time::Duration;

use aws_config::SdkConfig;

use crate::adapters::aws::{OPERATION_TIMEOUT, WarmUp, load_sdk_config};
use crate::adapters::dynamodb::DynamoDedupeStore;
use crate::adapters::sqs::SqsQueue;
use crate::domain::clock::{Clock, SystemClock};
use crate::domain::dedupe::MIN_DEDUPE_TTL;
use crate::engine::links::{LinkService, LinkSettings, Links};
use crate::engine::receiver::{self, MAX_INBOX_MESSAGE_BYTES, Receiver, ReceiverSettings};
use crate::engine::worker::{self, DEFAULT_MAX_RECEIVES, Worker, WorkerKeys, WorkerPorts, WorkerSettings};
use crate::ports::link_cache::LinkCache;
use crate::ports::provider::{Deps, Provider, Reconciler, WebhookSource};
use crate::ports::{DedupeStore, ProviderTables, Queue};
use crate::providers::ALL;
use crate::toolkit::auth::link_token::{LinkMinter, LinkSigner};
use crate::toolkit::http::output_hosts::{OutputHosts, OutputRule};

use crate::ports::env::{ConfigError, Env};
pub use secrets::{SecretEnv, api_secret_names, receiver_secret_names};

mod secrets;

pub mod emf;
pub mod lambda;
pub mod logging;

/// The variable bounding a Lambda function's cold-start warm-up, in milliseconds
/// (default [`DEFAULT_WARMUP_TIMEOUT_MS`]; 0 turns it off).
pub const WARMUP_TIMEOUT_MS: &str = "GENHOOK_WARMUP_TIMEOUT_MS";
/// The warm-up's default budget: a few in-region TLS handshakes take tens of milliseconds.
pub const DEFAULT_WARMUP_TIMEOUT_MS: u64 = 1000;

/// What a Lambda function warms at cold start ([`WarmUp`]): the table `GENHOOK_TABLE`
/// and, if given, the queue the variable `queue` names (either skipped when unset), within
/// `GENHOOK_WARMUP_TIMEOUT_MS`. Only the functions' `main` calls it: neither the tests nor
/// `genhook dev` warm anything.
pub fn warm_up(env: &Env, queue: Option<&str>) -> Result<WarmUp, ConfigError> {
    Ok(WarmUp {
        table: env.optional("GENHOOK_TABLE"),
        queue_url: queue.and_then(|name| env.optional(name)),
        budget: Duration::from_millis(env.whole_number(WARMUP_TIMEOUT_MS, DEFAULT_WARMUP_TIMEOUT_MS)?),
    })
}

/// The receiver's tunables: `GENHOOK_MAX_BODY_BYTES` (default 6 MiB),
/// `GENHOOK_THIN_OVER_BYTES` (default 262144, at most the inbox's 1 MiB) and
/// `GENHOOK_DEDUPE_TTL_SECS`.
pub fn receiver_settings(env: &Env) -> Result<ReceiverSettings, ConfigError> {
    let mut settings = ReceiverSettings::default();
    settings.max_body_bytes =
        usize::try_from(env.number("GENHOOK_MAX_BODY_BYTES", settings.max_body_bytes as u64)?).unwrap_or(usize::MAX);
    const THIN: &str = "GENHOOK_THIN_OVER_BYTES";
    let thin = env.number(THIN, settings.thin_over_bytes as u64)?;
    settings.thin_over_bytes =
        usize::try_from(thin).ok().filter(|n| *n <= MAX_INBOX_MESSAGE_BYTES).ok_or_else(|| ConfigError::Invalid {
            name: THIN,
            reason: format!("expected at most {MAX_INBOX_MESSAGE_BYTES} (the inbox's largest message), got {thin}"),
        })?;
    settings.dedupe_ttl = dedupe_ttl(env)?;
    Ok(settings)
}

/// The worker's tunables (`GENHOOK_MIN_URL_TTL_SECS`, `GENHOOK_WORKER_CONCURRENCY`,
/// `GENHOOK_DEDUPE_TTL_SECS`, `GENHOOK_HTTP_TIMEOUT_SECS`, `GENHOOK_RETRY_BASE_SECS`,
/// `GENHOOK_RETRY_MAX_SECS`, `GENHOOK_RETRY_HORIZON_SECS`, `GENHOOK_INBOX_MAX_RECEIVES`),
/// each defaulting to the value in `defaults`.
pub fn worker_settings(env: &Env, mut settings: WorkerSettings) -> Result<WorkerSettings, ConfigError> {
    settings.min_url_ttl = Duration::from_secs(env.number("GENHOOK_MIN_URL_TTL_SECS", settings.min_url_ttl.as_secs())?);
    settings.concurrency =
        usize::try_from(env.number("GENHOOK_WORKER_CONCURRENCY", settings.concurrency as u64)?).unwrap_or(usize::MAX);
    settings.dedupe_ttl = dedupe_ttl(env)?;
    settings.provider_call_timeout = http_timeout(env)?;
    // What is kept before the deadline holds one SDK call of the finish phase (the
    // outbox send) and the report; the finish phase is also cut at the deadline itself.
    settings.deadline_reserve = settings.deadline_reserve.max(OPERATION_TIMEOUT.saturating_add(Duration::from_secs(1)));
    settings.backoff.base =
        Duration::from_secs(env.number("GENHOOK_RETRY_BASE_SECS", settings.backoff.base.as_secs())?);
    settings.backoff.cap = Duration::from_secs(env.number("GENHOOK_RETRY_MAX_SECS", settings.backoff.cap.as_secs())?);
    settings.wait_horizon =
        Duration::from_secs(env.number("GENHOOK_RETRY_HORIZON_SECS", settings.wait_horizon.as_secs())?);
    // 0: the inbox has no redrive policy.
    settings.max_receives = match env.whole_number("GENHOOK_INBOX_MAX_RECEIVES", u64::from(DEFAULT_MAX_RECEIVES))? {
        0 => None,
        n => Some(u32::try_from(n).unwrap_or(u32::MAX)),
    };
    Ok(settings)
}

/// Output links' signer: `GENHOOK_LINK_SECRET` (required), `GENHOOK_LINK_SECRET_PREVIOUS`
/// (links minted under it keep working while it is set: a rotation) and
/// `GENHOOK_LINK_TTL_SECS` (how long a link works after it is minted; unset or 0:
/// forever).
pub fn link_signer(env: &Env) -> Result<LinkSigner, ConfigError> {
    let secret = env.required("GENHOOK_LINK_SECRET")?;
    let lifetime = match env.whole_number("GENHOOK_LINK_TTL_SECS", 0)? {
        0 => None,
        secs => Some(Duration::from_secs(secs)),
    };
    let previous = env.optional("GENHOOK_LINK_SECRET_PREVIOUS").map(String::into_bytes);
    Ok(LinkSigner::new(secret.as_bytes(), lifetime)
        .map_err(|e| ConfigError::Invalid { name: "GENHOOK_LINK_SECRET", reason: e.to_string() })?
        .accepting(previous))
}

/// What puts `link` on published outputs: `GENHOOK_PUBLIC_URL` (the root of the API
/// that serves `/outputs/...`) with [`link_signer`]; `None` when neither the URL nor the
/// secret is set, an error when only one is.
pub fn link_minter(env: &Env) -> Result<Option<LinkMinter>, ConfigError> {
    let (url, secret) = (env.optional("GENHOOK_PUBLIC_URL"), env.optional("GENHOOK_LINK_SECRET"));
    let url = match (url, secret) {
        (None, None) => return Ok(None),
        (Some(url), Some(_)) => url,
        (None, Some(_)) => return Err(ConfigError::Missing("GENHOOK_PUBLIC_URL")),
        (Some(_), None) => return Err(ConfigError::Missing("GENHOOK_LINK_SECRET")),
    };
    let minter = LinkMinter::new(link_signer(env)?, url.trim())
        .map_err(|e| ConfigError::Invalid { name: "GENHOOK_PUBLIC_URL", reason: e.to_string() })?;
    Ok(Some(minter))
}

/// `GENHOOK_HTTP_TIMEOUT_SECS` (default 10): the longest one provider API call may take.
pub fn http_timeout(env: &Env) -> Result<Duration, ConfigError> {
    Ok(Duration::from_secs(env.number("GENHOOK_HTTP_TIMEOUT_SECS", 10)?))
}

/// `GENHOOK_DEDUPE_TTL_SECS` (default and minimum [`MIN_DEDUPE_TTL`], 15 days): a dedupe
/// record must outlive every queued message that can still refer to it (SQS keeps
/// messages, DLQs included, for up to 14 days), or a late redrive publishes again.
pub fn dedupe_ttl(env: &Env) -> Result<Duration, ConfigError> {
    let secs = env.number("GENHOOK_DEDUPE_TTL_SECS", MIN_DEDUPE_TTL.as_secs())?;
    if secs < MIN_DEDUPE_TTL.as_secs() {
        return Err(ConfigError::Invalid {
            name: "GENHOOK_DEDUPE_TTL_SECS",
            reason: format!(
                "{secs} s is shorter than the queues' 14-day retention; use at least {} (15 days)",
                MIN_DEDUPE_TTL.as_secs()
            ),
        });
    }
    Ok(Duration::from_secs(secs))
}

/// Every provider's receiving side (an unconfigured one answers 404 naming its
/// variable); an error when no provider is configured.
pub fn sources(env: &Env) -> Result<Vec<Arc<dyn WebhookSource>>, ConfigError> {
    let halves = mount(|p| p.source(env), |p| p.receive_hint())?;
    Ok(halves.into_iter().map(|(p, half)| half.unwrap_or_else(|| Arc::new(receiver::UnconfiguredSource(p)))).collect())
}

/// Every provider's reconciling side (an unconfigured one dead-letters its messages
/// naming its variable); an error when no provider is configured.
pub fn reconcilers(env: &Env, deps: &Deps) -> Result<Vec<Arc<dyn Reconciler>>, ConfigError> {
    let halves = mount(|p| p.reconciler(env, deps), |p| p.reconcile_hint())?;
    Ok(halves
        .into_iter()
        .map(|(p, half)| half.unwrap_or_else(|| Arc::new(worker::UnconfiguredReconciler(p))))
        .collect())
}

/// Each registered provider with its part, `None` when unconfigured.
type Halves<T> = Vec<(&'static dyn Provider, Option<Arc<T>>)>;

/// One part of every registered provider, as `build` makes it (`None` when its variables
/// are unset); an error listing every provider's `hint` when none is configured.
fn mount<T: ?Sized>(
    build: impl Fn(&'static dyn Provider) -> Result<Option<Arc<T>>, ConfigError>,
    hint: impl Fn(&'static dyn Provider) -> &'static str,
) -> Result<Halves<T>, ConfigError> {
    let halves = ALL.iter().map(|&p| Ok((p, build(p)?))).collect::<Result<Vec<_>, ConfigError>>()?;
    if halves.iter().all(|(_, half)| half.is_none()) {
        let hints: Vec<&str> = ALL.iter().map(|&p| hint(p)).collect();
        return Err(ConfigError::NoProvider(hints.join("; ")));
    }
    Ok(halves)
}

/// The receiver configured from `env` over the given store and inbox.
pub fn receiver(
    env: &Env,
    store: Arc<dyn DedupeStore>,
    inbox: Arc<dyn Queue>,
    clock: Arc<dyn Clock>,
) -> Result<Receiver, ConfigError> {
    Ok(Receiver::new(store, inbox, sources(env)?, receiver_settings(env)?, clock))
}

/// What the providers' halves are built with: task watches and read budgets in `tables`.
pub fn deps(clock: Arc<dyn Clock>, tables: Arc<dyn ProviderTables>, http_timeout: Duration) -> Deps {
    Deps { clock, watches: tables.clone(), http_timeout, budget: Some(tables) }
}

/// The worker with `settings` (see [`worker_settings`]) and the providers configured from
/// `env`, over the given ports; task watches and the providers' read budgets live in
/// `tables`.
pub fn worker(
    env: &Env,
    ports: WorkerPorts,
    tables: Arc<dyn ProviderTables>,
    settings: WorkerSettings,
) -> Result<Worker, ConfigError> {
    let deps = deps(ports.clock.clone(), tables, settings.provider_call_timeout);
    let WorkerKeys { reconcilers, links } = worker_keys(env, &deps)?;
    Ok(Worker::new(ports, reconcilers, settings).with_links(links).with_output_hosts(output_hosts(env)?))
}

/// Every registered provider's output hosts: the list in its `<NAME>_OUTPUT_HOSTS`, or
/// its default ([`Provider::output_hosts`]).
pub fn output_hosts(env: &Env) -> Result<Vec<OutputRule>, ConfigError> {
    ALL.iter()
        .map(|&p| {
            let (variable, default) = p.output_hosts();
            let hosts = match env.optional(variable) {
                Some(list) => OutputHosts::parse(&list),
                None => OutputHosts::of(default),
            }
            .map_err(|e| ConfigError::Invalid { name: variable, reason: e.to_string() })?;
            Ok(OutputRule { provider: p.name(), variable, hosts })
        })
        .collect()
}

/// What the worker builds from its secrets: every provider's reconciler and, when the
/// stack serves output links, their minter.
pub fn worker_keys(env: &Env, deps: &Deps) -> Result<WorkerKeys, ConfigError> {
    Ok(WorkerKeys { reconcilers: reconcilers(env, deps)?, links: link_minter(env)? })
}

/// The output links' tunables: `GENHOOK_MIN_URL_TTL_SECS` (the least a redirect's target
/// lives, default 600) and a refresh lease outlasting `GENHOOK_HTTP_TIMEOUT_SECS`.
pub fn link_settings(env: &Env) -> Result<LinkSettings, ConfigError> {
    let mut settings = LinkSettings::default();
    settings.min_url_ttl = Duration::from_secs(env.number("GENHOOK_MIN_URL_TTL_SECS", settings.min_url_ttl.as_secs())?);
    settings.lease = http_timeout(env)?.saturating_add(Duration::from_secs(2));
    Ok(settings)
}

/// The output links' service over `cache` ([`link_signer`], [`link_settings`]), reading
/// jobs through every configured provider's API (an unconfigured provider's links answer
/// 404 naming its variable); an error when no provider is configured.
pub fn link_service(
    env: &Env,
    cache: Arc<dyn LinkCache>,
    tables: Arc<dyn ProviderTables>,
    clock: Arc<dyn Clock>,
) -> Result<LinkService, ConfigError> {
    let deps = deps(clock.clone(), tables, http_timeout(env)?);
    let apis = mount(|p| p.jobs(env, &deps), |p| p.reconcile_hint())?;
    let service =
        LinkService::new(link_signer(env)?, cache, clock, link_settings(env)?).with_output_hosts(output_hosts(env)?);
    Ok(apis.into_iter().fold(service, |service, (p, api)| match api {
        Some(api) => service.serve(p.name(), api),
        None => service.unserved(p.name(), p.reconcile_hint()),
    }))
}

/// The output links Lambda's configuration. Its `Debug` leaves the environment out.
#[derive(Clone)]
pub struct LinksConfig {
    /// `GENHOOK_TABLE`: the cache lives in the dedupe table.
    pub table: String,
    env: Env,
}

impl std::fmt::Debug for LinksConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinksConfig").field("table", &self.table).finish_non_exhaustive()
    }
}

impl LinksConfig {
    /// Reads the function's variables: `GENHOOK_TABLE`, `GENHOOK_LINK_SECRET`, and at
    /// least one provider's API key (checked here, so a bad deployment fails at init).
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        link_signer(env)?;
        link_settings(env)?;
        Ok(Self { table: env.required("GENHOOK_TABLE")?, env: env.clone() })
    }

    /// Builds the service on DynamoDB and the providers' HTTP APIs.
    pub async fn build(self) -> Result<Links, ConfigError> {
        self.build_with(&load_sdk_config().await, None)
    }

    /// [`Self::build`] with an SDK configuration already loaded, rebuilt from `secrets`
    /// (the function's stored secrets, when it has them) on their period and when a
    /// provider refuses its API key.
    pub fn build_with(self, sdk: &SdkConfig, secrets: Option<&SecretEnv>) -> Result<Links, ConfigError> {
        let store = Arc::new(DynamoDedupeStore::new(aws_sdk_dynamodb::Client::new(sdk), self.table));
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let service = link_service(&self.env, store.clone(), store.clone(), clock.clone())?;
        let reload = secrets.map(|s| s.links_reload(clock, store.clone(), store)).transpose()?.flatten();
        Ok(Links::new(service, reload))
    }
}

/// The receiver Lambda's configuration.
pub struct ReceiverConfig {
    /// `GENHOOK_TABLE`: the dedupe table.
    pub table: String,
    /// `GENHOOK_INBOX_QUEUE_URL`.
    pub inbox_queue_url: String,
    /// The providers' receiving sides.
    pub sources: Vec<Arc<dyn WebhookSource>>,
    /// `GENHOOK_MAX_BODY_BYTES`, `GENHOOK_THIN_OVER_BYTES`, `GENHOOK_DEDUPE_TTL_SECS`.
    pub settings: ReceiverSettings,
}

impl std::fmt::Debug for ReceiverConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let providers: Vec<&str> = self.sources.iter().map(|s| s.provider()).collect();
        f.debug_struct("ReceiverConfig")
            .field("table", &self.table)
            .field("inbox_queue_url", &self.inbox_queue_url)
            .field("providers", &providers)
            .field("settings", &self.settings)
            .finish()
    }
}

impl ReceiverConfig {
    /// Reads the receiver's variables (at least one provider's webhook secret).
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let sources = sources(env)?;
        Ok(Self {
            table: env.required("GENHOOK_TABLE")?,
            inbox_queue_url: env.required("GENHOOK_INBOX_QUEUE_URL")?,
            sources,
            settings: receiver_settings(env)?,
        })
    }

    /// Builds the receiver on DynamoDB and SQS (SDK clients made once, here).
    pub async fn build(self) -> Receiver {
        self.build_with(&load_sdk_config().await)
    }

    /// [`Self::build`] with an SDK configuration already loaded.
    pub fn build_with(self, sdk: &SdkConfig) -> Receiver {
        let store = DynamoDedupeStore::new(aws_sdk_dynamodb::Client::new(sdk), self.table);
        let inbox = SqsQueue::new(aws_sdk_sqs::Client::new(sdk), self.inbox_queue_url);
        Receiver::new(Arc::new(store), Arc::new(inbox), self.sources, self.settings, Arc::new(SystemClock))
    }
}

/// The worker Lambda's configuration. Its `Debug` leaves the environment (API keys) out.
#[derive(Clone)]
pub struct WorkerConfig {
    /// `GENHOOK_TABLE`.
    pub table: String,
    /// `GENHOOK_INBOX_QUEUE_URL` (for retry delays and polls).
    pub inbox_queue_url: String,
    /// `GENHOOK_INBOX_DLQ_URL` (optional; without it dead records wait for the redrive policy).
    pub inbox_dlq_url: Option<String>,
    /// `GENHOOK_OUTBOX_QUEUE_URL`.
    pub outbox_queue_url: String,
    /// The worker's tunables (see [`worker_settings`]).
    pub settings: WorkerSettings,
    /// Where the providers read their variables when the worker is built.
    env: Env,
}

impl std::fmt::Debug for WorkerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerConfig")
            .field("table", &self.table)
            .field("inbox_queue_url", &self.inbox_queue_url)
            .field("inbox_dlq_url", &self.inbox_dlq_url)
            .field("outbox_queue_url", &self.outbox_queue_url)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl WorkerConfig {
    /// Reads the worker's own variables; the providers' are read by [`Self::build`].
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            table: env.required("GENHOOK_TABLE")?,
            inbox_queue_url: env.required("GENHOOK_INBOX_QUEUE_URL")?,
            inbox_dlq_url: env.optional("GENHOOK_INBOX_DLQ_URL"),
            outbox_queue_url: env.required("GENHOOK_OUTBOX_QUEUE_URL")?,
            settings: worker_settings(env, WorkerSettings::default())?,
            env: env.clone(),
        })
    }

    /// Builds the worker on DynamoDB, SQS and the providers' HTTP APIs (at least one
    /// provider's API key).
    pub async fn build(self) -> Result<Worker, ConfigError> {
        self.build_with(&load_sdk_config().await, None)
    }

    /// [`Self::build`] with an SDK configuration already loaded, re-reading the keys from
    /// `secrets` (the function's stored secrets, when it has them) on their period and
    /// when a provider refuses a key.
    pub fn build_with(self, sdk: &SdkConfig, secrets: Option<&SecretEnv>) -> Result<Worker, ConfigError> {
        let sqs = aws_sdk_sqs::Client::new(sdk);
        let store = Arc::new(DynamoDedupeStore::new(aws_sdk_dynamodb::Client::new(sdk), self.table));
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let ports = WorkerPorts {
            store: store.clone(),
            inbox: Arc::new(SqsQueue::new(sqs.clone(), self.inbox_queue_url)),
            inbox_dlq: self.inbox_dlq_url.map(|u| Arc::new(SqsQueue::new(sqs.clone(), u)) as _),
            outbox: Arc::new(SqsQueue::new(sqs, self.outbox_queue_url)),
            clock: clock.clone(),
        };
        let deps = deps(clock.clone(), store.clone(), self.settings.provider_call_timeout);
        let worker = worker(&self.env, ports, store, self.settings)?;
        Ok(match secrets.map(|s| s.worker_reload(clock, deps)).transpose()?.flatten() {
            Some(reload) => worker.with_reload(reload),
            None => worker,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::memory::{MemoryQueue, MemoryStore};

    fn env(pairs: &[(&str, &str)]) -> Env {
        Env::from_pairs(pairs.iter().copied())
    }

    fn deps() -> Deps {
        super::deps(Arc::new(SystemClock), Arc::new(MemoryStore::default()), Duration::from_secs(1))
    }

    fn configured(sources: &[Arc<dyn WebhookSource>]) -> Vec<&'static str> {
        sources
            .iter()
            .filter(|s| {
                // An unconfigured source refuses every delivery with 404.
                let headers = http::HeaderMap::new();
                let d = crate::ports::provider::Delivery {
                    path: "/",
                    sent_path: "/",
                    query: None,
                    headers: &headers,
                    body: b"",
                    now: time::OffsetDateTime::UNIX_EPOCH,
                    received_at: "1970-01-01T00:00:00Z",
                };
                !matches!(s.intake(&d), Err(crate::ports::provider::Refusal::NotFound(m)) if m.contains("not configured"))
            })
            .map(|s| s.provider())
            .collect()
    }

    /// The worker keeps time for one SDK call of its finish phase before the deadline, and
    /// a provider call starts only with that time to spare after it.
    #[test]
    fn the_links_previous_key_is_accepted_while_it_is_set() {
        let old = link_signer(&env(&[("GENHOOK_LINK_SECRET", "links_old_key")])).unwrap();
        let link = old
            .link(&url::Url::parse("https://h.example").unwrap(), "katalo", "j1", 0, time::OffsetDateTime::UNIX_EPOCH)
            .unwrap();
        let parsed = url::Url::parse(&link).unwrap();
        let request = crate::toolkit::auth::link_token::LinkRequest::parse(parsed.path(), parsed.query()).unwrap();
        let rotating = link_signer(&env(&[
            ("GENHOOK_LINK_SECRET", "links_new_key"),
            ("GENHOOK_LINK_SECRET_PREVIOUS", "links_old_key"),
        ]))
        .unwrap();
        assert!(rotating.verify_request(&request, time::OffsetDateTime::UNIX_EPOCH).is_ok());
        let rotated = link_signer(&env(&[("GENHOOK_LINK_SECRET", "links_new_key")])).unwrap();
        assert!(rotated.verify_request(&request, time::OffsetDateTime::UNIX_EPOCH).is_err());
    }

    #[test]
    fn each_provider_has_output_hosts_a_variable_replaces() {
        let rules = output_hosts(&env(&[])).unwrap();
        let rule = |name: &str| OutputRule::of(&rules, name).unwrap().clone();
        assert_eq!(rules.len(), ALL.len());
        assert_eq!(rule("replicate").refusal("https://pbxt.replicate.delivery/o.png"), None);
        assert!(rule("replicate").refusal("https://evil.example/login").is_some());
        assert_eq!(rule("katalo").refusal("https://katalo-outputs.s3.amazonaws.com/o.png?X-Amz-Date=1"), None);
        assert_eq!(rule("apimp").refusal("https://cdn.klingai.com/v.mp4"), None);
        let rules = output_hosts(&env(&[("KATALO_OUTPUT_HOSTS", "files.example.com, *.cdn.example.com")])).unwrap();
        let katalo = OutputRule::of(&rules, "katalo").unwrap();
        assert_eq!(katalo.refusal("https://a.cdn.example.com/o.png"), None);
        assert!(
            katalo.refusal("https://katalo-outputs.s3.amazonaws.com/o.png").is_some(),
            "the list replaces the default"
        );
        let bad = output_hosts(&env(&[("REPLICATE_OUTPUT_HOSTS", "https://replicate.delivery/files")])).unwrap_err();
        assert!(bad.to_string().contains("REPLICATE_OUTPUT_HOSTS"), "{bad}");
    }

    #[test]
    fn the_worker_knows_the_inbox_receive_limit_and_the_wait_horizon() {
        let s = worker_settings(&env(&[]), WorkerSettings::default()).unwrap();
        assert_eq!((s.max_receives, s.wait_horizon.as_secs()), (Some(20), 86_400));
        let s = worker_settings(
            &env(&[("GENHOOK_INBOX_MAX_RECEIVES", "0"), ("GENHOOK_RETRY_HORIZON_SECS", "600")]),
            WorkerSettings::default(),
        )
        .unwrap();
        assert_eq!((s.max_receives, s.wait_horizon.as_secs()), (None, 600));
        assert!(worker_settings(&env(&[("GENHOOK_INBOX_MAX_RECEIVES", "-1")]), WorkerSettings::default()).is_err());
    }

    #[test]
    fn the_worker_reserve_holds_an_sdk_call() {
        let s = worker_settings(&env(&[]), WorkerSettings::default()).unwrap();
        assert!(s.deadline_reserve > OPERATION_TIMEOUT, "{:?}", s.deadline_reserve);
    }

    #[test]
    fn worker_config_debug_leaves_the_keys_out() {
        let c = WorkerConfig::from_env(&env(&[
            ("GENHOOK_TABLE", "t"),
            ("GENHOOK_INBOX_QUEUE_URL", "http://q"),
            ("GENHOOK_OUTBOX_QUEUE_URL", "http://o"),
            ("KATALO_API_KEY", "kat_live_SECRET"),
            ("APIMP_API_KEY", "apimp_SECRET"),
            ("APIMP_API_BASE_URL", "https://api.example.com"),
        ]))
        .unwrap();
        let shown = format!("{c:?}");
        assert!(!shown.contains("SECRET") && shown.contains("outbox_queue_url"), "{shown}");
    }

    #[test]
    fn receiver_defaults_and_errors() {
        let base =
            [("KATALO_WEBHOOK_SECRET", "s3cr3t"), ("GENHOOK_TABLE", "t"), ("GENHOOK_INBOX_QUEUE_URL", "http://q")];
        let c = ReceiverConfig::from_env(&env(&base)).unwrap();
        assert_eq!((c.settings.max_body_bytes, c.settings.thin_over_bytes), (6_291_456, 262_144));
        assert_eq!(c.settings.dedupe_ttl, Duration::from_secs(1_296_000));
        assert_eq!(configured(&c.sources), ["katalo"]);
        let mut short = base.to_vec();
        short.push(("GENHOOK_DEDUPE_TTL_SECS", "604800"));
        let err = ReceiverConfig::from_env(&env(&short)).unwrap_err().to_string();
        assert!(err.contains("GENHOOK_DEDUPE_TTL_SECS") && err.contains("14-day"), "{err}");
        let err = ReceiverConfig::from_env(&env(&base[1..])).unwrap_err();
        assert!(matches!(&err, ConfigError::NoProvider(v) if v.contains("KATALO_WEBHOOK_SECRET")), "{err}");
        let mut bad = base.to_vec();
        bad.push(("GENHOOK_MAX_BODY_BYTES", "lots"));
        let err = ReceiverConfig::from_env(&env(&bad)).unwrap_err().to_string();
        assert!(err.contains("GENHOOK_MAX_BODY_BYTES"), "{err}");
        let mut bad = base.to_vec();
        bad.push(("GENHOOK_THIN_OVER_BYTES", "1048577"));
        let err = ReceiverConfig::from_env(&env(&bad)).unwrap_err().to_string();
        assert!(err.contains("GENHOOK_THIN_OVER_BYTES") && err.contains("1048576"), "{err}");
        assert!(!format!("{c:?}").contains("s3cr3t"), "secrets never show in Debug");
    }

    #[test]
    fn worker_defaults_and_errors() {
        let base = [
            ("GENHOOK_TABLE", "t"),
            ("GENHOOK_INBOX_QUEUE_URL", "http://in"),
            ("GENHOOK_OUTBOX_QUEUE_URL", "http://out"),
            ("KATALO_API_KEY", "k"),
        ];
        let c = WorkerConfig::from_env(&env(&base)).unwrap();
        assert_eq!(c.settings.min_url_ttl, Duration::from_secs(600));
        assert_eq!(c.inbox_dlq_url, None);
        assert_eq!(reconcilers(&env(&base), &deps()).unwrap().len(), ALL.len());
        let mut bad = base.to_vec();
        bad.push(("KATALO_API_BASE_URL", "ftp://x"));
        assert!(matches!(
            reconcilers(&env(&bad), &deps()),
            Err(ConfigError::Invalid { name: "KATALO_API_BASE_URL", .. })
        ));
    }

    #[test]
    fn apimp_only_deployments_need_no_katalo_secrets() {
        let receiver = [
            ("GENHOOK_TABLE", "t"),
            ("GENHOOK_INBOX_QUEUE_URL", "http://q"),
            ("APIMP_CALLBACK_SECRET", "cb"),
            ("VIDU_CALLBACK_SECRET", "v"),
        ];
        let c = ReceiverConfig::from_env(&env(&receiver)).unwrap();
        assert_eq!(configured(&c.sources), ["apimp"]);
        assert!(matches!(ReceiverConfig::from_env(&env(&receiver[..2])), Err(ConfigError::NoProvider(_))));

        let worker = [("APIMP_API_KEY", "sk"), ("APIMP_API_BASE_URL", "https://api.apimp.example")];
        assert!(reconcilers(&env(&worker), &deps()).is_ok());
        assert!(matches!(reconcilers(&env(&[]), &deps()), Err(ConfigError::NoProvider(_))));
        assert!(matches!(reconcilers(&env(&worker[..1]), &deps()), Err(ConfigError::Missing("APIMP_API_BASE_URL"))));
    }

    #[test]
    fn links_need_the_public_url_and_the_secret_together() {
        assert!(link_minter(&env(&[])).unwrap().is_none(), "no links unless asked");
        let both = [("GENHOOK_PUBLIC_URL", "https://hooks.example.com/Prod"), ("GENHOOK_LINK_SECRET", "s3cr3t-link")];
        let minter = link_minter(&env(&both)).unwrap().unwrap();
        assert!(!format!("{minter:?}").contains("s3cr3t"), "the key never shows in Debug");
        assert!(matches!(link_minter(&env(&both[..1])), Err(ConfigError::Missing("GENHOOK_LINK_SECRET"))));
        assert!(matches!(link_minter(&env(&both[1..])), Err(ConfigError::Missing("GENHOOK_PUBLIC_URL"))));
        let bad = [("GENHOOK_PUBLIC_URL", "mailto:x@example.com?token=abc"), both[1]];
        let err = link_minter(&env(&bad)).unwrap_err().to_string();
        assert!(err.contains("GENHOOK_PUBLIC_URL") && !err.contains("abc"), "{err}");
        // 0 is the template's default: links never expire.
        let never = [both[0], both[1], ("GENHOOK_LINK_TTL_SECS", "0")];
        assert!(link_minter(&env(&never)).unwrap().is_some());
        let ttl = [both[0], both[1], ("GENHOOK_LINK_TTL_SECS", "soon")];
        assert!(matches!(link_minter(&env(&ttl)), Err(ConfigError::Invalid { name: "GENHOOK_LINK_TTL_SECS", .. })));
    }

    #[test]
    fn the_link_service_needs_its_secret_and_a_provider() {
        let store = Arc::new(MemoryStore::default());
        let build =
            |pairs: &[(&str, &str)]| link_service(&env(pairs), store.clone(), store.clone(), Arc::new(SystemClock));
        assert!(build(&[("GENHOOK_LINK_SECRET", "k"), ("KATALO_API_KEY", "x")]).is_ok());
        assert!(matches!(build(&[("KATALO_API_KEY", "x")]), Err(ConfigError::Missing("GENHOOK_LINK_SECRET"))));
        assert!(matches!(build(&[("GENHOOK_LINK_SECRET", "k")]), Err(ConfigError::NoProvider(_))));
        let links = LinksConfig::from_env(&env(&[("GENHOOK_TABLE", "t"), ("GENHOOK_LINK_SECRET", "s3cr3t")])).unwrap();
        assert!(!format!("{links:?}").contains("s3cr3t"));
        assert!(LinksConfig::from_env(&env(&[("GENHOOK_TABLE", "t")])).is_err());
    }

    #[tokio::test]
    async fn one_root_for_every_runtime() {
        let vars = env(&[("KATALO_WEBHOOK_SECRET", "s"), ("KATALO_API_KEY", "k")]);
        let store = Arc::new(MemoryStore::default());
        let inbox = Arc::new(MemoryQueue::default());
        assert!(receiver(&vars, store.clone(), inbox.clone(), Arc::new(SystemClock)).is_ok());
        let ports = WorkerPorts {
            store: store.clone(),
            inbox: inbox.clone(),
            inbox_dlq: None,
            outbox: inbox,
            clock: Arc::new(SystemClock),
        };
        assert!(worker(&vars, ports, store, WorkerSettings::default()).is_ok());
    }
}
