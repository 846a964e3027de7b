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

use crate::domain::clock::{Clock, rfc3339};
use crate::domain::carry::{self, MAX_ID_BYTES, MAX_JSON_DEPTH, MAX_KIND_BYTES, attribute_value};
use crate::domain::dedupe::{Claim, ClaimOutcome, MIN_DEDUPE_TTL, RecordStatus, body_sha256, dedupe_key, random_id};
use crate::domain::inbox::{ApimpCallbackMessage, InboxMessage, KataloWebhookMessage};
use crate::ports::{DedupeStore, OutgoingMessage, Queue, QueueError};
use crate::providers::apimp::callback::{self, Callback};
use crate::providers::apimp::{self, Upstream, capability, vidu};
use crate::providers::katalo::{self, webhook::KataloWebhook};
use crate::signature::HmacSecrets;

/// The Katalo webhook route.
pub const KATALO_ROUTE: &str = "/webhooks/katalo";

/// Receiver settings.
#[derive(Debug, Clone)]
pub struct ReceiverSettings {
    /// Katalo signing secrets (current and previous); without them the Katalo route
    /// answers 404 (an APIMP-only deployment).
    pub katalo_secrets: Option<HmacSecrets>,
    /// Bodies larger than this are refused with 413.
    pub max_body_bytes: usize,
    /// How long a dedupe record lives (the TTL attribute and the logical expiry).
    pub dedupe_ttl: Duration,
    /// Claim lease when the invocation deadline is unknown.
    pub default_lease: Duration,
    /// APIMP callbacks; without them the APIMP routes answer 404.
    pub apimp: Option<ApimpCallbackSettings>,
}

/// How APIMP callbacks are authenticated.
#[derive(Debug, Clone)]
pub struct ApimpCallbackSettings {
    /// `APIMP_CALLBACK_SECRET` (+ `_PREVIOUS`): the callback URLs' token key.
    pub callback_secrets: HmacSecrets,
    /// `VIDU_CALLBACK_SECRET`: when set, Vidu's `X-HMAC-*` signature is required too.
    pub vidu_secrets: Option<HmacSecrets>,
}

impl ReceiverSettings {
    /// Katalo webhooks signed with `katalo_secrets`, and the defaults of [`Self::without_katalo`].
    pub fn new(katalo_secrets: HmacSecrets) -> Self {
        Self { katalo_secrets: Some(katalo_secrets), ..Self::without_katalo() }
    }

    /// No provider configured yet. Defaults: 256 KiB bodies, 15-day dedupe records
    /// ([`MIN_DEDUPE_TTL`]), 30 s lease fallback.
    pub fn without_katalo() -> Self {
        Self {
            katalo_secrets: None,
            max_body_bytes: 256 * 1024,
            dedupe_ttl: MIN_DEDUPE_TTL,
            default_lease: Duration::from_secs(30),
            apimp: None,
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
            p if p.starts_with(apimp::ROUTE_PREFIX) => match Upstream::parse(&p[apimp::ROUTE_PREFIX.len()..]) {
                Some(upstream) if req.method() == Method::POST => self.apimp(req, upstream, deadline_ms).await,
                Some(_) => method_not_allowed(),
                None => not_found("unknown APIMP upstream (kling, doubao, minimax or vidu)"),
            },
            KATALO_ROUTE => method_not_allowed(),
            _ => not_found("no webhook route at this path"),
        }
    }

