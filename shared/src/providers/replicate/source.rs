//! Replicate's receiving side: `POST /webhooks/replicate`, signed per Standard Webhooks
//! (current and previous `whsec_` secrets, ±5 minutes), deduped on prediction id and
//! status.

use crate::domain::dedupe::delivery_key;
use crate::domain::limits::{MAX_KIND_BYTES, attribute_value, check_lengths};
use crate::ports::provider::{Delivery, Enqueue, Intake, Refusal, RouteMatch, WebhookSource};
use crate::toolkit::auth::standard_webhooks::Secrets;

use super::message::ReplicateWebhookMessage;
use super::webhook::{MAX_ID_BYTES, ReplicateWebhook};
use super::{PROVIDER, ROUTE};

/// Replicate webhooks signed with these secrets.
#[derive(Debug, Clone)]
pub struct ReplicateSource {
    secrets: Secrets,
}

impl ReplicateSource {
    /// Deliveries must carry a `v1` signature by one of `secrets`.
    pub fn new(secrets: Secrets) -> Self {
        Self { secrets }
    }
}

/// Replicate's one route.
pub(super) fn route(path: &str) -> RouteMatch {
    if path == ROUTE { RouteMatch::Mine } else { RouteMatch::NotMine }
}

impl WebhookSource for ReplicateSource {
    fn provider(&self) -> &'static str {
        PROVIDER
    }

    fn route(&self, path: &str) -> RouteMatch {
        route(path)
    }

    fn intake(&self, d: &Delivery<'_>) -> Result<Intake, Refusal> {
        let verified = self.secrets.verify(d.headers, d.body, d.now).map_err(|e| Refusal::Unauthenticated {
            code: "invalid_signature",
            message: "signature verification failed",
            what: "signature",
            detail: e.to_string(),
        })?;
        let hook = ReplicateWebhook::parse(d.body).map_err(|e| Refusal::Invalid(e.to_string()))?;
        check_lengths(&[("id", &hook.prediction_id, MAX_ID_BYTES), ("status", &hook.status, MAX_KIND_BYTES)])
            .map_err(Refusal::Invalid)?;
        let key = delivery_key(PROVIDER, &hook.prediction_id, &hook.status);
        let message = ReplicateWebhookMessage {
            dedupe_key: key.clone(),
            prediction_id: hook.prediction_id,
            status: hook.status.clone(),
            webhook_id: verified.id,
            received_at: d.received_at.to_string(),
            payload: hook.body,
            thin: None,
        };
        Ok(Intake::Enqueue(Enqueue {
            key,
            message: message.to_json(),
            attributes: vec![("provider".into(), PROVIDER.into()), ("status".into(), attribute_value(&hook.status))],
            body_mac: None,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::toolkit::auth::standard_webhooks::Secret;
    use http::HeaderMap;
    use time::macros::datetime;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    fn deliver(source: &ReplicateSource, body: &[u8], signed_at: i64, secret: &str) -> Result<Intake, Refusal> {
        let mut headers = HeaderMap::new();
        for (name, value) in Secret::parse(secret).unwrap().headers("msg_1", signed_at, body) {
            headers.insert(name, value.parse().unwrap());
        }
        let now = datetime!(2026-11-23 12:00:00 UTC);
        source.intake(&Delivery {
            path: ROUTE,
            sent_path: ROUTE,
            query: None,
            headers: &headers,
            body,
            now,
            received_at: "2026-11-23T12:00:00Z",
        })
    }

    #[test]
    fn signed_deliveries_become_keyed_messages() {
        let source = ReplicateSource::new(Secrets::parse([SECRET]).unwrap());
        let now = datetime!(2026-11-23 12:00:00 UTC).unix_timestamp();
        let body = br#"{"id":"p1","status":"succeeded","output":["https://replicate.delivery/a/out-0.png"]}"#;
        let Ok(Intake::Enqueue(e)) = deliver(&source, body, now, SECRET) else { panic!("accepted") };
        assert_eq!(e.key, "replicate#p1#on:succeeded");
        let m: serde_json::Value = serde_json::from_str(&e.message).unwrap();
        assert_eq!((m["type"].as_str(), m["webhook_id"].as_str()), (Some("replicate.webhook"), Some("msg_1")));
        // Another secret, a replay from 6 minutes ago, a body without an id.
        let other = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
        assert!(matches!(deliver(&source, body, now, other), Err(Refusal::Unauthenticated { .. })));
        assert!(matches!(deliver(&source, body, now - 360, SECRET), Err(Refusal::Unauthenticated { .. })));
        assert!(matches!(deliver(&source, br#"{"status":"succeeded"}"#, now, SECRET), Err(Refusal::Invalid(_))));
    }
}
