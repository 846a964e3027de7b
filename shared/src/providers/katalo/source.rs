//! Katalo's receiving side: `POST /webhooks/katalo`, `x-katalo-signature` (hex
//! HMAC-SHA256 of the raw body, current or previous secret), deduped on job and event type.

use crate::domain::dedupe::delivery_key;
use crate::domain::limits::{MAX_ID_BYTES, MAX_KIND_BYTES, attribute_value, check_lengths};
use crate::ports::provider::{Delivery, Enqueue, Intake, Refusal, RouteMatch, WebhookSource};
use crate::toolkit::auth::hmac::HmacSecrets;

use super::message::KataloWebhookMessage;
use super::webhook::KataloWebhook;
use super::{PROVIDER, ROUTE, SIGNATURE_HEADER};

/// Katalo webhooks signed with these secrets.
#[derive(Debug, Clone)]
pub struct KataloSource {
    secrets: HmacSecrets,
}

impl KataloSource {
    /// Deliveries must carry a signature by one of `secrets`.
    pub fn new(secrets: HmacSecrets) -> Self {
        Self { secrets }
    }
}

/// Katalo's one route.
pub(super) fn route(path: &str) -> RouteMatch {
    if path == ROUTE { RouteMatch::Mine } else { RouteMatch::NotMine }
}

impl WebhookSource for KataloSource {
    fn provider(&self) -> &'static str {
        PROVIDER
    }

    fn route(&self, path: &str) -> RouteMatch {
        route(path)
    }

    /// What the event takes from the webhook when the job API lacks it
    /// (`reconcile::katalo_event`).
    fn hints(&self) -> &'static [&'static str] {
        &["failure", "reference", "source_asset_id", "metadata"]
    }

    fn intake(&self, d: &Delivery<'_>) -> Result<Intake, Refusal> {
        // Verify over the exact raw bytes before parsing anything (lambda_http has already
        // undone API Gateway's base64 encoding).
        let signature = d.headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok());
        let mac = self.secrets.verify_hex(d.body, signature).map_err(|e| Refusal::Unauthenticated {
            code: "invalid_signature",
            message: "signature verification failed",
            what: "signature",
            detail: e.to_string(),
        })?;
        let hook = KataloWebhook::parse(d.body).map_err(|e| Refusal::Invalid(e.to_string()))?;
        check_lengths(&[("job_id", &hook.job_id, MAX_ID_BYTES), ("event_type", &hook.event_type, MAX_KIND_BYTES)])
            .map_err(Refusal::Invalid)?;
        let key = delivery_key(PROVIDER, &hook.job_id, &hook.event_type);
        let message =
            KataloWebhookMessage::received_json(&key, &hook.job_id, &hook.event_type, d.received_at, hook.text)
                .map_err(|e| Refusal::Invalid(format!("the inbox message could not be written: {e}")))?;
        Ok(Intake::Enqueue(Enqueue {
            key,
            message,
            attributes: vec![
                ("provider".into(), PROVIDER.into()),
                ("event_type".into(), attribute_value(&hook.event_type)),
            ],
            // Katalo signs the body alone, so every retry of it has this MAC.
            body_mac: Some(mac.0),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderMap;
    use serde_json::json;
    use time::macros::datetime;

    fn delivery<'a>(headers: &'a HeaderMap, body: &'a [u8]) -> Delivery<'a> {
        Delivery {
            path: ROUTE,
            sent_path: ROUTE,
            query: None,
            headers,
            body,
            now: datetime!(2026-11-23 12:00:00 UTC),
            received_at: "2026-11-23T12:00:00Z",
        }
    }

    #[test]
    fn signed_deliveries_become_keyed_messages() {
        let source = KataloSource::new(HmacSecrets::new("s", None));
        let body = json!({"job_id": "j1", "event_type": "generation.completed"}).to_string();
        let mut headers = HeaderMap::new();
        headers.insert(SIGNATURE_HEADER, crate::toolkit::auth::hmac::sign_hex(b"s", body.as_bytes()).parse().unwrap());
        let Ok(Intake::Enqueue(e)) = source.intake(&delivery(&headers, body.as_bytes())) else { panic!("accepted") };
        assert_eq!(e.key, "katalo#j1#on:generation.completed");
        let m: serde_json::Value = serde_json::from_str(&e.message).unwrap();
        assert_eq!(
            (m["type"].as_str(), m["received_at"].as_str()),
            (Some("katalo.webhook"), Some("2026-11-23T12:00:00Z"))
        );
        assert!(matches!(
            source.intake(&delivery(&HeaderMap::new(), body.as_bytes())),
            Err(Refusal::Unauthenticated { code: "invalid_signature", .. })
        ));
        assert_eq!((route(ROUTE), route("/webhooks/katalo/x")), (RouteMatch::Mine, RouteMatch::NotMine));
    }

    /// A signed event type that spells one of genhook's own kinds never claims the key the
    /// job is published under, nor a refresh's: the real `generation.completed` that
    /// follows is still published.
    #[test]
    fn an_event_type_never_claims_a_key_of_another_kind() {
        let source = KataloSource::new(HmacSecrets::new("s", None));
        let own = [
            crate::providers::katalo::message::publish_key("j1"),
            crate::domain::refresh::refresh_key("katalo", "j1", "r1"),
        ];
        for (job_id, event_type) in [("j1", "job"), ("j1", "refresh:r1"), ("j1#job", "x"), ("j1", "x#job")] {
            let body = json!({"job_id": job_id, "event_type": event_type}).to_string();
            let mut headers = HeaderMap::new();
            headers
                .insert(SIGNATURE_HEADER, crate::toolkit::auth::hmac::sign_hex(b"s", body.as_bytes()).parse().unwrap());
            let Ok(Intake::Enqueue(e)) = source.intake(&delivery(&headers, body.as_bytes())) else {
                panic!("accepted")
            };
            assert!(!own.contains(&e.key), "{event_type:?} claimed {}", e.key);
        }
    }
}
