//! The receiver Lambda's handler: API Gateway (HTTP API) events in, HTTP responses out.
//! All logic lives in [`genhook::receiver`].

use genhook::receiver::Receiver;
use lambda_http::{Body, Error, Request, RequestExt, Response};

/// Handles one API Gateway request. `lambda_http` has already decoded a base64 body, so
/// the signature is checked over the exact bytes the provider sent.
pub async fn function_handler(receiver: &Receiver, event: Request) -> Result<Response<Body>, Error> {
    // The claim's lease ends with this invocation (Powertools' rule); 0 means unknown.
    let deadline_ms = event.lambda_context_ref().map(|c| c.deadline as i64).filter(|d| *d > 0);
    let response = receiver.handle(event, deadline_ms).await;
    Ok(response.map(Body::from))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use genhook::adapters::memory::{MemoryQueue, MemoryStore};
    use genhook::config::Env;
    use genhook::domain::clock::SystemClock;

    use super::*;

    // Signed with `whsec_fixture_secret_0001` (openssl), body base64-encoded as API Gateway sends it.
    const FIXTURE: &str = include_str!("../fixtures/apigw-katalo-completed.json");

    #[tokio::test]
    async fn accepts_the_api_gateway_fixture() {
        let inbox = Arc::new(MemoryQueue::default());
        let env = Env::from_pairs([("KATALO_WEBHOOK_SECRET", "whsec_fixture_secret_0001")]);
        let receiver =
            genhook::config::receiver(&env, Arc::new(MemoryStore::default()), inbox.clone(), Arc::new(SystemClock))
                .unwrap();
        let request = lambda_http::request::from_str(FIXTURE).unwrap();
        let response = function_handler(&receiver, request).await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(inbox.messages().len(), 1);
        assert!(inbox.messages()[0].body.contains("job_fixture_1"));
    }
}
