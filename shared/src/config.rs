//! Configuration from environment variables (the product's public interface) and the
//! wiring that builds the services from it, once per cold start.

use std::sync::Arc;
use std::time::Duration;

use crate::adapters::aws::load_sdk_config;
use crate::adapters::dynamodb::DynamoDedupeStore;
use crate::adapters::sqs::SqsQueue;
use crate::domain::clock::SystemClock;
use crate::domain::dedupe::MIN_DEDUPE_TTL;
use crate::ports::{JobApi, NotConfigured};
use crate::providers::apimp::api::ApimpApi;
use crate::providers::katalo::api::{DEFAULT_BASE_URL, KataloApi};
use crate::receiver::{ApimpCallbackSettings, Receiver, ReceiverSettings};
use crate::signature::HmacSecrets;
use crate::worker::{Worker, WorkerPorts, WorkerSettings};

/// A configuration problem, found at start-up.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A required variable is unset or empty.
    #[error("environment variable {0} is required")]
    Missing(&'static str),
    /// A variable is set but unusable.
    #[error("environment variable {name} is invalid: {reason}")]
    Invalid {
        /// The variable.
        name: &'static str,
        /// What is wrong (never the value itself: it may be a secret).
        reason: String,
    },
}

/// Reads variables through a lookup function, so tests need not touch the process env.
pub struct Env<F: Fn(&str) -> Option<String>>(pub F);

impl Env<fn(&str) -> Option<String>> {
    /// The process environment.
    pub fn process() -> Self {
        Env(|k| std::env::var(k).ok())
    }
}

impl<F: Fn(&str) -> Option<String>> Env<F> {
    /// A set, non-empty variable.
    pub fn optional(&self, name: &str) -> Option<String> {
        (self.0)(name).filter(|v| !v.trim().is_empty())
    }

    /// A required variable.
    pub fn required(&self, name: &'static str) -> Result<String, ConfigError> {
        self.optional(name).ok_or(ConfigError::Missing(name))
    }

    /// A positive integer with a default.
    pub fn number(&self, name: &'static str, default: u64) -> Result<u64, ConfigError> {
        match self.optional(name) {
            None => Ok(default),
            Some(v) => match v.trim().parse::<u64>() {
                Ok(n) if n > 0 => Ok(n),
                _ => Err(ConfigError::Invalid { name, reason: format!("expected a positive whole number, got {v:?}") }),
            },
        }
    }
}

/// The receiver's tunables from `KATALO_WEBHOOK_SECRET_PREVIOUS`, `GENHOOK_MAX_BODY_BYTES`,
/// `GENHOOK_DEDUPE_TTL_SECS` and the APIMP variables, around the given current Katalo
/// secret (`None`: the Katalo route is off).
pub fn receiver_settings<F: Fn(&str) -> Option<String>>(
    env: &Env<F>,
    secret: Option<String>,
) -> Result<ReceiverSettings, ConfigError> {
    let previous = env.optional("KATALO_WEBHOOK_SECRET_PREVIOUS").map(String::into_bytes);
    let mut settings = ReceiverSettings::without_katalo();
    settings.katalo_secrets = secret.map(|s| HmacSecrets::new(s, previous));
    settings.max_body_bytes = env.number("GENHOOK_MAX_BODY_BYTES", settings.max_body_bytes as u64)? as usize;
    settings.dedupe_ttl = dedupe_ttl(env)?;
    settings.apimp = env.optional("APIMP_CALLBACK_SECRET").map(|key| apimp_callback_settings(env, key));
    Ok(settings)
}

/// APIMP callbacks keyed by `current` (normally `APIMP_CALLBACK_SECRET`), with
/// `APIMP_CALLBACK_SECRET_PREVIOUS` and `VIDU_CALLBACK_SECRET` from the environment.
pub fn apimp_callback_settings<F: Fn(&str) -> Option<String>>(env: &Env<F>, current: String) -> ApimpCallbackSettings {
    let previous = env.optional("APIMP_CALLBACK_SECRET_PREVIOUS").map(String::into_bytes);
    ApimpCallbackSettings {
        callback_secrets: HmacSecrets::new(current, previous),
        vidu_secrets: env.optional("VIDU_CALLBACK_SECRET").map(|s| HmacSecrets::new(s, None)),
    }
}

