//! Provider-neutral domain types: dedupe records, inbox messages, reconciled jobs, the
//! normalized event consumers read from the outbox, and the output links' cache.

pub mod abandon;
pub mod archive;
pub mod backoff;
pub mod budget;
pub mod clock;
pub mod dedupe;
pub mod event;
pub mod failure;
pub mod inbox;
pub mod job;
pub mod limits;
pub mod link_cache;
pub mod refresh;
pub mod retry;
pub mod text;
pub mod trace;
pub mod watch;

#[cfg(test)]
pub(crate) mod testing;
