//! The receiver: route → verify (the provider's [`WebhookSource`]) → claim the dedupe key
//! → enqueue → acknowledge.
//!
//! HTTP-agnostic and provider-agnostic: the Lambda binary (and any local server) hands
//! over its [`http::Request`] (any body that is raw bytes) and serves the
//! [`http::Response<String>`] this returns. A delivery is acknowledged with 2xx only once
//! its message is in the inbox; every failure leaves the key free (or its claim
//! expiring) so the provider's retry can succeed. The dedupe state machine is in
//! [`claim`].

use std::sync::Arc;
use std::time::Duration;

use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use tracing::{info, warn};

use crate::domain::clock::{Clock, rfc3339};
use crate::domain::dedupe::MIN_DEDUPE_TTL;
use crate::domain::inbox::thin_message;
use crate::domain::limits::{self, MAX_JSON_DEPTH};
use crate::domain::trace::Trace;
use crate::engine::answer;
use crate::engine::reload::{Reload, Reloading};
use crate::engine::stage::SentPath;
use crate::ports::provider::{Delivery, Intake, Provider, Refusal, RouteMatch, WebhookSource};
use crate::ports::{DedupeStore, Queue};
use crate::toolkit::telemetry::{Origin, name};

mod claim;

use claim::{Accepted, Failed};

/// The most calls to the dedupe store and the inbox one delivery makes in a row: the
/// claim, the send, then the ENQUEUED mark or the claim's release (a duplicate: the
/// claim, and the body conflict's count). Each is bounded by the SDK's operation timeout
/// (`adapters::aws::OPERATION_TIMEOUT`).
///
/// The claim's lease ends at the invocation's deadline, that is the Lambda's `Timeout`
/// after it started: no retry can claim the key while an invocation that may still send
/// it is running, and a crashed one holds the key no longer than that. So the `Timeout`
/// must outlast these calls (else Lambda kills an invocation between the send and the
/// mark, and the next retry enqueues again) and stay under API Gateway's integration
/// timeout (else the gateway answers 5xx while the delivery is still being accepted).
pub const MAX_SDK_CALLS: u32 = 3;

/// The most a Lambda function can be handed in one synchronous invocation (6 MiB, the
/// whole event: the body and the request around it). Nothing larger reaches the receiver
/// behind API Gateway or a Function URL; the front ends' own limits are in
/// docs/operations.md.
pub const LAMBDA_MAX_BODY_BYTES: usize = 6 * 1024 * 1024;

/// The largest inbox message (SQS's `MaximumMessageSize` at most, and the template's).
pub const MAX_INBOX_MESSAGE_BYTES: usize = 1024 * 1024;

/// Receiver settings (the providers' own are in their sources).
#[derive(Debug, Clone)]
pub struct ReceiverSettings {
    /// Bodies larger than this are refused with 413.
    pub max_body_bytes: usize,
    /// A delivery whose inbox message would be larger than this is queued thin
    /// ([`crate::domain::inbox::Thin`]); at most the inbox's largest message.
    pub thin_over_bytes: usize,
    /// How long a dedupe record lives (the TTL attribute and the logical expiry).
    pub dedupe_ttl: Duration,
    /// Claim lease when the invocation deadline is unknown (outside Lambda). Like the
    /// Lambda's `Timeout`, it must outlast [`MAX_SDK_CALLS`] calls.
    pub default_lease: Duration,
}

impl Default for ReceiverSettings {
    /// Bodies up to [`LAMBDA_MAX_BODY_BYTES`], thin messages over 256 KiB, 15-day dedupe
    /// records ([`MIN_DEDUPE_TTL`]), 30 s lease fallback.
    fn default() -> Self {
        Self {
            max_body_bytes: LAMBDA_MAX_BODY_BYTES,
            thin_over_bytes: 256 * 1024,
            dedupe_ttl: MIN_DEDUPE_TTL,
            default_lease: Duration::from_secs(30),
        }
    }
}

/// The providers' receiving sides, as one list.
pub type Sources = Vec<Arc<dyn WebhookSource>>;

