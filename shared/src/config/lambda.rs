//! What every Lambda function's `main` does before its first invocation, in one place:
//! logs, the metrics recorder, the SDK configuration, then the stored secrets read while
//! the connections are warmed ([`super::warm_up`]).

use aws_config::SdkConfig;

use super::emf::Metrics;
use super::{ConfigError, Env, SecretEnv, logging, warm_up};
use crate::adapters::aws::lambda_sdk_config;

/// A function after its cold start: its configuration is read from `secrets.env`.
pub struct ColdStart {
    /// The metrics recorder; flush it after each invocation.
    pub metrics: Metrics,
    /// The SDK configuration every client is built from (one connection pool).
    pub sdk: SdkConfig,
    /// The process environment with the function's stored secrets laid over it.
    pub secrets: SecretEnv,
}

/// The cold start of `function`: logging and metrics from the process environment, the
/// SDK configuration, and the secrets named by `secret_names` read while the table and,
/// when `warm_queue` names a variable, that queue are warmed (bounded, never failing).
pub async fn cold_start(
    function: &'static str,
    warm_queue: Option<&str>,
    secret_names: Vec<&'static str>,
) -> Result<ColdStart, ConfigError> {
    let env = Env::process();
    logging::init(&env);
    let metrics = Metrics::install(&env, function)?;
    let sdk = lambda_sdk_config(&env);
    let warm_up = warm_up(&env, warm_queue)?;
    let (secrets, ()) = tokio::join!(SecretEnv::load(&sdk, env, secret_names), warm_up.run(&sdk));
    Ok(ColdStart { metrics, sdk, secrets: secrets? })
}
