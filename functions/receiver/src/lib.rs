//! The receiver Lambda's handler: HTTP events in (API Gateway HTTP API and REST API,
//! Lambda Function URLs, Application Load Balancers), HTTP responses out. All logic lives
//! in [`genhook::engine::receiver`]; this only adapts the event.

use lambda_http::request::RequestContext;
use lambda_http::{Body, Error, Request, RequestExt, Response};

use genhook::config::lambda::without_stage;
use genhook::domain::trace::Trace;
use genhook::engine::receiver::Receiver;

/// Handles one request. `lambda_http` has already decoded a base64 body (every front
/// end encodes binary bodies that way), so the signature is checked over the exact bytes
/// the provider sent.
pub async fn function_handler(receiver: &Receiver, event: Request) -> Result<Response<Body>, Error> {
    // The claim's lease ends with this invocation (Powertools' rule); 0 means unknown.
    // Hence the function's Timeout in template.yaml bounds how long a crashed
    // invocation keeps its delivery's retries waiting.
    let deadline_ms = event.lambda_context_ref().map(|c| c.deadline as i64).filter(|d| *d > 0);
    let mut event = without_stage(event);
    let trace = trace(&event);
    event.extensions_mut().insert(trace);
    let response = receiver.handle(event, deadline_ms).await;
    Ok(response.map(Body::from))
}