/// The receiver service. Build it once per cold start and share it across invocations.
pub struct Receiver {
    store: Arc<dyn DedupeStore>,
    inbox: Arc<dyn Queue>,
    sources: Reloading<Sources>,
    settings: ReceiverSettings,
    clock: Arc<dyn Clock>,
}

impl Receiver {
    /// A receiver over the given ports, serving `sources`' routes (first match wins).
    pub fn new(
        store: Arc<dyn DedupeStore>,
        inbox: Arc<dyn Queue>,
        sources: Vec<Arc<dyn WebhookSource>>,
        settings: ReceiverSettings,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self { store, inbox, sources: Reloading::new(sources, "webhook secrets"), settings, clock }
    }

    /// Re-reads the secrets through `reload` when a delivery fails authentication, and
    /// tries the delivery once more with the new sources.
    pub fn with_reload(self, reload: Arc<dyn Reload<Sources>>) -> Self {
        Self { sources: self.sources.with_reload(Some(reload)), ..self }
    }

    /// Authenticates and parses a delivery to `path`; after an authentication failure,
    /// once more with reloaded sources if the secrets changed.
    async fn intake(&self, source: &Arc<dyn WebhookSource>, delivery: &Delivery<'_>) -> Result<Intake, Refusal> {
        let refusal = match source.intake(delivery) {
            Err(r @ Refusal::Unauthenticated { .. }) => r,
            other => return other,
        };
        let Some(fresh) = self.sources.reload().await else { return Err(refusal) };
        match fresh.iter().find(|s| s.provider() == source.provider()) {
            Some(s) => s.intake(delivery),
            None => Err(refusal),
        }
    }

