//! What the Lambda functions share, in one place: what every `main` does before its first
//! invocation (logs, the metrics recorder, the SDK configuration, then the stored secrets
//! read while the connections are warmed, [`super::warm_up`]) and, for the HTTP functions
//! (receiver, links; feature `lambda-http`), the request as the engine reads it, its API
//! Gateway stage cut ([`without_stage`]).

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

/// The request with its API Gateway stage cut from the front of the path (by the one
/// rule of [`crate::engine::stage::without_stage`]), so the receiver's and the links'
/// exact routes match behind every front end.
///
/// - REST API (payload 1.0): the event's `path` has no stage, but `lambda_http` puts it
///   back (`/Prod/webhooks/katalo`) unless `AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH` is set.
/// - HTTP API (payload 2.0): a named stage is part of `rawPath` (`/live/webhooks/katalo`);
///   the `$default` stage is not.
/// - Function URLs (stage `$default`) and ALB (no stage): the path is as sent.
///
/// A stage is cut only when it is the whole first segment, whether `lambda_http` added it
/// or not. (So a REST API stage must not be named after a route's first segment,
/// `webhooks` or `outputs`: `lambda_http` would not add it and it would be cut all the
/// same.) The query is kept as it is, and the path as sent travels with the request
/// ([`crate::engine::stage::SentPath`]) for signatures over it.
#[cfg(feature = "lambda-http")]
pub fn without_stage(mut event: lambda_http::Request) -> lambda_http::Request {
    use lambda_http::RequestExt;
    use lambda_http::http::Uri;
    use lambda_http::http::uri::PathAndQuery;
    use lambda_http::request::RequestContext;

    let stage = match event.request_context_ref() {
        Some(RequestContext::ApiGatewayV1(c)) => c.stage.clone(),
        Some(RequestContext::ApiGatewayV2(c)) => c.stage.clone(),
        _ => None,
    };
    let sent = event.uri().path().to_string();
    let path = crate::engine::stage::without_stage(&sent, stage.as_deref());
    if path.len() == sent.len() {
        return event;
    }
    let path_and_query = match event.uri().query() {
        Some(query) => format!("{path}?{query}"),
        None => path.to_string(),
    };
    // Both are parts of a valid URI, so this does not fail; if it did, the request would
    // keep its path and get the function's 404.
    let mut parts = event.uri().clone().into_parts();
    let Ok(path_and_query) = path_and_query.parse::<PathAndQuery>() else { return event };
    parts.path_and_query = Some(path_and_query);
    if let Ok(uri) = Uri::from_parts(parts) {
        *event.uri_mut() = uri;
        event.extensions_mut().insert(crate::engine::stage::SentPath(sent));
    }
    event
}
