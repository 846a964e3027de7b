//! The receiver: verify → claim the dedupe key → enqueue → acknowledge.
//!
//! HTTP-agnostic: the Lambda binary (and any local server) hands over its
//! [`http::Request`] (any body that is raw bytes) and serves the [`http::Response<String>`] this returns. A
//! delivery is acknowledged with 2xx only once its event is in the inbox; every failure
//! leaves the key free (or its claim expiring) so the provider's retry can succeed.

use std::sync::Arc;
use std::time::Duration;

use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use serde_json::{Value, json};
use tracing::{info, warn};

use crate::clock::{Clock, rfc3339};
use crate::domain::dedupe::{Claim, ClaimOutcome, RecordStatus, body_sha256, dedupe_key};
use crate::domain::inbox::{InboxMessage, KataloWebhookMessage};
use crate::ports::{DedupeStore, OutgoingMessage, Queue};
use crate::providers::katalo::{self, webhook::KataloWebhook};
use crate::signature::HmacSecrets;

/// The Katalo webhook route.
pub const KATALO_ROUTE: &str = "/webhooks/katalo";

/// Receiver settings.
#[derive(Debug, Clone)]
pub struct ReceiverSettings {
    /// Katalo signing secrets (current and previous).
    pub katalo_secrets: HmacSecrets,
    /// Bodies larger than this are refused with 413.
    pub max_body_bytes: usize,
    /// How long a dedupe record lives (the TTL attribute and the logical expiry).
    pub dedupe_ttl: Duration,
    /// Claim lease when the invocation deadline is unknown.
    pub default_lease: Duration,
}

impl ReceiverSettings {
    /// Defaults: 256 KiB bodies, 7-day dedupe records, 30 s lease fallback.
    pub fn new(katalo_secrets: HmacSecrets) -> Self {
        Self {
            katalo_secrets,
            max_body_bytes: 256 * 1024,
            dedupe_ttl: Duration::from_secs(7 * 24 * 60 * 60),
            default_lease: Duration::from_secs(30),
        }
    }
}

/// The receiver service. Build it once per cold start and share it across invocations.
pub struct Receiver {
    store: Arc<dyn DedupeStore>,
    inbox: Arc<dyn Queue>,
    settings: ReceiverSettings,
    clock: Arc<dyn Clock>,
}

/// How an accepted delivery turned out (for the 2xx body and for tests).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Accepted {
    New,
    Duplicate,
}

impl Receiver {
    /// A receiver over the given ports.
    pub fn new(
        store: Arc<dyn DedupeStore>,
        inbox: Arc<dyn Queue>,
        settings: ReceiverSettings,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self { store, inbox, settings, clock }
    }

    /// Handles one HTTP request. `deadline_ms` is the invocation deadline (epoch ms),
    /// which bounds the claim's lease; `None` or a past value falls back to the default.
    pub async fn handle<B: AsRef<[u8]>>(&self, req: Request<B>, deadline_ms: Option<i64>) -> Response<String> {
        let path = req.uri().path();
        let path = if path.len() > 1 { path.trim_end_matches('/') } else { path };
        match path {
            KATALO_ROUTE if req.method() == Method::POST => self.katalo(req, deadline_ms).await,
            KATALO_ROUTE => {
                let mut r = reply(
                    StatusCode::METHOD_NOT_ALLOWED,
                    json!({"error": "method_not_allowed", "message": "use POST"}),
                );
                r.headers_mut().insert(header::ALLOW, HeaderValue::from_static("POST"));
                r
            }
            _ => {
                reply(StatusCode::NOT_FOUND, json!({"error": "not_found", "message": "no webhook route at this path"}))
            }
        }
    }

