//! Secrets from a secret store (AWS Secrets Manager in the Lambdas): `GENHOOK_SECRET_IDS`
//! names one or more stored secrets (ARNs or names, comma-separated), each a JSON object
//! whose keys are the variables they stand for. They are read at cold start; each
//! function lays only the variables it needs over its environment. The store is the
//! truth: a `_PREVIOUS` value is accepted only while the store holds it. The receiver
//! reads them again every `GENHOOK_SECRET_REFRESH_SECS` (default 60), and also when a
//! delivery fails authentication (no more often than that), so a rotated webhook secret
//! is picked up, and a revoked one refused, without a redeploy.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use aws_config::SdkConfig;
use tracing::warn;

use super::{ConfigError, Env, link_service, sources, worker_keys};
use crate::adapters::secretsmanager::SecretsManagerSource;
use crate::domain::clock::{Clock, millis};
use crate::engine::links::LinkService;
use crate::engine::receiver::Sources;
use crate::engine::reload::Reload;
use crate::engine::worker::WorkerKeys;
use crate::ports::ProviderTables;
use crate::ports::link_cache::LinkCache;
use crate::ports::provider::Deps;
use crate::ports::secrets::SecretSource;
use crate::providers::ALL;

/// The variable naming the stored secrets.
pub const SECRET_IDS: &str = "GENHOOK_SECRET_IDS";
/// The output links' key, read by the worker and the links function.
const LINK_SECRET: &str = "GENHOOK_LINK_SECRET";
/// The links' previous key, during a rotation.
const LINK_SECRET_PREVIOUS: &str = "GENHOOK_LINK_SECRET_PREVIOUS";

/// The secret variables the receiver reads: every provider's webhook keys.
pub fn receiver_secret_names() -> Vec<&'static str> {
    ALL.iter().flat_map(|p| p.receive_secrets().iter().copied()).collect()
}

/// The secret variables the worker and the links function read: every provider's API
/// keys and the links' key.
pub fn api_secret_names() -> Vec<&'static str> {
    ALL.iter().flat_map(|p| p.api_secrets().iter().copied()).chain([LINK_SECRET, LINK_SECRET_PREVIOUS]).collect()
}

/// A function's environment with its stored secrets laid over it.
pub struct SecretEnv {
    /// The environment to configure the function from.
    pub env: Env,
    stored: Option<Stored>,
}

struct Stored {
    source: Arc<dyn SecretSource>,
    base: Env,
    names: Vec<&'static str>,
    values: BTreeMap<String, String>,
}

impl std::fmt::Debug for SecretEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&String> = self.stored.iter().flat_map(|s| s.values.keys()).collect();
        f.debug_struct("SecretEnv").field("stored_variables", &names).finish_non_exhaustive()
    }
}

impl SecretEnv {
    /// `env` with the values of `names` from the secrets `GENHOOK_SECRET_IDS` names, read
    /// from Secrets Manager with `sdk`; `env` as it is when the variable is unset.
    pub async fn load(sdk: &SdkConfig, env: Env, names: Vec<&'static str>) -> Result<Self, ConfigError> {
        let ids = secret_ids(&env);
        if ids.is_empty() {
            return Ok(Self { env, stored: None });
        }
        let client = aws_sdk_secretsmanager::Client::new(sdk);
        Self::load_from(env, names, Arc::new(SecretsManagerSource::new(client, ids))).await
    }

    /// `env` with the values of `names` read from `source`.
    pub async fn load_from(
        env: Env,
        names: Vec<&'static str>,
        source: Arc<dyn SecretSource>,
    ) -> Result<Self, ConfigError> {
        let fetched =
            source.fetch().await.map_err(|e| ConfigError::Invalid { name: SECRET_IDS, reason: e.to_string() })?;
        let values = only(&names, fetched);
        let stored = Stored { source, base: env.clone(), names, values };
        Ok(Self { env: env.overlaid(stored.values.clone()), stored: Some(stored) })
    }

    /// What re-reads the receiver's secrets every `GENHOOK_SECRET_REFRESH_SECS` (default
    /// 60) and after an authentication failure (no more often); `None` without stored
    /// secrets.
    pub fn receiver_reload(&self, clock: Arc<dyn Clock>) -> Result<Option<Arc<dyn Reload<Sources>>>, ConfigError> {
        Ok(self.reload(clock, "webhook secrets", Box::new(sources))?.map(|r| Arc::new(r) as _))
    }

    /// What re-reads the worker's secrets (the providers' API keys) on the same period
    /// and when a provider refuses its key, rebuilding the reconcilers over `deps`;
    /// `None` without stored secrets.
    pub fn worker_reload(
        &self,
        clock: Arc<dyn Clock>,
        deps: Deps,
    ) -> Result<Option<Arc<dyn Reload<WorkerKeys>>>, ConfigError> {
        let build: Build<WorkerKeys> = Box::new(move |env| worker_keys(env, &deps));
        Ok(self.reload(clock, "API keys", build)?.map(|r| Arc::new(r) as _))
    }