/// The worker's tunables (`GENHOOK_MIN_URL_TTL_SECS`, `GENHOOK_WORKER_CONCURRENCY`,
/// `GENHOOK_DEDUPE_TTL_SECS`, `GENHOOK_RETRY_BASE_SECS`, `GENHOOK_RETRY_MAX_SECS`), each
/// defaulting to the value in `defaults`.
pub fn worker_settings<F: Fn(&str) -> Option<String>>(
    env: &Env<F>,
    mut settings: WorkerSettings,
) -> Result<WorkerSettings, ConfigError> {
    settings.min_url_ttl = Duration::from_secs(env.number("GENHOOK_MIN_URL_TTL_SECS", settings.min_url_ttl.as_secs())?);
    settings.concurrency = env.number("GENHOOK_WORKER_CONCURRENCY", settings.concurrency as u64)? as usize;
    settings.dedupe_ttl = dedupe_ttl(env)?;
    settings.katalo_poll_horizon =
        Duration::from_secs(env.number("KATALO_POLL_HORIZON_SECS", settings.katalo_poll_horizon.as_secs())?);
    settings.backoff.base =
        Duration::from_secs(env.number("GENHOOK_RETRY_BASE_SECS", settings.backoff.base.as_secs())?);
    settings.backoff.cap = Duration::from_secs(env.number("GENHOOK_RETRY_MAX_SECS", settings.backoff.cap.as_secs())?);
    Ok(settings)
}

/// `GENHOOK_DEDUPE_TTL_SECS` (default and minimum [`MIN_DEDUPE_TTL`], 15 days): a dedupe
/// record must outlive every queued message that can still refer to it (SQS keeps
/// messages, DLQs included, for up to 14 days), or a late redrive publishes again.
pub fn dedupe_ttl<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Duration, ConfigError> {
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

/// `KATALO_API_BASE_URL` (default `https://app.katalo.ai`), checked to be an http(s) URL.
pub fn katalo_api_base_url<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<String, ConfigError> {
    let base = env.optional("KATALO_API_BASE_URL").unwrap_or_else(|| DEFAULT_BASE_URL.into());
    match url::Url::parse(&base) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => Ok(base),
        _ => Err(ConfigError::Invalid { name: "KATALO_API_BASE_URL", reason: "expected an http(s) URL".into() }),
    }
}

/// Receiver configuration.
#[derive(Debug, Clone)]
pub struct ReceiverConfig {
    /// `GENHOOK_TABLE`: the dedupe table.
    pub table: String,
    /// `GENHOOK_INBOX_QUEUE_URL`.
    pub inbox_queue_url: String,
    /// `KATALO_WEBHOOK_SECRET` and `KATALO_WEBHOOK_SECRET_PREVIOUS`; `GENHOOK_MAX_BODY_BYTES`
    /// (default 262144); `GENHOOK_DEDUPE_TTL_SECS` (default 604800).
    pub settings: ReceiverSettings,
}

impl ReceiverConfig {
    /// Reads the receiver's variables.
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        // At least one provider: Katalo's secret, or APIMP's callback key.
        let secret = env.optional("KATALO_WEBHOOK_SECRET");
        let settings = receiver_settings(env, secret)?;
        if settings.katalo_secrets.is_none() && settings.apimp.is_none() {
            return Err(ConfigError::Missing("KATALO_WEBHOOK_SECRET"));
        }
        Ok(Self {
            table: env.required("GENHOOK_TABLE")?,
            inbox_queue_url: env.required("GENHOOK_INBOX_QUEUE_URL")?,
            settings,
        })
    }

    /// Builds the receiver on DynamoDB and SQS (SDK clients made once, here).
    pub async fn build(self) -> Receiver {
        let sdk = load_sdk_config().await;
        let store = DynamoDedupeStore::new(aws_sdk_dynamodb::Client::new(&sdk), self.table);
        let inbox = SqsQueue::new(aws_sdk_sqs::Client::new(&sdk), self.inbox_queue_url);
        Receiver::new(Arc::new(store), Arc::new(inbox), self.settings, Arc::new(SystemClock))
    }
}

/// APIMP's status API settings.
#[derive(Clone)]
pub struct ApimpApiConfig {
    /// `APIMP_API_BASE_URL`.
    pub base_url: String,
    /// `APIMP_API_KEY`.
    pub api_key: String,
    /// `APIMP_API_MAX_RPS`.
    pub max_rps: u32,
}

impl std::fmt::Debug for ApimpApiConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApimpApiConfig").field("base_url", &self.base_url).finish_non_exhaustive()
    }
}

