//! The AWS SDK configuration, read once per cold start (the Lambdas' from their
//! environment only, the CLI's and the tests' with aws-config's loader), the SDK's HTTP
//! client, and the Lambdas' cold-start connection warm-up.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig, timeout::TimeoutConfig};
use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_smithy_async::time::SharedTimeSource;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use aws_types::service_config::{LoadServiceConfig, ServiceConfigKey};

use crate::ports::env::Env;

/// How long the SDK waits for a connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long one attempt of an SDK call may take before it is retried.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long one SDK call may take, retries included. The receiver makes at most
/// `receiver::MAX_SDK_CALLS` in a row for a delivery, so its Lambda `Timeout`
/// (template.yaml) must outlast that many of these: see the receiver's tests.
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(8);

/// Loads the SDK configuration from the environment (region, credentials, and
/// `AWS_ENDPOINT_URL_DYNAMODB` / `AWS_ENDPOINT_URL_SQS` for local emulators) with
/// aws-config's loader (profiles, the full credential chain: the CLI and the tests), with
/// genhook's HTTPS client ([`sdk_http_client`]) and timeouts that fit a webhook
/// acknowledgement budget.
pub async fn load_sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(sdk_http_client())
        .timeout_config(timeouts())
        .load()
        .await
}

/// The Lambda functions' SDK configuration, read from `env` without aws-config's
/// loader (no profile files, no credential chain: its code is not even in the binaries):
/// region `AWS_REGION` (else `AWS_DEFAULT_REGION`); the credentials Lambda puts in
/// `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` / `AWS_SESSION_TOKEN`; endpoints from
/// `AWS_ENDPOINT_URL_<SERVICE>` (e.g. `AWS_ENDPOINT_URL_DYNAMODB`, `…_SECRETS_MANAGER`)
/// and `AWS_ENDPOINT_URL`, unless `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS` is `true`;
/// `AWS_USE_FIPS_ENDPOINT`, `AWS_USE_DUALSTACK_ENDPOINT` and `AWS_MAX_ATTEMPTS`; the same
/// HTTP client and timeouts as [`load_sdk_config`].
pub fn lambda_sdk_config(env: &Env) -> SdkConfig {
    let flag = |name: &str| env.optional(name).is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    let region = env.optional("AWS_REGION").or_else(|| env.optional("AWS_DEFAULT_REGION"));
    let mut builder = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(region.map(|r| Region::new(r.trim().to_string())))
        .http_client(sdk_http_client())
        .timeout_config(timeouts())
        .time_source(SharedTimeSource::default())
        .use_fips(flag("AWS_USE_FIPS_ENDPOINT"))
        .use_dual_stack(flag("AWS_USE_DUALSTACK_ENDPOINT"));
    // Lambda's credentials stay the same for the execution environment's life.
    if let (Some(key), Some(secret)) = (env.optional("AWS_ACCESS_KEY_ID"), env.optional("AWS_SECRET_ACCESS_KEY")) {
        let token = env.optional("AWS_SESSION_TOKEN");
        let credentials = Credentials::new(key, secret, token, None, "Environment");
        builder = builder.credentials_provider(SharedCredentialsProvider::new(credentials));
    }
    if let Some(sleep) = aws_smithy_async::rt::sleep::default_async_sleep() {
        builder = builder.sleep_impl(sleep);
    }
    if let Some(attempts) = env.optional("AWS_MAX_ATTEMPTS").and_then(|n| n.trim().parse::<u32>().ok()) {
        builder = builder.retry_config(RetryConfig::standard().with_max_attempts(attempts.max(1)));
    }
    if !flag("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS") {
        builder.set_endpoint_url(env.optional("AWS_ENDPOINT_URL"));
        builder = builder.service_config(EndpointVariables(env.clone()));
    }
    builder.build()
}

/// `AWS_ENDPOINT_URL_<SERVICE ID>` (upper case, spaces as `_`), as aws-config reads it.
#[derive(Debug)]
struct EndpointVariables(Env);

impl LoadServiceConfig for EndpointVariables {
    fn load_config(&self, key: ServiceConfigKey<'_>) -> Option<String> {
        let service = key.service_id().to_ascii_uppercase().replace(' ', "_");
        self.0.optional(&format!("{}_{service}", key.env()))
    }
}

fn timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .operation_timeout(OPERATION_TIMEOUT)
        .build()
}

/// The SDK's HTTP client: reqwest over the process's one rustls configuration
/// ([`crate::toolkit::http::tls::client_config`]), so the SDK and the provider API clients share one
/// HTTP stack and one trust store. One connection pool per distinct timeout settings
/// (in practice one), shared by every SDK client made from the configuration.
pub fn sdk_http_client() -> SharedHttpClient {
    SharedHttpClient::new(ReqwestHttpClient::default())
}

