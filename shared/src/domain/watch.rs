//! APIMP task watches: the mapping from the caller's reference (chosen before submit
//! and carried in the callback URL) to APIMP's `task_id` (known after submit), and the
//! polling horizon. Callbacks find their task through it; the poller keeps it alive.

use serde::{Deserialize, Serialize};

use crate::domain::dedupe::dedupe_key;
use crate::providers::apimp::{PROVIDER, Upstream};

/// A registered task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Watch {
    /// The caller's reference (the callback URL's `ref`).
    pub reference: String,
    /// APIMP's task id.
    pub task_id: String,
    /// The upstream, when the task can call back.
    pub upstream: Option<Upstream>,
    /// When the watch was registered (RFC 3339).
    pub registered_at: String,
    /// Polling stops after this instant (epoch s).
    pub horizon_at: i64,
}

/// The key every path that can publish a task's event works under (callbacks and polls
/// alike), so one task publishes once.
pub fn publish_key(task_id: &str) -> String {
    dedupe_key(PROVIDER, task_id, "task")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_key_per_task() {
        assert_eq!(publish_key("task_01H"), "apimp#task_01H#task");
    }
}
