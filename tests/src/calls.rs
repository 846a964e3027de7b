//! Counting round trips: an SDK interceptor that logs every HTTP attempt by operation,
//! on DynamoDB and SQS clients built like production's.

use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::config::ConfigBag;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use genhook::adapters::aws::load_sdk_config;

use crate::aws::Aws;

/// Every HTTP attempt made through the clients it is attached to, as operation names
/// (`PutItem`, `SendMessage`...), in order; retries count again.
#[derive(Debug, Clone, Default)]
pub struct Calls(Arc<Mutex<Vec<String>>>);

impl Calls {
    /// The attempts since the last call, and starts counting afresh.
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

impl Intercept for Calls {
    fn name(&self) -> &'static str {
        "CountCalls"
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let op = cfg.load::<Metadata>().map_or_else(|| "?".to_string(), |m| m.name().to_string());
        self.0.lock().unwrap().push(op);
        Ok(())
    }
}

/// SDK clients on the emulators (see [`crate::aws::aws`]) that log every attempt.
pub async fn counted_aws() -> (Aws, Calls) {
    crate::aws::aws().await;
    let sdk = load_sdk_config().await;
    let calls = Calls::default();
    let ddb = aws_sdk_dynamodb::config::Builder::from(&sdk).interceptor(calls.clone()).build();
    let sqs = aws_sdk_sqs::config::Builder::from(&sdk).interceptor(calls.clone()).build();
    (Aws { ddb: aws_sdk_dynamodb::Client::from_conf(ddb), sqs: aws_sdk_sqs::Client::from_conf(sqs) }, calls)
}
