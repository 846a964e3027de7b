//! Replicate-shaped test data, shared by `genhook simulate --provider replicate` and
//! `genhook trigger --provider replicate`: prediction objects (the body of Replicate's
//! webhooks and of `GET /v1/predictions/{id}`) and Standard Webhooks ids.

use rand::Rng;
use serde_json::{Value, json};
use time::OffsetDateTime;

/// The model every simulated prediction runs.
pub const MODEL: &str = "genhook/simulated-image";
/// Its version id (64 hex digits, as Replicate's are).
pub const VERSION: &str = "5c7d5dc6dd8bf75c1acaa8565735e7986bc5b66206b55cca93cb72c9bf15ccaa";

/// A prediction at some moment of its life.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction<'a> {
    /// The prediction id.
    pub id: &'a str,
    /// `starting`, `processing`, `succeeded`, `failed` or `canceled`.
    pub status: &'a str,
    /// The model's output (`null` until it has some).
    pub output: Value,
    /// The error message of a failed prediction.
    pub error: Option<&'a str>,
    /// When it was created.
    pub created_at: OffsetDateTime,
    /// When it started running, once it has.
    pub started_at: Option<OffsetDateTime>,
    /// When it ended, once it has.
    pub completed_at: Option<OffsetDateTime>,
    /// The API base its `urls` point at (e.g. `https://api.replicate.com`).
    pub api_base: &'a str,
}

impl Prediction<'_> {
    /// The prediction object, with the fields Replicate documents.
    pub fn to_json(&self) -> Value {
        let rfc3339 = |t: OffsetDateTime| genhook::domain::clock::rfc3339(t);
        let seconds = |from: Option<OffsetDateTime>| {
            from.zip(self.completed_at).map(|(a, b)| ((b - a).as_seconds_f64() * 1e6).round() / 1e6)
        };
        let metrics = match (seconds(self.started_at), seconds(Some(self.created_at))) {
            (Some(predict), Some(total)) => json!({"predict_time": predict, "total_time": total}),
            _ => json!({}),
        };
        let get = format!("{}/v1/predictions/{}", self.api_base.trim_end_matches('/'), self.id);
        json!({
            "id": self.id,
            "model": MODEL,
            "version": VERSION,
            "input": {"prompt": "a lighthouse at dusk, simulated"},
            "logs": if self.started_at.is_some() { "Loading model...\nGenerating...\n" } else { "" },
            "output": self.output,
            "error": self.error,
            "status": self.status,
            "created_at": rfc3339(self.created_at),
            "started_at": self.started_at.map(rfc3339),
            "completed_at": self.completed_at.map(rfc3339),
            "data_removed": false,
            "metrics": metrics,
            "urls": {
                "get": get,
                "cancel": format!("{get}/cancel"),
                "web": format!("https://replicate.com/p/{}", self.id),
            },
        })
    }
}

/// A fresh prediction id: 26 characters of lowercase base32, like Replicate's.
pub fn prediction_id() -> String {
    random_chars(26, b"abcdefghijklmnopqrstuvwxyz234567")
}

/// A fresh Standard Webhooks message id (`msg_` and 27 letters and digits, like Svix's).
pub fn message_id() -> String {
    format!("msg_{}", random_chars(27, b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"))
}

fn random_chars(n: usize, alphabet: &[u8]) -> String {
    let mut rng = rand::rng();
    (0..n).map(|_| char::from(alphabet[rng.random_range(0..alphabet.len())])).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use genhook::domain::job::JobState;
    use genhook::providers::replicate::prediction::parse_prediction;
    use genhook::providers::replicate::webhook::ReplicateWebhook;
    use time::macros::datetime;

    #[test]
    fn predictions_read_back_as_replicate_predictions() {
        let t0 = datetime!(2026-11-23 12:00:00 UTC);
        let id = prediction_id();
        let p = Prediction {
            id: &id,
            status: "succeeded",
            output: json!(["https://replicate.delivery/sim/out-0.png"]),
            error: None,
            created_at: t0,
            started_at: Some(t0 + time::Duration::seconds(1)),
            completed_at: Some(t0 + time::Duration::seconds(5)),
            api_base: "https://api.replicate.com/",
        }
        .to_json();
        assert_eq!(p["urls"]["get"], format!("https://api.replicate.com/v1/predictions/{id}"));
        assert_eq!(p["metrics"], json!({"predict_time": 4.0, "total_time": 5.0}));
        let job = parse_prediction(&p, "x", t0).unwrap();
        assert_eq!((job.job_id.as_str(), job.state), (id.as_str(), JobState::Succeeded));
        assert_eq!(job.outputs[0].expires_at, Some(t0 + time::Duration::seconds(5) + time::Duration::HOUR));
        let hook = ReplicateWebhook::parse(p.to_string().as_bytes()).unwrap();
        assert!(hook.is_terminal());
    }

    #[test]
    fn ids_look_like_replicates() {
        let (p, m) = (prediction_id(), message_id());
        assert_eq!(p.len(), 26);
        assert!(p.bytes().all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b)), "{p}");
        assert!(m.starts_with("msg_") && m.len() == 31 && m[4..].bytes().all(|b| b.is_ascii_alphanumeric()), "{m}");
        assert_ne!(prediction_id(), p);
    }
}