    async fn apimp<B: AsRef<[u8]>>(
        &self,
        req: Request<B>,
        upstream: Upstream,
        deadline_ms: Option<i64>,
    ) -> Response<String> {
        let Some(cfg) = &self.settings.apimp else {
            return not_found("APIMP callbacks are not configured (set APIMP_CALLBACK_SECRET)");
        };
        let body = req.body().as_ref();
        if body.len() > self.settings.max_body_bytes {
            return too_large(self.settings.max_body_bytes);
        }
        // The capability in the URL first: nothing below runs for a caller without it.
        let reference = match capability::verify_query(req.uri().query(), upstream, &cfg.callback_secrets) {
            Ok(r) => r,
            Err(e) => {
                warn!(provider = apimp::PROVIDER, %upstream, reason = %e, "rejected: callback token");
                return reply(
                    StatusCode::UNAUTHORIZED,
                    json!({"error": "invalid_token", "message": "callback URL token missing or invalid"}),
                );
            }
        };
        if let (Upstream::Vidu, Some(secrets)) = (upstream, &cfg.vidu_secrets)
            && let Err(e) = vidu::verify(
                req.headers(),
                req.uri().path(),
                req.uri().query().unwrap_or(""),
                secrets,
                self.clock.now(),
            )
        {
            // The reason goes to the log only: the caller learns nothing about the check.
            warn!(provider = apimp::PROVIDER, %upstream, reason = %e, "rejected: Vidu signature");
            return reply(
                StatusCode::UNAUTHORIZED,
                json!({"error": "invalid_signature", "message": "signature verification failed"}),
            );
        }
        let update = match callback::parse(upstream, body) {
            // MiniMax's handshake: echo at once, never stored or queued.
            Ok(Callback::Challenge(challenge)) => return reply(StatusCode::OK, json!({ "challenge": challenge })),
            Ok(Callback::Update(u)) => u,
            Err(e) => {
                warn!(provider = apimp::PROVIDER, %upstream, reason = %e, "rejected: payload");
                return reply(StatusCode::BAD_REQUEST, json!({"error": "invalid_payload", "message": e.to_string()}));
            }
        };
        let fields =
            [("task_id", update.upstream_task_id.as_str(), MAX_ID_BYTES), ("status", &update.status, MAX_KIND_BYTES)];
        if let Some(why) = uncarriable(body, &fields) {
            warn!(provider = apimp::PROVIDER, %upstream, reason = %why, "rejected: payload");
            return invalid_payload(why);
        }
        let key = dedupe_key(apimp::PROVIDER, &format!("{upstream}:{}", update.upstream_task_id), &update.status);
        let message = InboxMessage::ApimpCallback(ApimpCallbackMessage {
            dedupe_key: key.clone(),
            upstream,
            reference,
            upstream_task_id: update.upstream_task_id,
            status: update.status.clone(),
            state: update.state,
            received_at: rfc3339(self.clock.now()),
            payload: update.body,
        });
        let out = OutgoingMessage {
            body: message.to_json(),
            attributes: vec![
                ("provider".into(), apimp::PROVIDER.into()),
                ("upstream".into(), upstream.as_str().into()),
                ("status".into(), attribute_value(&update.status)),
            ],
            group_id: Some(key.clone()),
            dedup_id: Some(body_sha256(key.as_bytes())),
            delay: None,
        };
        self.accepted_reply(apimp::PROVIDER, &key, self.accept(&key, body_sha256(body), out, deadline_ms).await)
    }

    /// The 2xx answer for an accepted delivery, or the refusal.
    fn accepted_reply(
        &self,
        provider: &str,
        key: &str,
        result: Result<Accepted, Response<String>>,
    ) -> Response<String> {
        match result {
            Ok(accepted) => {
                let duplicate = accepted == Accepted::Duplicate;
                info!(provider, key = %key, duplicate, "accepted");
                reply(StatusCode::OK, json!({"ok": true, "duplicate": duplicate}))
            }
            Err(r) => r,
        }
    }

