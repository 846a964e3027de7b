//! The lambda_runtime hello world: the baseline the functions' cold starts are measured
//! against (built with the same release profile; see scripts/perf/coldstart.py).

use lambda_runtime::{Error, LambdaEvent, run, service_fn, tracing};
use serde_json::{Value, json};

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing::init_default_subscriber();
    run(service_fn(|_event: LambdaEvent<Value>| async { Ok::<_, Error>(json!({"message": "hello"})) })).await
}
