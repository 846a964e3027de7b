//! Task watches: the mapping from the caller's reference (chosen before submit and
//! carried in the callback URL) to the provider's task id (known after submit), and the
//! polling horizon. Callbacks find their task through it; the poller keeps it alive.
//! A provider whose callbacks name only the caller's reference (APIMP) registers its
//! tasks this way.

use serde::{Deserialize, Serialize};

/// A registered task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Watch {
    /// The caller's reference (the callback URL's `ref`).
    pub reference: String,
    /// The provider's task id.
    pub task_id: String,
    /// The upstream the task runs on, by its provider's name for it, when the task can
    /// call back through the provider (an aggregator's: APIMP's `kling`, `vidu`…).
    pub upstream: Option<String>,
    /// When the watch was registered (RFC 3339).
    pub registered_at: String,
    /// Polling stops after this instant (epoch s).
    pub horizon_at: i64,
}
