//! Normalized failures: the `failure_code` and `retryable` hint a `generation.failed`
//! event carries next to the provider's `failure` as sent.
//!
//! Providers describe failures loosely (Katalo's `failure` object is undocumented,
//! Replicate's `error` is free text, APIMP relays its upstream's message), so the code
//! is read from the job's state first and then from the words of the failure: its
//! `code`, `type`, `reason` and `message` fields, or the failure itself when it is text.
//! A `retryable` boolean the provider sets wins over the table. Each provider's doc
//! shows the mapping with examples (docs/providers/).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::domain::job::JobState;

/// The documented set of failure codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureCode {
    /// Refused by a safety filter or content policy.
    ContentPolicy,
    /// The request itself was wrong (bad parameters, unsupported input).
    InvalidInput,
    /// The job ran or waited too long (the provider's own expiry included).
    Timeout,
    /// Out of credits, quota or balance.
    Quota,
    /// The provider failed (internal error, capacity, a model crash).
    ProviderError,
    /// Someone canceled the job.
    Canceled,
    /// Nothing said why.
    Unknown,
}

impl FailureCode {
    /// Every code.
    pub const ALL: [Self; 7] = [
        Self::ContentPolicy,
        Self::InvalidInput,
        Self::Timeout,
        Self::Quota,
        Self::ProviderError,
        Self::Canceled,
        Self::Unknown,
    ];

    /// The word events carry.
    pub fn code(self) -> &'static str {
        match self {
            Self::ContentPolicy => "content_policy",
            Self::InvalidInput => "invalid_input",
            Self::Timeout => "timeout",
            Self::Quota => "quota",
            Self::ProviderError => "provider_error",
            Self::Canceled => "canceled",
            Self::Unknown => "unknown",
        }
    }

    /// Whether submitting the same job again may succeed, when the provider does not say.
    pub fn retryable(self) -> bool {
        matches!(self, Self::Timeout | Self::ProviderError)
    }
}

/// The words that map to each code, checked in this order (the first match wins), as
/// lowercase substrings of the failure's words.
const WORDS: &[(FailureCode, &[&str])] = &[
    (
        FailureCode::ContentPolicy,
        &[
            "nsfw",
            "safety",
            "content policy",
            "content_policy",
            "moderation",
            "sensitive",
            "inappropriate",
            "flagged",
            "prohibited",
            "violat",
        ],
    ),
    (FailureCode::Quota, &["quota", "insufficient", "balance", "credit", "billing", "payment", "spend limit"]),
    (FailureCode::Timeout, &["timeout", "timed out", "time out", "timed_out", "deadline", "expired"]),
    (
        FailureCode::InvalidInput,
        &[
            "invalid",
            "unsupported",
            "bad request",
            "bad_request",
            "validation",
            "malformed",
            "too large",
            "too long",
            "must be",
            "not allowed",
            "cannot be",
        ],
    ),
    (
        FailureCode::ProviderError,
        &[
            "internal",
            "server error",
            "unavailable",
            "out of memory",
            "cuda",
            "oom",
            "capacity",
            "overloaded",
            "crash",
            "upstream",
            "try again",
        ],
    ),
];

/// The longest failure text read for words (a failure is the provider's, unbounded).
const MAX_READ_CHARS: usize = 4096;

/// The code and the retry hint of a job that ended in `state` with `failure`.
pub fn classify(state: JobState, failure: Option<&Value>) -> (FailureCode, bool) {
    let code = match state {
        JobState::Canceled => FailureCode::Canceled,
        JobState::Expired => FailureCode::Timeout,
        _ => from_words(&words(failure)),
    };
    let said = failure.and_then(|f| f.get("retryable")).and_then(Value::as_bool);
    (code, said.unwrap_or(code.retryable()))
}

/// The failure's words, lowercased: a text failure itself, or an object's `code`,
/// `type`, `reason`, `error` and `message` (one level of nesting, e.g. `{"error":
/// {"message": …}}`), at most [`MAX_READ_CHARS`] characters.
fn words(failure: Option<&Value>) -> String {
    let mut out = String::new();
    let mut push = |v: &Value| {
        if let Some(s) = v.as_str() {
            out.push_str(s);
            out.push(' ');
        }
    };
    match failure {
        Some(Value::String(s)) => push(&Value::String(s.clone())),
        Some(Value::Object(map)) => {
            for field in ["code", "type", "reason", "error", "message", "detail"] {
                match map.get(field) {
                    Some(Value::Object(inner)) => {
                        for f in ["code", "type", "message"] {
                            if let Some(v) = inner.get(f) {
                                push(v);
                            }
                        }
                    }
                    Some(v) => push(v),
                    None => {}
                }
            }
        }
        _ => {}
    }
    out.chars().take(MAX_READ_CHARS).collect::<String>().to_lowercase()
}

fn from_words(words: &str) -> FailureCode {
    WORDS.iter().find(|(_, ws)| ws.iter().any(|w| words.contains(w))).map_or(FailureCode::Unknown, |(code, _)| *code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_state_then_the_words_decide() {
        let cases = [
            (JobState::Canceled, json!("anything"), FailureCode::Canceled, false),
            (JobState::Expired, Value::Null, FailureCode::Timeout, true),
            (JobState::Failed, json!({"code": "nsfw", "message": "blocked"}), FailureCode::ContentPolicy, false),
            (JobState::Failed, json!("NSFW content detected. Try running it again"), FailureCode::ContentPolicy, false),
            (JobState::Failed, json!("CUDA out of memory"), FailureCode::ProviderError, true),
            (JobState::Failed, json!({"error": {"message": "Insufficient balance"}}), FailureCode::Quota, false),
            (JobState::Failed, json!("Prediction interrupted; please retry (code: PA)"), FailureCode::Unknown, false),
            (
                JobState::Failed,
                json!({"code": "bad_input", "message": "invalid image size"}),
                FailureCode::InvalidInput,
                false,
            ),
            (JobState::Failed, json!({"code": "x", "retryable": true}), FailureCode::Unknown, true),
            (JobState::Failed, Value::Null, FailureCode::Unknown, false),
            (JobState::Failed, json!([1, 2]), FailureCode::Unknown, false),
        ];
        for (state, failure, code, retryable) in cases {
            assert_eq!(classify(state, Some(&failure)), (code, retryable), "{failure}");
        }
        assert_eq!(classify(JobState::Failed, None), (FailureCode::Unknown, false));
    }

    #[test]
    fn codes_are_the_serde_words_and_long_text_is_cut() {
        for code in FailureCode::ALL {
            assert_eq!(serde_json::to_value(code).unwrap(), code.code());
        }
        let long = json!(format!("{}nsfw", "x".repeat(MAX_READ_CHARS)));
        assert_eq!(classify(JobState::Failed, Some(&long)).0, FailureCode::Unknown);
    }
}
