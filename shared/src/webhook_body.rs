//! Reading a verified webhook body: a JSON object with some required text fields. The
//! error is each provider's `webhook::WebhookError`.

use serde_json::Value;

/// Why a verified body is not a usable webhook (answered with 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    /// Not JSON at all.
    #[error("body is not valid JSON: {0}")]
    NotJson(String),
    /// JSON, but not an object.
    #[error("body must be a JSON object")]
    NotObject,
    /// A required field is missing, empty or not a string.
    #[error("`{0}` must be a non-empty string")]
    MissingField(&'static str),
    /// A field is longer than genhook accepts.
    #[error("`{0}` is too long")]
    TooLong(&'static str),
}

/// The body as JSON, if it is an object.
pub fn json_object(raw: &[u8]) -> Result<Value, WebhookError> {
    let body: Value = serde_json::from_slice(raw).map_err(|e| WebhookError::NotJson(e.to_string()))?;
    if body.is_object() { Ok(body) } else { Err(WebhookError::NotObject) }
}

/// The trimmed text of `field`, which must be a non-empty string.
pub fn required_text<'a>(body: &'a Value, field: &'static str) -> Result<&'a str, WebhookError> {
    match body.get(field).and_then(Value::as_str).map(str::trim) {
        Some(s) if !s.is_empty() => Ok(s),
        _ => Err(WebhookError::MissingField(field)),
    }
}
