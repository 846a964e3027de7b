//! APIMP's receiving side: `POST /webhooks/apimp/{kling|doubao|minimax|vidu}` carrying the
//! callback URL's capability token (checked first), Vidu's optional `X-HMAC-*` signature,
//! MiniMax's challenge handshake; deduped on upstream, upstream task id and status.

use serde_json::json;

use crate::domain::dedupe::delivery_key;
use crate::domain::limits::{MAX_ID_BYTES, MAX_KIND_BYTES, attribute_value, check_lengths};
use crate::ports::provider::{Delivery, Enqueue, Intake, Refusal, RouteMatch, WebhookSource};
use crate::toolkit::auth::hmac::HmacSecrets;

use super::callback::{self, Callback};
use super::message::{ApimpCallbackMessage, ApimpMessage};
use super::upstream::Upstream;
use super::{PROVIDER, ROUTE_PREFIX, capability, vidu};

/// How APIMP callbacks are authenticated.
#[derive(Debug, Clone)]
pub struct ApimpSource {
    /// `APIMP_CALLBACK_SECRET` (+ `_PREVIOUS`): the callback URLs' token key.
    pub callback_secrets: HmacSecrets,
    /// `VIDU_CALLBACK_SECRET`: when set, Vidu's `X-HMAC-*` signature is required too.
    pub vidu_secrets: Option<HmacSecrets>,
}

/// The upstream a route names.
/// The one key kind every progress (non-terminal) callback of a reference shares.
pub const PROGRESS_KIND: &str = "progress";

pub(super) fn upstream_of(path: &str) -> Option<Result<Upstream, ()>> {
    let rest = path.strip_prefix(ROUTE_PREFIX)?;
    Some(Upstream::parse(rest).ok_or(()))
}

/// `/webhooks/apimp/<upstream>`.
pub(super) fn route(path: &str) -> RouteMatch {
    match upstream_of(path) {
        None => RouteMatch::NotMine,
        Some(Ok(_)) => RouteMatch::Mine,
        Some(Err(())) => RouteMatch::Unknown("unknown APIMP upstream (kling, doubao, minimax or vidu)"),
    }
}

impl WebhookSource for ApimpSource {
    fn provider(&self) -> &'static str {
        PROVIDER
    }

    fn route(&self, path: &str) -> RouteMatch {
        route(path)
    }

    fn upstream(&self, path: &str) -> Option<&'static str> {
        upstream_of(path)?.ok().map(Upstream::as_str)
    }

    fn intake(&self, d: &Delivery<'_>) -> Result<Intake, Refusal> {
        let Some(Ok(upstream)) = upstream_of(d.path) else {
            return Err(Refusal::NotFound("unknown APIMP upstream (kling, doubao, minimax or vidu)".into()));
        };
        // The capability in the URL first: nothing below runs for a caller without it.
        let reference = capability::verify_query(d.query, upstream, &self.callback_secrets).map_err(|e| {
            Refusal::Unauthenticated {
                code: "invalid_token",
                message: "callback URL token missing or invalid",
                what: "callback token",
                detail: format!("{upstream}: {e}"),
            }
        })?;
        if let (Upstream::Vidu, Some(secrets)) = (upstream, &self.vidu_secrets) {
            vidu::verify(d.headers, d.sent_path, d.query.unwrap_or(""), secrets, d.now).map_err(|e| {
                Refusal::Unauthenticated {
                    code: "invalid_signature",
                    message: "signature verification failed",
                    what: "Vidu signature",
                    detail: e.to_string(),
                }
            })?;
        }
        let update = match callback::parse(upstream, d.body) {
            // MiniMax's handshake: echo at once, never stored or queued.
            Ok(Callback::Challenge(challenge)) => return Ok(Intake::Reply(json!({ "challenge": challenge }))),
            Ok(Callback::Update(u)) => u,
            Err(e) => return Err(Refusal::Invalid(e.to_string())),
        };
        check_lengths(&[
            ("task_id", &update.upstream_task_id, MAX_ID_BYTES),
            ("status", &update.status, MAX_KIND_BYTES),
        ])
        .map_err(Refusal::Invalid)?;
        // A callback URL stands for one task: what it can enqueue is bounded by its
        // reference, whatever task ids and words its bodies carry. One key per terminal
        // status word the upstream has, and one for all progress (which the worker drops):
        // a second task id, or any number of made-up words, are duplicates of those.
        let kind = if update.state.is_terminal() { update.status.as_str() } else { PROGRESS_KIND };
        let key = delivery_key(PROVIDER, &format!("{upstream}:{reference}"), kind);
        let message = ApimpMessage::Callback(ApimpCallbackMessage {
            dedupe_key: key.clone(),
            upstream,
            reference,
            upstream_task_id: update.upstream_task_id,
            status: update.status.clone(),
            state: update.state,
            received_at: d.received_at.to_string(),
            payload: update.body,
            thin: None,
        });
        Ok(Intake::Enqueue(Enqueue {
            key,
            message: message.to_json(),
            attributes: vec![
                ("provider".into(), PROVIDER.into()),
                ("upstream".into(), upstream.as_str().into()),
                ("status".into(), attribute_value(&update.status)),
            ],
            body_mac: None,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(route("/webhooks/apimp/kling"), RouteMatch::Mine);
        assert!(matches!(route("/webhooks/apimp/nope"), RouteMatch::Unknown(_)));
        assert_eq!(route("/webhooks/katalo"), RouteMatch::NotMine);
    }
}
