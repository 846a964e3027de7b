//! Where the functions' secrets come from when they are not plain environment variables:
//! one or more stored secrets, each a JSON object of string values named like the
//! variables they stand for (`{"KATALO_WEBHOOK_SECRET": "…", "KATALO_API_KEY": "…"}`).

use std::collections::BTreeMap;

use async_trait::async_trait;

/// Why the secrets could not be read. Never carries a secret value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// The store could not be reached, refused the call, or has no such secret.
    #[error("secret {id}: {reason}")]
    Unavailable {
        /// The secret's id (ARN or name).
        id: String,
        /// What went wrong.
        reason: String,
    },
    /// The secret is not a JSON object of strings.
    #[error("secret {id} must be a JSON object of string values: {reason}")]
    Malformed {
        /// The secret's id (ARN or name).
        id: String,
        /// What is wrong with it (never its content).
        reason: String,
    },
}

/// A source of named secret values.
#[async_trait]
pub trait SecretSource: Send + Sync {
    /// Reads every configured secret and merges their values (a later secret's name wins).
    async fn fetch(&self) -> Result<BTreeMap<String, String>, SecretError>;
}

/// The named values of one secret's text (a JSON object of strings); the error says what
/// is wrong without quoting the text.
pub fn parse_secret(id: &str, text: &str) -> Result<BTreeMap<String, String>, SecretError> {
    let malformed = |reason: String| SecretError::Malformed { id: id.to_string(), reason };
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| malformed(format!("not JSON (line {}, column {})", e.line(), e.column())))?;
    let serde_json::Value::Object(map) = value else { return Err(malformed("not a JSON object".into())) };
    map.into_iter()
        .map(|(k, v)| match v {
            serde_json::Value::String(s) => Ok((k, s)),
            _ => Err(malformed(format!("the value of {k} is not a string"))),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_is_a_json_object_of_strings_and_errors_never_quote_it() {
        let ok = parse_secret("arn:x", r#"{"A": "1", "B": ""}"#).unwrap();
        assert_eq!(ok.get("A").map(String::as_str), Some("1"));
        for bad in ["whsec_plain_text_secret", r#"["whsec_in_array"]"#, r#"{"A": 7, "B": "whsec_other"}"#] {
            let err = parse_secret("arn:x", bad).unwrap_err().to_string();
            assert!(err.contains("arn:x") && !err.contains("whsec"), "{err}");
        }
    }
}
