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

/// An upstream that can call back through APIMP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Upstream {
    /// Kling AI (`task_status`).
    Kling,
    /// ByteDance Doubao on Volcengine Ark (`status`).
    Doubao,
    /// MiniMax Hailuo (`status`, challenge handshake).
    Minimax,
    /// Vidu (`state`, optional `X-HMAC-*` signature).
    Vidu,
}

impl Upstream {
    /// Every upstream, in route order.
    pub const ALL: [Upstream; 4] = [Self::Kling, Self::Doubao, Self::Minimax, Self::Vidu];

    /// The name used in routes, keys and events.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Kling => "kling",
            Self::Doubao => "doubao",
            Self::Minimax => "minimax",
            Self::Vidu => "vidu",
        }
    }

    /// Parses a route segment (exact, lowercase).
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|u| u.as_str() == s)
    }
}

impl std::fmt::Display for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
