//! The upstreams APIMP can run a task on (and that call back through it), by the names
//! used in routes, dedupe keys, watches and events.

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

    /// Every upstream's name, in route order.
    pub const NAMES: [&'static str; 4] =
        [Self::Kling.as_str(), Self::Doubao.as_str(), Self::Minimax.as_str(), Self::Vidu.as_str()];

    /// The name used in routes, keys and events.
    pub const fn as_str(self) -> &'static str {
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
