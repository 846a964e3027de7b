//! Reading a verified webhook body: a JSON object with some required text fields. The
//! error is each provider's `webhook::WebhookError`.

use serde_json::Value;

/// Why a verified body is not a usable webhook (answered with 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    /// Not UTF-8 text (JSON must be): the offset of the first byte that is not.
    #[error("body is not UTF-8 text: invalid byte at offset {0}")]
    NotUtf8(usize),
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
    // Checked first so the answer names the real fault: serde_json would report an
    // "invalid unicode code point" or an unexpected character somewhere in the text.
    let text = std::str::from_utf8(raw).map_err(|e| WebhookError::NotUtf8(e.valid_up_to()))?;
    let body: Value = serde_json::from_str(text).map_err(|e| WebhookError::NotJson(e.to_string()))?;
    if body.is_object() { Ok(body) } else { Err(WebhookError::NotObject) }
}

/// The trimmed text of `field`, which must be a non-empty string.
pub fn required_text<'a>(body: &'a Value, field: &'static str) -> Result<&'a str, WebhookError> {
    match body.get(field).and_then(Value::as_str).map(str::trim) {
        Some(s) if !s.is_empty() => Ok(s),
        _ => Err(WebhookError::MissingField(field)),
    }
}