    /// Handles one HTTP request. `deadline_ms` is the invocation deadline (epoch ms),
    /// which bounds the claim's lease; `None` or a past value falls back to the default.
    /// Each answer is counted ([`crate::toolkit::telemetry`]): accepted, duplicate, rejected (4xx)
    /// or 5xx, by provider (and upstream) and reason.
    pub async fn handle<B: AsRef<[u8]>>(&self, req: Request<B>, deadline_ms: Option<i64>) -> Response<String> {
        let path = req.uri().path();
        let path = if path.len() > 1 { path.trim_end_matches('/') } else { path };
        // The periodic re-read: a secret the store no longer holds stops verifying within
        // the period, even on an instance that sees no failed check.
        if self.sources.due(|| self.clock.now_ms()) {
            self.sources.reload().await;
        }
        let sources = self.sources.current();
        let found = sources.iter().find_map(|s| match s.route(path) {
            RouteMatch::NotMine => None,
            m => Some((s, m)),
        });
        let (source, origin) = match found {
            None => return rejected(Origin::UNKNOWN, "not_found", not_found("no webhook route at this path")),
            Some((s, m)) => {
                let origin = Origin { provider: s.provider(), upstream: s.upstream(path) };
                match m {
                    RouteMatch::Unknown(message) => return rejected(origin, "not_found", not_found(message)),
                    _ if req.method() != Method::POST => {
                        return rejected(origin, "method_not_allowed", method_not_allowed());
                    }
                    _ => (s, origin),
                }
            }
        };
        let provider = origin.provider;
        let body = req.body().as_ref();
        if body.len() > self.settings.max_body_bytes {
            warn!(provider, bytes = body.len(), "rejected: body too large");
            return rejected(origin, "too_large", too_large(self.settings.max_body_bytes));
        }
        let now = self.clock.now();
        let received_at = rfc3339(now);
        let sent_path = req.extensions().get::<SentPath>().map_or(req.uri().path(), |p| p.0.as_str());
        let delivery = Delivery {
            path,
            sent_path,
            query: req.uri().query(),
            headers: req.headers(),
            body,
            now,
            received_at: &received_at,
        };
        let mut enqueue = match self.intake(source, &delivery).await {
            Ok(Intake::Enqueue(e)) => e,
            Ok(Intake::Reply(answer)) => return answer::json(StatusCode::OK, answer.to_string()),
            Err(refusal) => return refused(origin, refusal),
        };
        // The delivery's request id and X-Ray header travel with its message, so the
        // event it becomes can be traced back (the Lambda handler puts them in the
        // request's extensions).
        if let Some(trace) = req.extensions().get::<Trace>() {
            enqueue.attributes.extend(trace.attributes());
        }
        if limits::nests_deeper_than(body, MAX_JSON_DEPTH) {
            return refused(origin, Refusal::Invalid(format!("JSON nested deeper than {MAX_JSON_DEPTH} levels")));
        }
        if enqueue.queued_bytes() > self.settings.thin_over_bytes {
            match thin_message(&enqueue.message, source.hints(), body) {
                Ok(thin) => {
                    info!(provider, key = enqueue.key, bytes = body.len(), "queued thin: the body is not carried");
                    origin.count(name::DELIVERIES_THINNED, &[]);
                    enqueue.message = thin;
                }
                Err(e) => {
                    warn!(provider, key = enqueue.key, error = %e, "could not write the thin message");
                    return rejected(origin, "too_large", too_large(self.settings.thin_over_bytes));
                }
            }
        }
        match self.accept(enqueue, body, deadline_ms, now, received_at, provider).await {
            Ok(accepted) => {
                let duplicate = accepted == Accepted::Duplicate;
                origin.count(if duplicate { name::DELIVERIES_DUPLICATE } else { name::DELIVERIES_ACCEPTED }, &[]);
                // The same text as `json!({"ok": true, "duplicate": duplicate})`, not built
                // per delivery.
                let body =
                    if duplicate { r#"{"ok":true,"duplicate":true}"# } else { r#"{"ok":true,"duplicate":false}"# };
                answer::json(StatusCode::OK, body)
            }
            Err(Failed { reason, response }) => rejected(origin, reason, response),
        }
    }
}

/// The routes of a provider whose receiving side is off: they answer 404 naming the
/// variable that turns them on.
pub struct UnconfiguredSource(pub &'static dyn Provider);

impl WebhookSource for UnconfiguredSource {
    fn provider(&self) -> &'static str {
        self.0.name()
    }

    fn route(&self, path: &str) -> RouteMatch {
        self.0.route(path)
    }

    fn intake(&self, _: &Delivery<'_>) -> Result<Intake, Refusal> {
        Err(Refusal::NotFound(self.0.receive_hint().into()))
    }
}

/// Counts a delivery answered with `response` (a 4xx or a 5xx) for `reason`.
fn rejected(origin: Origin, reason: &'static str, response: Response<String>) -> Response<String> {
    let metric = if response.status().is_server_error() { name::DELIVERIES_5XX } else { name::DELIVERIES_REJECTED };
    origin.count(metric, &[("reason", reason)]);
    response
}

/// The answer to a refused delivery; the detail of a failed check goes to the log only.
fn refused(origin: Origin, refusal: Refusal) -> Response<String> {
    let provider = origin.provider;
    match refusal {
        Refusal::Unauthenticated { code, message, what, detail } => {
            warn!(provider, reason = %detail, "rejected: {what}");
            let reason = if code == "invalid_token" { "bad_token" } else { "bad_signature" };
            rejected(origin, reason, answer::error(StatusCode::UNAUTHORIZED, code, message))
        }
        Refusal::Invalid(why) => {
            warn!(provider, reason = %why, "rejected: payload");
            rejected(origin, "bad_payload", answer::error(StatusCode::BAD_REQUEST, "invalid_payload", &why))
        }
        Refusal::NotFound(message) => rejected(origin, "not_found", not_found(&message)),
    }
}

fn method_not_allowed() -> Response<String> {
    let mut r = answer::error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "use POST");
    r.headers_mut().insert(header::ALLOW, HeaderValue::from_static("POST"));
    r
}

fn not_found(message: &str) -> Response<String> {
    answer::error(StatusCode::NOT_FOUND, "not_found", message)
}

fn too_large(limit: usize) -> Response<String> {
    answer::error(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        &format!("the body exceeds this receiver's limit of {limit} bytes"),
    )
}

fn unavailable(message: &str) -> Response<String> {
    let mut r = answer::retryable_error(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message, true);
    r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    r
}

#[cfg(test)]
pub(crate) mod tests;
