//! Loading the AWS SDK configuration once per cold start, and the SDK's HTTP client.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::{BehaviorVersion, SdkConfig, timeout::TimeoutConfig};
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;

/// How long the SDK waits for a connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long one attempt of an SDK call may take before it is retried.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long one SDK call may take, retries included. The receiver makes at most
/// `receiver::MAX_SDK_CALLS` in a row for a delivery, so its Lambda `Timeout`
/// (template.yaml) must outlast that many of these: see the receiver's tests.
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(8);

/// Loads the SDK configuration from the environment (region, credentials, and
/// `AWS_ENDPOINT_URL_DYNAMODB` / `AWS_ENDPOINT_URL_SQS` for local emulators), with the
/// process's shared HTTPS client ([`sdk_http_client`]) and timeouts that fit a webhook
/// acknowledgement budget.
pub async fn load_sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(sdk_http_client())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(CONNECT_TIMEOUT)
                .operation_attempt_timeout(ATTEMPT_TIMEOUT)
                .operation_timeout(OPERATION_TIMEOUT)
                .build(),
        )
        .load()
        .await
}

/// The SDK's HTTP client: reqwest over the process's one rustls configuration
/// ([`crate::tls::client_config`]), so the SDK and the provider API clients share one
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
    let mut builder =
        reqwest::Client::builder().tls_backend_preconfigured((*crate::tls::client_config()).clone()).no_proxy();
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