    /// What re-reads the links function's secrets (the API keys, the links' keys) on the
    /// same period and when a provider refuses its key, rebuilding the service over
    /// `cache`; `None` without stored secrets.
    pub fn links_reload(
        &self,
        clock: Arc<dyn Clock>,
        cache: Arc<dyn LinkCache>,
        tables: Arc<dyn ProviderTables>,
    ) -> Result<Option<Arc<dyn Reload<LinkService>>>, ConfigError> {
        let service_clock = clock.clone();
        let build: Build<LinkService> =
            Box::new(move |env| link_service(env, cache.clone(), tables.clone(), service_clock.clone()));
        Ok(self.reload(clock, "links' secrets", build)?.map(|r| Arc::new(r) as _))
    }

    fn reload<T>(
        &self,
        clock: Arc<dyn Clock>,
        what: &'static str,
        build: Build<T>,
    ) -> Result<Option<SecretReload<T>>, ConfigError> {
        let Some(stored) = &self.stored else { return Ok(None) };
        let min_interval = Duration::from_secs(self.env.number("GENHOOK_SECRET_REFRESH_SECS", 60)?);
        let read_at_ms = clock.now_ms();
        Ok(Some(SecretReload {
            source: stored.source.clone(),
            base: stored.base.clone(),
            names: stored.names.clone(),
            min_interval,
            clock: clock.clone(),
            next_read_ms: AtomicI64::new(read_at_ms.saturating_add(millis(min_interval))),
            state: tokio::sync::Mutex::new(ReloadState { read_at_ms, values: stored.values.clone() }),
            what,
            build,
        }))
    }
}

/// What a re-read builds from the environment with the fresh secrets laid over it.
type Build<T> = Box<dyn Fn(&Env) -> Result<T, ConfigError> + Send + Sync>;

/// The ids in `GENHOOK_SECRET_IDS` (comma-separated, blanks dropped).
fn secret_ids(env: &Env) -> Vec<String> {
    let raw = env.optional(SECRET_IDS).unwrap_or_default();
    raw.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect()
}

/// The values of `names` only: a function never holds another function's secrets.
fn only(names: &[&str], values: BTreeMap<String, String>) -> BTreeMap<String, String> {
    values.into_iter().filter(|(k, _)| names.contains(&k.as_str())).collect()
}

struct ReloadState {
    read_at_ms: i64,
    values: BTreeMap<String, String>,
}

/// Re-reads a function's secrets, rate-limited, and rebuilds what uses them.
struct SecretReload<T> {
    source: Arc<dyn SecretSource>,
    base: Env,
    names: Vec<&'static str>,
    min_interval: Duration,
    clock: Arc<dyn Clock>,
    /// When the next read is due (epoch ms): read lock-free on every delivery.
    next_read_ms: AtomicI64,
    state: tokio::sync::Mutex<ReloadState>,
    /// What the secrets are, for the logs.
    what: &'static str,
    build: Build<T>,
}

#[async_trait]
impl<T: Send + 'static> Reload<T> for SecretReload<T> {
    fn due(&self, now_ms: i64) -> bool {
        now_ms >= self.next_read_ms.load(Ordering::Relaxed)
    }

    async fn reload(&self) -> Option<T> {
        self.reread().await
    }
}

impl<T> SecretReload<T> {
    /// What `build` makes of the fresh secrets, if the store may be read again now and
    /// they changed; `None` otherwise (the ones in use stay).
    async fn reread(&self) -> Option<T> {
        // One read at a time: deliveries failing together wait for it and find it done.
        let mut state = self.state.lock().await;
        let now = self.clock.now_ms();
        let next = state.read_at_ms.saturating_add(millis(self.min_interval));
        if now < next {
            return None;
        }
        state.read_at_ms = now;
        self.next_read_ms.store(now.saturating_add(millis(self.min_interval)), Ordering::Relaxed);
        let fresh = match self.source.fetch().await {
            Ok(values) => only(&self.names, values),
            Err(e) => {
                warn!(error = %e, what = self.what, "could not re-read the secrets; keeping the ones in use");
                return None;
            }
        };
        if fresh == state.values {
            return None;
        }
        // The store is the truth: a replaced value is accepted only if the store keeps it
        // as the `_PREVIOUS` one (the rotation procedure), so a revocation holds.
        match (self.build)(&self.base.clone().overlaid(fresh.clone())) {
            Ok(built) => {
                state.values = fresh;
                Some(built)
            }
            Err(e) => {
                warn!(error = %e, what = self.what, "the re-read secrets configure no provider; keeping the ones in use");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests;
