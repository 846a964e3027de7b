//! The JSON answers the engine gives over HTTP (the receiver's and the output links'): a
//! body with `Content-Type: application/json`, and the error shape every refusal uses,
//! `{"error": <code>, "message": <why>}` (plus `"retryable"` where a sender's retry logic
//! reads it).

use http::{HeaderValue, Response, StatusCode, header};
use serde_json::json;

/// `body` (JSON text) with `status`.
pub fn json(status: StatusCode, body: impl Into<String>) -> Response<String> {
    let mut r = Response::new(body.into());
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// `{"error": code, "message": message}` with `status`.
pub fn error(status: StatusCode, code: &str, message: &str) -> Response<String> {
    json(status, json!({"error": code, "message": message}).to_string())
}

/// `{"error": code, "message": message, "retryable": retryable}` with `status`.
pub fn retryable_error(status: StatusCode, code: &str, message: &str, retryable: bool) -> Response<String> {
    json(status, json!({"error": code, "message": message, "retryable": retryable}).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_json_with_their_code_and_message() {
        let r = error(StatusCode::NOT_FOUND, "not_found", "no \"route\"");
        assert_eq!(r.status(), 404);
        assert_eq!(r.headers()[header::CONTENT_TYPE], "application/json");
        assert_eq!(r.body(), r#"{"error":"not_found","message":"no \"route\""}"#);
        let r = retryable_error(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "later", true);
        assert_eq!(r.body(), r#"{"error":"unavailable","message":"later","retryable":true}"#);
    }
}