impl ApimpApiConfig {
    /// Reads the APIMP variables; `None` when `APIMP_API_KEY` is unset.
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Option<Self>, ConfigError> {
        let Some(api_key) = env.optional("APIMP_API_KEY") else { return Ok(None) };
        let base_url = env.required("APIMP_API_BASE_URL")?;
        match url::Url::parse(&base_url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => {}
            _ => {
                return Err(ConfigError::Invalid {
                    name: "APIMP_API_BASE_URL",
                    reason: "expected an http(s) URL".into(),
                });
            }
        }
        let max_rps = env.number("APIMP_API_MAX_RPS", 8)?.min(u32::MAX as u64) as u32;
        Ok(Some(Self { base_url, api_key, max_rps }))
    }

    /// The client.
    pub fn build(&self, timeout: Duration) -> ApimpApi {
        ApimpApi::new(&self.base_url, self.api_key.clone(), timeout)
            .expect("APIMP_API_BASE_URL was validated")
            .with_rate_limit(self.max_rps)
    }
}

/// Worker configuration. Its `Debug` leaves the API keys out.
#[derive(Clone)]
pub struct WorkerConfig {
    /// `GENHOOK_TABLE`.
    pub table: String,
    /// `GENHOOK_INBOX_QUEUE_URL` (for retry delays).
    pub inbox_queue_url: String,
    /// `GENHOOK_INBOX_DLQ_URL` (optional; without it dead records wait for the redrive policy).
    pub inbox_dlq_url: Option<String>,
    /// `GENHOOK_OUTBOX_QUEUE_URL`.
    pub outbox_queue_url: String,
    /// `KATALO_API_BASE_URL` (default `https://app.katalo.ai`).
    pub katalo_api_base_url: String,
    /// `KATALO_API_KEY` (optional when APIMP is configured: Katalo messages are then
    /// dead-lettered with that reason).
    pub katalo_api_key: Option<String>,
    /// `GENHOOK_HTTP_TIMEOUT_SECS` (default 10).
    pub http_timeout: Duration,
    /// `KATALO_API_MAX_RPS` (default 8): requests per second per worker instance.
    pub katalo_max_rps: u32,
    /// `APIMP_API_KEY` with `APIMP_API_BASE_URL` (both or neither) and
    /// `APIMP_API_MAX_RPS` (default 8): APIMP's status API, for APIMP tasks.
    pub apimp: Option<ApimpApiConfig>,
    /// `GENHOOK_MIN_URL_TTL_SECS` (default 600), `GENHOOK_WORKER_CONCURRENCY` (default 8),
    /// `GENHOOK_DEDUPE_TTL_SECS` (default and minimum 1296000), `KATALO_POLL_HORIZON_SECS`
    /// (default 86400), `GENHOOK_RETRY_BASE_SECS` (default 10) and
    /// `GENHOOK_RETRY_MAX_SECS` (default 900).
    pub settings: WorkerSettings,
}

impl std::fmt::Debug for WorkerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerConfig")
            .field("table", &self.table)
            .field("inbox_queue_url", &self.inbox_queue_url)
            .field("inbox_dlq_url", &self.inbox_dlq_url)
            .field("outbox_queue_url", &self.outbox_queue_url)
            .field("katalo_api_base_url", &self.katalo_api_base_url)
            .field("katalo_api_key", &self.katalo_api_key.as_ref().map(|_| "<redacted>"))
            .field("http_timeout", &self.http_timeout)
            .field("katalo_max_rps", &self.katalo_max_rps)
            .field("apimp", &self.apimp)
            .field("settings", &self.settings)
            .finish()
    }
}

