//! Provider-neutral domain types: dedupe records, inbox messages, reconciled jobs, the
//! normalized event consumers read from the outbox, and the output links' cache.

pub mod backoff;
pub mod carry;
pub mod clock;
pub mod dedupe;
pub mod event;
pub mod inbox;
pub mod job;
pub mod link;
pub mod refresh;
pub mod trace;
pub mod upstream;
pub mod watch;
