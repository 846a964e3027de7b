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