    async fn katalo<B: AsRef<[u8]>>(&self, req: Request<B>, deadline_ms: Option<i64>) -> Response<String> {
        let body = req.body().as_ref();
        if body.len() > self.settings.max_body_bytes {
            warn!(provider = katalo::PROVIDER, bytes = body.len(), "rejected: body too large");
            return reply(
                StatusCode::PAYLOAD_TOO_LARGE,
                json!({"error": "payload_too_large", "message": format!("body exceeds {} bytes", self.settings.max_body_bytes)}),
            );
        }
        // Verify over the exact raw bytes before parsing anything (lambda_http has already
        // undone API Gateway's base64 encoding).
        let signature = req.headers().get(katalo::SIGNATURE_HEADER).and_then(|v| v.to_str().ok());
        if let Err(e) = self.settings.katalo_secrets.verify_hex(body, signature) {
            warn!(provider = katalo::PROVIDER, reason = %e, "rejected: signature");
            return reply(
                StatusCode::UNAUTHORIZED,
                json!({"error": "invalid_signature", "message": "signature verification failed"}),
            );
        }
        let hook = match KataloWebhook::parse(body) {
            Ok(h) => h,
            Err(e) => {
                warn!(provider = katalo::PROVIDER, reason = %e, "rejected: payload");
                return reply(StatusCode::BAD_REQUEST, json!({"error": "invalid_payload", "message": e.to_string()}));
            }
        };
        let key = dedupe_key(katalo::PROVIDER, &hook.job_id, &hook.event_type);
        let now = self.clock.now();
        let message = InboxMessage::KataloWebhook(KataloWebhookMessage {
            dedupe_key: key.clone(),
            job_id: hook.job_id.clone(),
            event_type: hook.event_type.clone(),
            received_at: rfc3339(now),
            payload: hook.body,
        });
        let out = OutgoingMessage {
            body: message.to_json(),
            attributes: vec![
                ("provider".into(), katalo::PROVIDER.into()),
                ("event_type".into(), hook.event_type.clone()),
            ],
            group_id: Some(key.clone()),
            dedup_id: Some(body_sha256(key.as_bytes())),
        };
        match self.accept(&key, body_sha256(body), out, deadline_ms).await {
            Ok(accepted) => {
                let duplicate = accepted == Accepted::Duplicate;
                info!(provider = katalo::PROVIDER, key = %key, duplicate, "accepted");
                reply(StatusCode::OK, json!({"ok": true, "duplicate": duplicate}))
            }
            Err(r) => r,
        }
    }

    /// The dedupe state machine: claim → send → mark ENQUEUED, or the reason to refuse.
    async fn accept(
        &self,
        key: &str,
        body_hash: String,
        out: OutgoingMessage,
        deadline_ms: Option<i64>,
    ) -> Result<Accepted, Response<String>> {
        let now = self.clock.now();
        let now_ms = self.clock.now_ms();
        let lease_until_ms =
            deadline_ms.filter(|d| *d > now_ms).unwrap_or(now_ms + self.settings.default_lease.as_millis() as i64);
        let claim = Claim {
            key: key.to_string(),
            claim_id: random_id(),
            lease_until_ms,
            expires_at: now.unix_timestamp() + self.settings.dedupe_ttl.as_secs() as i64,
            body_sha256: body_hash.clone(),
            received_at: rfc3339(now),
        };
        let outcome = self.store.claim(&claim, now_ms).await.map_err(|e| {
            warn!(key, error = %e, "dedupe store unavailable");
            unavailable("dedupe store unavailable")
        })?;
        match outcome {
            ClaimOutcome::Claimed => {}
            ClaimOutcome::Existing(record) => {
                if record.body_sha256 != body_hash {
                    warn!(key, metric = "body_conflict", "same dedupe key, different body: keeping the first");
                    if let Err(e) = self.store.note_conflict(key).await {
                        warn!(key, error = %e, "could not count the body conflict");
                    }
                }
                return match record.status {
                    RecordStatus::Enqueued | RecordStatus::Published => Ok(Accepted::Duplicate),
                    RecordStatus::InProgress => {
                        let wait = ((record.lease_until_ms - now_ms) / 1000).clamp(1, 60);
                        let mut r = reply(
                            StatusCode::SERVICE_UNAVAILABLE,
                            json!({"error": "in_progress", "message": "the same event is being accepted right now; retry", "retryable": true}),
                        );
                        r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(wait));
                        Err(r)
                    }
                };
            }
        }
        if let Err(e) = self.inbox.send(out).await {
            warn!(key, error = %e, "inbox send failed: releasing the claim");
            if let Err(e) = self.store.release(key, &claim.claim_id).await {
                warn!(key, error = %e, "could not release the claim; it expires with its lease");
            }
            return Err(unavailable("inbox unavailable"));
        }
        // The event is safely queued: from here on the answer is 2xx. If the mark fails,
        // the claim's lease runs out and a retry may enqueue again; the worker's own
        // lease and PUBLISHED mark keep that from publishing twice.
        match self.store.mark_enqueued(key, &claim.claim_id).await {
            Ok(_) => {}
            Err(e) => warn!(key, error = %e, "could not mark the record ENQUEUED"),
        }
        Ok(Accepted::New)
    }
}

fn reply(status: StatusCode, body: Value) -> Response<String> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(body.to_string())
        .expect("static response parts are valid")
}

fn unavailable(message: &str) -> Response<String> {
    let mut r =
        reply(StatusCode::SERVICE_UNAVAILABLE, json!({"error": "unavailable", "message": message, "retryable": true}));
    r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    r
}

/// A random 128-bit id in hex.
pub fn random_id() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

#[cfg(test)]
mod tests;