#[derive(Debug, Default)]
struct ReqwestHttpClient {
    /// Connectors by (connect timeout, read timeout).
    connectors: Mutex<Vec<(Timeouts, SharedHttpConnector)>>,
}

type Timeouts = (Option<Duration>, Option<Duration>);

impl HttpClient for ReqwestHttpClient {
    fn http_connector(&self, settings: &HttpConnectorSettings, _: &RuntimeComponents) -> SharedHttpConnector {
        let key = (settings.connect_timeout(), settings.read_timeout());
        let mut connectors = self.connectors.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((_, connector)) = connectors.iter().find(|(k, _)| *k == key) {
            return connector.clone();
        }
        let connector = SharedHttpConnector::new(ReqwestConnector { client: Arc::new(reqwest_client(key)) });
        connectors.push((key, connector.clone()));
        connector
    }
}

/// The SDK never goes through a proxy (as before: the environment's proxy variables
/// apply to the provider API clients only).
fn reqwest_client((connect, read): Timeouts) -> reqwest::Client {
    let mut builder = reqwest::Client::builder()
        .tls_backend_preconfigured((*crate::toolkit::http::tls::client_config()).clone())
        .no_proxy();
    if let Some(connect) = connect {
        builder = builder.connect_timeout(connect);
    }
    if let Some(read) = read {
        builder = builder.read_timeout(read);
    }
    builder.build().expect("the SDK's HTTP client configuration is static and valid")
}

#[derive(Debug)]
struct ReqwestConnector {
    client: Arc<reqwest::Client>,
}

impl HttpConnector for ReqwestConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let client = self.client.clone();
        HttpConnectorFuture::new(async move { send(&client, request).await })
    }
}

/// Sends one SDK request (its body is in memory: genhook streams none) and reads the whole
/// answer. Time-outs are reported as such and every other failure as an I/O error, which
/// the SDK's retry policy treats as transient.
async fn send(client: &reqwest::Client, request: HttpRequest) -> Result<HttpResponse, ConnectorError> {
    let request = request.try_into_http1x().map_err(|e| ConnectorError::user(e.into()))?;
    let (parts, body) = request.into_parts();
    let Some(bytes) = body.bytes() else {
        return Err(ConnectorError::user("a streaming request body is not supported".into()));
    };
    let request = http::Request::from_parts(parts, bytes::Bytes::copy_from_slice(bytes));
    let request = reqwest::Request::try_from(request).map_err(|e| ConnectorError::user(e.into()))?;
    let response = client.execute(request).await.map_err(connector_error)?;
    let mut answer = http::Response::builder().status(response.status()).version(response.version());
    if let Some(headers) = answer.headers_mut() {
        *headers = response.headers().clone();
    }
    let body = response.bytes().await.map_err(connector_error)?;
    let answer = answer.body(SdkBody::from(body)).map_err(|e| ConnectorError::other(e.into(), None))?;
    HttpResponse::try_from(answer).map_err(|e| ConnectorError::other(e.into(), None))
}

fn connector_error(e: reqwest::Error) -> ConnectorError {
    if e.is_timeout() {
        ConnectorError::timeout(e.into())
    } else if e.is_builder() {
        ConnectorError::user(e.into())
    } else {
        ConnectorError::io(e.into())
    }
}

/// The calls a Lambda function makes during its cold start so that its first invocation
/// finds its connections to DynamoDB and SQS open (TCP and TLS done): a `GetItem` of a key
/// no record has, and a `GetQueueAttributes` that asks for no attribute. They run at once,
/// bounded by `budget` in all; a failure or the budget running out is logged and ignored,
/// never failing the cold start. Built by [`crate::config::warm_up`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WarmUp {
    /// The dedupe table to read from.
    pub table: Option<String>,
    /// A queue the function may read the attributes of.
    pub queue_url: Option<String>,
    /// How long the calls may take in all; zero turns them off.
    pub budget: Duration,
}

/// The partition key the warm-up reads: no record has it.
const WARM_UP_KEY: &str = "genhook#warm-up";

