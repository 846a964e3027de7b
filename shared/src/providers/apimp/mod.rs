//! APIMP: an aggregator whose upstreams (Kling, Doubao/Ark, MiniMax, Vidu) post their own
//! callbacks to the `callback_url` we pass at submit, unchanged; other models are
//! polling-only. Callbacks are hints: the worker confirms each with APIMP's
//! `GET /api/generate/status/{task_id}` before publishing anything.
//!
//! - [`capability`]: minting and checking the callback URL's reference token.
//! - [`callback`]: each upstream's payload, parsed tolerantly.
//! - [`vidu`]: Vidu's `X-HMAC-*` callback signature.
//! - [`api`]: the status API client; [`watch`]: registering a task for polling.

pub mod api;
pub mod callback;
pub mod capability;
pub mod vidu;
pub mod watch;

/// The provider name in dedupe keys and events.
pub const PROVIDER: &str = "apimp";
/// The route prefix; the upstream's name follows.
pub const ROUTE_PREFIX: &str = "/webhooks/apimp/";

pub use crate::domain::upstream::Upstream;
