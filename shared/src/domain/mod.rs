//! Provider-neutral domain types: dedupe records, inbox messages, reconciled jobs and
//! the normalized event consumers read from the outbox.

pub mod backoff;
pub mod carry;
pub mod clock;
pub mod dedupe;
pub mod event;
pub mod inbox;
pub mod job;
pub mod refresh;
pub mod upstream;
pub mod watch;
