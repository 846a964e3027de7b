//! Loading the AWS SDK configuration once per cold start.

use std::time::Duration;

use aws_config::{BehaviorVersion, SdkConfig, timeout::TimeoutConfig};
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};

/// How long the SDK waits for a connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long one attempt of an SDK call may take before it is retried.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long one SDK call may take, retries included. The receiver makes at most
/// `receiver::MAX_SDK_CALLS` in a row for a delivery, so its Lambda `Timeout`
/// (template.yaml) must outlast that many of these: see the receiver's tests.
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(8);

/// Loads the SDK configuration from the environment (region, credentials, and
/// `AWS_ENDPOINT_URL_DYNAMODB` / `AWS_ENDPOINT_URL_SQS` for local emulators), with a
/// rustls+ring HTTPS client and timeouts that fit a webhook acknowledgement budget.
pub async fn load_sdk_config() -> SdkConfig {
    let http = aws_smithy_http_client::Builder::new().tls_provider(Provider::Rustls(CryptoMode::Ring)).build_https();
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(http)
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
