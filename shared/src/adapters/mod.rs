//! Adapters: one implementation of each port per real service, plus in-memory ones for
//! unit tests.

pub mod aws;
pub mod dynamodb;
#[cfg(any(test, feature = "dev"))]
pub mod memory;
#[cfg(feature = "dev")]
pub mod provision;
pub mod secretsmanager;
#[cfg(feature = "sqlite")]
pub mod sqlite;
pub mod sqs;