impl WarmUp {
    /// Makes the calls with `sdk`'s clients (whose HTTP client, and so whose connection
    /// pool, the function's own clients share).
    pub async fn run(&self, sdk: &SdkConfig) {
        if self.budget.is_zero() || (self.table.is_none() && self.queue_url.is_none()) {
            return;
        }
        let started = std::time::Instant::now();
        let table = async {
            let Some(table) = &self.table else { return };
            let key = aws_sdk_dynamodb::types::AttributeValue::S(WARM_UP_KEY.into());
            let call = aws_sdk_dynamodb::Client::new(sdk).get_item().table_name(table).key("pk", key);
            match call.send().await {
                Ok(_) => tracing::debug!(elapsed_ms = started.elapsed().as_millis(), "DynamoDB connection opened"),
                Err(e) => {
                    tracing::warn!(error = %aws_sdk_dynamodb::error::DisplayErrorContext(&e), "warm-up: DynamoDB GetItem failed (ignored)")
                }
            }
        };
        let queue = async {
            let Some(queue_url) = &self.queue_url else { return };
            match aws_sdk_sqs::Client::new(sdk).get_queue_attributes().queue_url(queue_url).send().await {
                Ok(_) => tracing::debug!(elapsed_ms = started.elapsed().as_millis(), "SQS connection opened"),
                Err(e) => {
                    tracing::warn!(error = %aws_sdk_sqs::error::DisplayErrorContext(&e), "warm-up: SQS GetQueueAttributes failed (ignored)")
                }
            }
        };
        if tokio::time::timeout(self.budget, futures_util::future::join(table, queue)).await.is_err() {
            tracing::warn!(budget_ms = self.budget.as_millis(), "warm-up: cut at its budget (ignored)");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env {
        Env::from_pairs(pairs.iter().copied())
    }

    fn key(service_id: &str) -> ServiceConfigKey<'_> {
        ServiceConfigKey::builder()
            .service_id(service_id)
            .env("AWS_ENDPOINT_URL")
            .profile("endpoint_url")
            .build()
            .unwrap()
    }

    #[test]
    fn the_lambda_config_reads_the_standard_variables() {
        let sdk = lambda_sdk_config(&env(&[
            ("AWS_DEFAULT_REGION", "eu-west-1"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:4566"),
            ("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:8000"),
            ("AWS_ENDPOINT_URL_SECRETS_MANAGER", "http://127.0.0.1:5000"),
            ("AWS_MAX_ATTEMPTS", "5"),
        ]));
        assert_eq!(sdk.region().map(|r| r.as_ref()), Some("eu-west-1"));
        assert_eq!(sdk.endpoint_url(), Some("http://127.0.0.1:4566"));
        assert_eq!(sdk.retry_config().map(|r| r.max_attempts()), Some(5));
        let services = sdk.service_config().unwrap();
        assert_eq!(services.load_config(key("DynamoDB")).as_deref(), Some("http://127.0.0.1:8000"));
        assert_eq!(services.load_config(key("Secrets Manager")).as_deref(), Some("http://127.0.0.1:5000"));
        assert_eq!(services.load_config(key("SQS")), None);
        assert!(sdk.sleep_impl().is_some() && sdk.http_client().is_some());
        assert!(sdk.credentials_provider().is_none(), "no key, no provider");

        let ignored = lambda_sdk_config(&env(&[
            ("AWS_REGION", "us-east-1"),
            ("AWS_DEFAULT_REGION", "eu-west-1"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:4566"),
            ("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true"),
        ]));
        assert_eq!(ignored.region().map(|r| r.as_ref()), Some("us-east-1"));
        assert_eq!(ignored.endpoint_url(), None);
        assert!(ignored.service_config().is_none());
    }

    #[tokio::test]
    async fn the_warm_up_is_bounded_and_never_fails() {
        // A port nothing listens on: every attempt fails at once, and is only logged.
        let sdk = lambda_sdk_config(&env(&[
            ("AWS_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
            ("AWS_SECRET_ACCESS_KEY", "example"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:9"),
        ]));
        let budget = Duration::from_millis(300);
        let warm_up =
            WarmUp { table: Some("t".into()), queue_url: Some("http://127.0.0.1:9/123456789012/q".into()), budget };
        let started = std::time::Instant::now();
        warm_up.run(&sdk).await;
        assert!(started.elapsed() < budget + Duration::from_millis(200), "{:?}", started.elapsed());
        // An endpoint that takes the connection but never answers: the budget cuts it.
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", silent.local_addr().unwrap());
        let sdk = lambda_sdk_config(&env(&[
            ("AWS_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
            ("AWS_SECRET_ACCESS_KEY", "example"),
            ("AWS_ENDPOINT_URL", &url),
        ]));
        let started = std::time::Instant::now();
        warm_up.run(&sdk).await;
        let took = started.elapsed();
        assert!(took >= budget && took < budget + Duration::from_millis(200), "{took:?}");
        let off = WarmUp { budget: Duration::ZERO, ..warm_up };
        let started = std::time::Instant::now();
        off.run(&sdk).await;
        assert!(started.elapsed() < Duration::from_millis(50));
    }
}
