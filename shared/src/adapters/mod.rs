//! Adapters: one implementation of each port per real service, plus in-memory ones for
//! unit tests.

pub mod aws;
pub mod dynamodb;
pub mod memory;
pub mod provision;
#[cfg(feature = "sqlite")]
pub mod sqlite;
pub mod sqs;