impl WorkerConfig {
    /// Reads the worker's variables.
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        let mut settings = worker_settings(env, WorkerSettings::default())?;
        let http_timeout = Duration::from_secs(env.number("GENHOOK_HTTP_TIMEOUT_SECS", 10)?);
        settings.provider_call_timeout = http_timeout;
        let base = katalo_api_base_url(env)?;
        let apimp = ApimpApiConfig::from_env(env)?;
        if env.optional("KATALO_API_KEY").is_none() && apimp.is_none() {
            return Err(ConfigError::Missing("KATALO_API_KEY"));
        }
        Ok(Self {
            table: env.required("GENHOOK_TABLE")?,
            inbox_queue_url: env.required("GENHOOK_INBOX_QUEUE_URL")?,
            inbox_dlq_url: env.optional("GENHOOK_INBOX_DLQ_URL"),
            outbox_queue_url: env.required("GENHOOK_OUTBOX_QUEUE_URL")?,
            katalo_api_base_url: base,
            katalo_api_key: env.optional("KATALO_API_KEY"),
            http_timeout,
            katalo_max_rps: env.number("KATALO_API_MAX_RPS", 8)?.min(u32::MAX as u64) as u32,
            apimp,
            settings,
        })
    }

    /// Builds the worker on DynamoDB, SQS and Katalo's HTTP API.
    pub async fn build(self) -> Worker {
        let sdk = load_sdk_config().await;
        let sqs = aws_sdk_sqs::Client::new(&sdk);
        let clock = Arc::new(SystemClock);
        let katalo: Arc<dyn JobApi> = match self.katalo_api_key {
            Some(key) => Arc::new(
                KataloApi::new(&self.katalo_api_base_url, key, self.http_timeout, clock.clone())
                    .expect("KATALO_API_BASE_URL was validated")
                    .with_rate_limit(self.katalo_max_rps),
            ),
            None => Arc::new(NotConfigured("KATALO_API_KEY")),
        };
        let store = Arc::new(DynamoDedupeStore::new(aws_sdk_dynamodb::Client::new(&sdk), self.table));
        let ports = WorkerPorts {
            store: store.clone(),
            watches: store,
            apimp: self.apimp.map(|a| Arc::new(a.build(self.http_timeout)) as _),
            inbox: Arc::new(SqsQueue::new(sqs.clone(), self.inbox_queue_url)),
            inbox_dlq: self.inbox_dlq_url.map(|u| Arc::new(SqsQueue::new(sqs.clone(), u)) as _),
            outbox: Arc::new(SqsQueue::new(sqs, self.outbox_queue_url)),
            katalo,
            clock,
        };
        Worker::new(ports, self.settings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> Env<impl Fn(&str) -> Option<String>> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Env(move |k| map.get(k).cloned())
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
        assert!(!shown.contains("SECRET") && shown.contains("<redacted>"), "{shown}");
    }

    #[test]
    fn receiver_defaults_and_errors() {
        let base =
            [("KATALO_WEBHOOK_SECRET", "s3cr3t"), ("GENHOOK_TABLE", "t"), ("GENHOOK_INBOX_QUEUE_URL", "http://q")];
        let c = ReceiverConfig::from_env(&env(&base)).unwrap();
        assert_eq!(c.settings.max_body_bytes, 262_144);
        assert_eq!(c.settings.dedupe_ttl, Duration::from_secs(1_296_000));
        let mut short = base.to_vec();
        short.push(("GENHOOK_DEDUPE_TTL_SECS", "604800"));
        let err = ReceiverConfig::from_env(&env(&short)).unwrap_err().to_string();
        assert!(err.contains("GENHOOK_DEDUPE_TTL_SECS") && err.contains("14-day"), "{err}");
        let err = ReceiverConfig::from_env(&env(&base[1..])).unwrap_err();
        assert!(matches!(err, ConfigError::Missing("KATALO_WEBHOOK_SECRET")));
        let mut bad = base.to_vec();
        bad.push(("GENHOOK_MAX_BODY_BYTES", "lots"));
        let err = ReceiverConfig::from_env(&env(&bad)).unwrap_err().to_string();
        assert!(err.contains("GENHOOK_MAX_BODY_BYTES"), "{err}");
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
        assert_eq!(c.katalo_api_base_url, DEFAULT_BASE_URL);
        assert_eq!(c.settings.min_url_ttl, Duration::from_secs(600));
        assert_eq!(c.inbox_dlq_url, None);
        let mut bad = base.to_vec();
        bad.push(("KATALO_API_BASE_URL", "ftp://x"));
        assert!(matches!(
            WorkerConfig::from_env(&env(&bad)),
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
        assert!(c.settings.katalo_secrets.is_none());
        assert!(c.settings.apimp.as_ref().is_some_and(|a| a.vidu_secrets.is_some()));
        assert!(matches!(
            ReceiverConfig::from_env(&env(&receiver[..2])),
            Err(ConfigError::Missing("KATALO_WEBHOOK_SECRET"))
        ));

        let worker = [
            ("GENHOOK_TABLE", "t"),
            ("GENHOOK_INBOX_QUEUE_URL", "http://in"),
            ("GENHOOK_OUTBOX_QUEUE_URL", "http://out"),
            ("APIMP_API_KEY", "sk"),
            ("APIMP_API_BASE_URL", "https://api.apimp.example"),
        ];
        let c = WorkerConfig::from_env(&env(&worker)).unwrap();
        assert_eq!((c.katalo_api_key, c.apimp.map(|a| a.max_rps)), (None, Some(8)));
        assert!(matches!(WorkerConfig::from_env(&env(&worker[..3])), Err(ConfigError::Missing("KATALO_API_KEY"))));
        let no_base = [&worker[..4]].concat();
        assert!(matches!(WorkerConfig::from_env(&env(&no_base)), Err(ConfigError::Missing("APIMP_API_BASE_URL"))));
    }
}