    async fn katalo<B: AsRef<[u8]>>(&self, req: Request<B>, deadline_ms: Option<i64>) -> Response<String> {
        let body = req.body().as_ref();
        if body.len() > self.settings.max_body_bytes {
            warn!(provider = katalo::PROVIDER, bytes = body.len(), "rejected: body too large");
            return too_large(self.settings.max_body_bytes);
        }
        // Verify over the exact raw bytes before parsing anything (lambda_http has already
        // undone API Gateway's base64 encoding).
        let signature = req.headers().get(katalo::SIGNATURE_HEADER).and_then(|v| v.to_str().ok());
        let Some(secrets) = &self.settings.katalo_secrets else {
            return not_found("Katalo webhooks are not configured (set KATALO_WEBHOOK_SECRET)");
        };
        if let Err(e) = secrets.verify_hex(body, signature) {
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
        let fields = [("job_id", hook.job_id.as_str(), MAX_ID_BYTES), ("event_type", &hook.event_type, MAX_KIND_BYTES)];
        if let Some(why) = uncarriable(body, &fields) {
            warn!(provider = katalo::PROVIDER, reason = %why, "rejected: payload");
            return invalid_payload(why);
        }
        let key = dedupe_key(katalo::PROVIDER, &hook.job_id, &hook.event_type);
        let now = self.clock.now();
        let message = InboxMessage::KataloWebhook(KataloWebhookMessage {
            dedupe_key: key.clone(),
            job_id: hook.job_id.clone(),
            event_type: hook.event_type.clone(),
            received_at: rfc3339(now),
            payload: hook.body,
            polls: 0,
            horizon_at: None,
        });
        let out = OutgoingMessage {
            body: message.to_json(),
            attributes: vec![
                ("provider".into(), katalo::PROVIDER.into()),
                ("event_type".into(), attribute_value(&hook.event_type)),
            ],
            group_id: Some(key.clone()),
            dedup_id: Some(body_sha256(key.as_bytes())),
            delay: None,
        };
        self.accepted_reply(katalo::PROVIDER, &key, self.accept(&key, body_sha256(body), out, deadline_ms).await)
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
        let default_lease = i64::try_from(self.settings.default_lease.as_millis()).unwrap_or(i64::MAX);
        let lease_until_ms = deadline_ms.filter(|d| *d > now_ms).unwrap_or(now_ms.saturating_add(default_lease));
        let ttl = i64::try_from(self.settings.dedupe_ttl.as_secs()).unwrap_or(i64::MAX);
        let claim = Claim {
            key: key.to_string(),
            claim_id: random_id(),
            lease_until_ms,
            expires_at: now.unix_timestamp().saturating_add(ttl),
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
                // A record a worker recreated has no body hash to compare.
                if !record.body_sha256.is_empty() && record.body_sha256 != body_hash {
                    warn!(key, metric = "body_conflict", "same dedupe key, different body: keeping the first");
                    if let Err(e) = self.store.note_conflict(key).await {
                        warn!(key, error = %e, "could not count the body conflict");
                    }
                }
                return match record.status {
                    RecordStatus::Enqueued | RecordStatus::Published => Ok(Accepted::Duplicate),
                    RecordStatus::InProgress => {
                        let wait = (record.lease_until_ms.saturating_sub(now_ms) / 1000).clamp(1, 60);
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
            // The send may have reached the queue all the same (a timeout); the release
            // only deletes a claim no worker has leased, so a message that did arrive is
            // never orphaned from its record.
            warn!(key, error = %e, "inbox send failed: releasing the claim");
            if let Err(e) = self.store.release(key, &claim.claim_id).await {
                warn!(key, error = %e, "could not release the claim; it expires with its lease");
            }
            return Err(match e {
                // The queue refused this message itself: a retry would be refused too.
                QueueError::Rejected(why) => reply(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    json!({"error": "unqueueable", "message": format!("the inbox refused this delivery: {why}"), "retryable": false}),
                ),
                QueueError::Unavailable(_) => unavailable("inbox unavailable"),
            });
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

/// What a later step would refuse forever, checked before anything is stored: each
/// named field's length, and the body's JSON nesting. `Some(why)` is answered with a 400
/// (a retry cannot change it).
fn uncarriable(body: &[u8], fields: &[(&str, &str, usize)]) -> Option<String> {
    for (name, value, max) in fields {
        if value.len() > *max {
            return Some(format!("`{name}` is longer than {max} bytes"));
        }
    }
    (carry::json_depth(body) > MAX_JSON_DEPTH).then(|| format!("JSON nested deeper than {MAX_JSON_DEPTH} levels"))
}

fn invalid_payload(why: String) -> Response<String> {
    reply(StatusCode::BAD_REQUEST, json!({"error": "invalid_payload", "message": why}))
}

fn reply(status: StatusCode, body: Value) -> Response<String> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(body.to_string())
        .expect("static response parts are valid")
}

fn method_not_allowed() -> Response<String> {
    let mut r = reply(StatusCode::METHOD_NOT_ALLOWED, json!({"error": "method_not_allowed", "message": "use POST"}));
    r.headers_mut().insert(header::ALLOW, HeaderValue::from_static("POST"));
    r
}

fn not_found(message: &str) -> Response<String> {
    reply(StatusCode::NOT_FOUND, json!({"error": "not_found", "message": message}))
}

fn too_large(limit: usize) -> Response<String> {
    reply(
        StatusCode::PAYLOAD_TOO_LARGE,
        json!({"error": "payload_too_large", "message": format!("body exceeds {limit} bytes")}),
    )
}

fn unavailable(message: &str) -> Response<String> {
    let mut r =
        reply(StatusCode::SERVICE_UNAVAILABLE, json!({"error": "unavailable", "message": message, "retryable": true}));
    r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    r
}

#[cfg(test)]
mod apimp_tests;
#[cfg(test)]
mod tests;
