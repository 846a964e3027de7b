//! The `genhook` command's library: each subcommand's implementation, so tests and the
//! binary share them. `main.rs` only parses arguments and dispatches.

pub mod apimp;
pub mod backend;
pub mod dev;
pub mod jobs;
pub mod ops;
pub mod simulate;