/// The delivery's front-end request id and X-Ray trace header, which the receiver puts
/// on its inbox message (an ALB has no request id; X-Ray is there when tracing is on).
fn trace(event: &Request) -> Trace {
    let request_id = match event.request_context_ref() {
        Some(RequestContext::ApiGatewayV1(c)) => c.request_id.as_deref(),
        Some(RequestContext::ApiGatewayV2(c)) => c.request_id.as_deref(),
        _ => None,
    };
    let header = event.lambda_context_ref().and_then(|c| c.xray_trace_id.as_deref());
    Trace::new(request_id, header)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use std::time::Duration;

    use genhook::adapters::aws::OPERATION_TIMEOUT;
    use genhook::adapters::memory::{MemoryQueue, MemoryStore};
    use genhook::domain::clock::SystemClock;
    use genhook::engine::receiver::{MAX_SDK_CALLS, ReceiverSettings};
    use genhook::engine::reload::SECRET_RELOAD_BUDGET;
    use genhook::ports::env::Env;
    use serde_json::Value;

    use super::*;

    // Each holds a Katalo webhook signed with `whsec_fixture_secret_0001` (python3 hmac,
    // checked with openssl), as its front end delivers it.
    /// API Gateway HTTP API, payload 2.0, `$default` stage; base64 body.
    const HTTP_API: &str = include_str!("../fixtures/http-api-katalo-completed.json");
    /// API Gateway REST API, payload 1.0, stage `Prod`; text body with non-ASCII UTF-8
    /// and a trailing newline, and both `headers` and `multiValueHeaders`.
    const REST_API: &str = include_str!("../fixtures/rest-api-katalo-completed.json");
    /// Lambda Function URL (the 2.0 shape); text body.
    const FUNCTION_URL: &str = include_str!("../fixtures/function-url-katalo-failed.json");
    /// Application Load Balancer with multi-value headers; base64 body.
    const ALB: &str = include_str!("../fixtures/alb-katalo-completed.json");
    /// HTTP API; a validly signed base64 body holding bytes that are not UTF-8.
    const NON_UTF8: &str = include_str!("../fixtures/http-api-katalo-non-utf8.json");

    struct Harness {
        receiver: Receiver,
        inbox: Arc<MemoryQueue>,
    }

    fn harness() -> Harness {
        let inbox = Arc::new(MemoryQueue::default());
        let env = Env::from_pairs([("KATALO_WEBHOOK_SECRET", "whsec_fixture_secret_0001")]);
        let receiver =
            genhook::config::receiver(&env, Arc::new(MemoryStore::default()), inbox.clone(), Arc::new(SystemClock))
                .unwrap();
        Harness { receiver, inbox }
    }

    /// The body the front end sent, decoded here without lambda_http.
    fn raw_body(fixture: &str) -> Vec<u8> {
        let event: Value = serde_json::from_str(fixture).unwrap();
        let body = event["body"].as_str().unwrap();
        if event["isBase64Encoded"].as_bool().unwrap() { STANDARD.decode(body).unwrap() } else { body.into() }
    }

    async fn send(h: &Harness, fixture: &str) -> (u16, Value) {
        let request = lambda_http::request::from_str(fixture).unwrap();
        let response = function_handler(&h.receiver, request).await.unwrap();
        let status = response.status().as_u16();
        let body = serde_json::from_slice(response.body()).unwrap();
        (status, body)
    }

    /// Accepted, and the one inbox message carries the body the front end sent.
    async fn accepts(fixture: &str, job_id: &str) {
        let h = harness();
        assert_eq!(send(&h, fixture).await, (200, serde_json::json!({"ok": true, "duplicate": false})));
        let messages = h.inbox.messages();
        assert_eq!(messages.len(), 1);
        let message: Value = serde_json::from_str(&messages[0].body).unwrap();
        assert_eq!(message["job_id"], job_id);
        let sent: Value = serde_json::from_slice(&raw_body(fixture)).unwrap();
        assert_eq!(message["payload"], sent);
        // A retry of the same delivery is a duplicate, not a second message.
        assert_eq!(send(&h, fixture).await.1["duplicate"], true);
        assert_eq!(h.inbox.messages().len(), 1);
    }

    #[tokio::test]
    async fn accepts_the_http_api_fixture() {
        accepts(HTTP_API, "job_fixture_1").await;
    }

    /// The inbox message's attribute `name`.
    fn attribute(h: &Harness, name: &str) -> Option<String> {
        h.inbox.messages()[0].attributes.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }

    #[tokio::test]
    async fn the_request_id_and_the_xray_header_travel_with_the_message() {
        for (fixture, id) in
            [(HTTP_API, "req-fixture-1"), (REST_API, "req-fixture-rest-2"), (FUNCTION_URL, "req-fixture-furl-3")]
        {
            let h = harness();
            let mut context = lambda_http::Context::default();
            context.xray_trace_id = Some("Root=1-6b04f040-161b13bf8aacb4e0ccf300fa;Sampled=1".into());
            let request = lambda_http::request::from_str(fixture).unwrap().with_lambda_context(context);
            assert_eq!(function_handler(&h.receiver, request).await.unwrap().status(), 200);
            assert_eq!(attribute(&h, "genhook_request_id").as_deref(), Some(id));
            assert_eq!(
                attribute(&h, "AWSTraceHeader").as_deref(),
                Some("Root=1-6b04f040-161b13bf8aacb4e0ccf300fa;Sampled=1")
            );
        }
        let h = harness();
        send(&h, ALB).await;
        assert_eq!(attribute(&h, "genhook_request_id"), None, "an ALB has no request id");
    }

    #[tokio::test]
    async fn accepts_the_rest_api_fixture_under_its_stage() {
        let request = lambda_http::request::from_str(REST_API).unwrap();
        assert_eq!(request.uri().path(), "/Prod/webhooks/katalo", "lambda_http puts the stage in the path");
        accepts(REST_API, "job_fixture_2").await;
        let h = harness();
        send(&h, REST_API).await;
        let message: Value = serde_json::from_str(&h.inbox.messages()[0].body).unwrap();
        assert_eq!(message["payload"]["reference"], "annonce-été-東京");
    }

    #[tokio::test]
    async fn accepts_the_function_url_fixture() {
        accepts(FUNCTION_URL, "job_fixture_3").await;
    }

    #[tokio::test]
    async fn accepts_the_alb_fixture() {
        let request = lambda_http::request::from_str(ALB).unwrap();
        let accept: Vec<_> = request.headers().get_all("accept").iter().collect();
        assert_eq!(accept, ["application/json", "text/plain"], "multi-value headers keep every value");
        accepts(ALB, "job_fixture_4").await;
    }

    #[tokio::test]
    async fn a_named_http_api_stage_is_cut_from_the_raw_path() {
        let staged = HTTP_API
            .replace(r#""rawPath": "/webhooks/katalo""#, r#""rawPath": "/live/webhooks/katalo""#)
            .replace(r#""stage": "$default""#, r#""stage": "live""#);
        assert_ne!(staged, HTTP_API);
        accepts(&staged, "job_fixture_1").await;
    }

    #[tokio::test]
    async fn cutting_the_stage_routes_nothing_new() {
        let h = harness();
        // A REST API request for a path under the route: still no route.
        let deeper = REST_API.replace(r#""path": "/webhooks/katalo""#, r#""path": "/webhooks/katalo/x""#);
        assert_eq!(send(&h, &deeper).await.0, 404);
        // The stage alone is the root: no route either.
        let root = REST_API.replace(r#""path": "/webhooks/katalo""#, r#""path": "/""#);
        assert_eq!(send(&h, &root).await.0, 404);
        // Under the $default stage a segment that looks like a stage is kept.
        let looks_staged =
            HTTP_API.replace(r#""rawPath": "/webhooks/katalo""#, r#""rawPath": "/Prod/webhooks/katalo""#);
        assert_eq!(send(&h, &looks_staged).await.0, 404);
        assert!(h.inbox.messages().is_empty());
    }

    #[tokio::test]
    async fn a_body_that_is_not_utf8_is_verified_then_refused() {
        let raw = raw_body(NON_UTF8);
        assert!(std::str::from_utf8(&raw).is_err(), "the fixture's body is not UTF-8");
        let h = harness();
        // The signature matches the exact bytes (else 401), then the body is refused.
        let (status, body) = send(&h, NON_UTF8).await;
        assert_eq!(status, 400);
        assert_eq!(body["error"], "invalid_payload");
        assert_eq!(body["message"], "body is not UTF-8 text: invalid byte at offset 83");
        // Signed over other bytes, the same body is refused as forged, before any parsing.
        let signature = serde_json::from_str::<Value>(NON_UTF8).unwrap()["headers"]["x-katalo-signature"]
            .as_str()
            .unwrap()
            .to_string();
        let forged = NON_UTF8.replace(&signature, &"0".repeat(64));
        let (status, body) = send(&h, &forged).await;
        assert_eq!((status, body["error"].as_str()), (401, Some("invalid_signature")));
        assert!(h.inbox.messages().is_empty());
    }

    /// `Timeout:` of `ReceiverFunction` in the SAM template, in seconds.
    fn template_timeout() -> u64 {
        let template = include_str!("../../../template.yaml");
        let (_, rest) = template.split_once("\n  ReceiverFunction:\n").unwrap();
        // The resource's lines, up to the next resource (indented by two spaces).
        let mut block = rest.lines().take_while(|l| l.is_empty() || l.starts_with("    "));
        let line = block.find_map(|l| l.strip_prefix("      Timeout:")).unwrap();
        line.trim().parse().unwrap()
    }

    #[test]
    fn the_timeout_outlasts_the_receivers_sdk_calls_and_not_api_gateway() {
        let timeout = Duration::from_secs(template_timeout());
        // At most one re-read of the secrets per delivery (the periodic one, or after a
        // failed check), cut at its budget, then the claim, the send and the mark.
        let worst = OPERATION_TIMEOUT * MAX_SDK_CALLS + SECRET_RELOAD_BUDGET;
        // The claim's lease ends at the deadline: an invocation may not be killed while
        // it can still send the message it claimed.
        assert!(timeout > worst, "Timeout {timeout:?} must outlast {worst:?} of SDK calls");
        // REST API integrations time out after 29 s by default, HTTP API ones after 30 s.
        assert!(timeout < Duration::from_secs(29), "Timeout {timeout:?} must end before API Gateway gives up");
        // Outside Lambda the deadline is unknown and the default lease stands in for it.
        assert!(ReceiverSettings::default().default_lease > worst);
    }

    #[tokio::test]
    async fn the_query_survives_the_cut() {
        let with_query = REST_API.replace(
            r#""multiValueQueryStringParameters": null"#,
            r#""multiValueQueryStringParameters": {"ref": ["a b"], "token": ["t1"]}"#,
        );
        let request = without_stage(lambda_http::request::from_str(&with_query).unwrap());
        assert_eq!(request.uri().path(), "/webhooks/katalo");
        let sent = request.extensions().get::<genhook::engine::stage::SentPath>();
        assert_eq!(sent.map(|p| p.0.as_str()), Some("/Prod/webhooks/katalo"), "the path as sent travels along");
        // lambda_http writes the parameters back in a map's order.
        let mut query: Vec<_> = request.uri().query().unwrap().split('&').collect();
        query.sort_unstable();
        assert_eq!(query, ["ref=a+b", "token=t1"]);
    }
}
