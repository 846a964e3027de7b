//! Driving the real Lambda handlers: API Gateway v2 events for the receiver, and a small
//! event-source mapping (receive → handler → delete the successes) for the worker.

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage, SqsMessageAttribute};
use aws_sdk_sqs::types::MessageSystemAttributeName;
use base64::Engine;
use genhook::engine::receiver::Receiver;
use genhook::engine::worker::Worker;
use lambda_http::Body;
use lambda_runtime::{Context, LambdaEvent};
use serde_json::json;

use crate::aws::Aws;

/// An API Gateway HTTP API (payload 2.0) event as API Gateway sends it, from Katalo: the
/// body is base64-encoded when `base64` is set (as for non-text content types). `path`
/// may carry a query string.
pub fn apigw_event(
    method: &str,
    path: &str,
    body: &[u8],
    signature: Option<&str>,
    base64: bool,
) -> lambda_http::Request {
    let mut headers = vec![
        ("content-type".to_string(), "application/json".into()),
        ("user-agent".into(), "Katalo-Webhooks/1.0".into()),
    ];
    if let Some(sig) = signature {
        headers.push(("x-katalo-signature".into(), sig.into()));
    }
    apigw_event_with(method, path, body, &headers, base64)
}

/// [`apigw_event`] with these headers.
pub fn apigw_event_with(
    method: &str,
    path: &str,
    body: &[u8],
    headers: &[(String, String)],
    base64: bool,
) -> lambda_http::Request {
    let headers: serde_json::Map<String, serde_json::Value> =
        headers.iter().map(|(n, v)| (n.clone(), json!(v))).collect();
    let agent = headers.get("user-agent").and_then(|v| v.as_str()).unwrap_or("").to_string();
    let body_text = if base64 {
        base64::engine::general_purpose::STANDARD.encode(body)
    } else {
        String::from_utf8(body.to_vec()).expect("text bodies are UTF-8")
    };
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    let event = json!({
        "version": "2.0",
        "routeKey": format!("{method} {path}"),
        "rawPath": path,
        "rawQueryString": query,
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012", "apiId": "api1234", "domainName": "api1234.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "api1234", "requestId": "req-1", "routeKey": format!("{method} {path}"), "stage": "$default",
            "time": "23/Nov/2026:12:00:00 +0000", "timeEpoch": 1795435200000u64,
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "203.0.113.10", "userAgent": agent}
        },
        "body": body_text,
        "isBase64Encoded": base64
    });
    lambda_http::request::from_str(&event.to_string()).expect("valid API Gateway v2 event")
}

/// Calls the receiver's Lambda handler; returns the status and the JSON body.
pub async fn deliver(receiver: &Receiver, event: lambda_http::Request) -> (u16, serde_json::Value) {
    let (status, _, json) = deliver_full(receiver, event).await;
    (status, json)
}

/// Calls the receiver's Lambda handler; returns the status, the headers and the JSON body.
pub async fn deliver_full(
    receiver: &Receiver,
    event: lambda_http::Request,
) -> (u16, http::HeaderMap, serde_json::Value) {
    let resp = genhook_receiver::function_handler(receiver, event).await.expect("the handler never errors");
    let body = match resp.body() {
        Body::Text(t) => t.clone(),
        Body::Binary(b) => String::from_utf8(b.clone()).unwrap(),
        Body::Empty => String::new(),
        _ => String::new(),
    };
    (resp.status().as_u16(), resp.headers().clone(), serde_json::from_str(&body).unwrap_or(serde_json::Value::Null))
}

/// What one pump of the inbox did.
#[derive(Debug, Default)]
pub struct Pump {
    /// Records handed to the worker.
    pub received: usize,
    /// Message ids the worker reported failed.
    pub failed: Vec<String>,
}

/// One poll of the inbox, as Lambda's SQS event source does it: receive up to 10, invoke
/// the worker's handler, delete the records not reported as failures.
pub async fn pump(aws: &Aws, worker: &Worker, inbox: &str) -> Pump {
    let out = aws
        .sqs
        .receive_message()
        .queue_url(inbox)
        .max_number_of_messages(10)
        .message_system_attribute_names(MessageSystemAttributeName::All)
        .message_attribute_names("All")
        .send()
        .await
        .expect("receive from inbox");
    let messages = out.messages().to_vec();
    if messages.is_empty() {
        return Pump::default();
    }
    let records = messages
        .iter()
        .map(|m| {
            let mut r = SqsMessage::default();
            r.message_id = m.message_id.clone();
            r.receipt_handle = m.receipt_handle.clone();
            r.body = m.body.clone();
            r.attributes = m
                .attributes()
                .map(|a| a.iter().map(|(k, v)| (k.as_str().to_string(), v.clone())).collect())
                .unwrap_or_default();
            // The string message attributes, as Lambda hands them over.
            for (k, v) in m.message_attributes().into_iter().flatten() {
                let mut a = SqsMessageAttribute::default();
                a.string_value = v.string_value().map(str::to_string);
                a.data_type = Some(v.data_type().to_string());
                r.message_attributes.insert(k.clone(), a);
            }
            r.event_source = Some("aws:sqs".into());
            r
        })
        .collect();
    let mut event = SqsEvent::default();
    event.records = records;
    let response = genhook_worker::function_handler(worker, LambdaEvent::new(event, Context::default()))
        .await
        .expect("worker handler");
    let failed: Vec<String> = response.batch_item_failures.iter().map(|f| f.item_identifier.clone()).collect();
    for m in &messages {
        if !failed.contains(m.message_id.as_ref().unwrap()) {
            aws.sqs
                .delete_message()
                .queue_url(inbox)
                .receipt_handle(m.receipt_handle.clone().unwrap())
                .send()
                .await
                .expect("delete");
        }
    }
    Pump { received: messages.len(), failed }
}

/// Pumps until a poll finds the inbox empty or `max_polls` is reached, waiting for hidden
/// (retrying) messages to come back; returns every pump.
pub async fn pump_until_empty(aws: &Aws, worker: &Worker, inbox: &str, max_polls: usize) -> Vec<Pump> {
    let mut pumps = Vec::new();
    for _ in 0..max_polls {
        let p = pump(aws, worker, inbox).await;
        if p.received == 0 {
            if aws.depth(inbox).await == 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
            continue;
        }
        pumps.push(p);
    }
    pumps
}
