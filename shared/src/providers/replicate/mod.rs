//! Replicate: prediction webhooks signed per Standard Webhooks, and
//! `GET /v1/predictions/{id}`.
//!
//! Replicate POSTs the prediction object itself (the same JSON as its API returns) when
//! a prediction starts, has new output or logs, and when it ends; only the final
//! delivery (`succeeded`, `failed`, `canceled`) is retried. Deliveries are signed with
//! the account's `whsec_` secret (`GET /v1/webhooks/default/secret`) and verified with
//! [`crate::standard_webhooks`]. Output files are removed an hour after an API-created
//! prediction (see [`prediction::OUTPUT_RETENTION`]), so outputs are read back from the
//! API and published quickly. Sources: `docs/providers/replicate.md`.
//!
//! [`webhook`] reads a verified delivery, [`prediction`] reads the prediction into a
//! [`crate::domain::job::Job`], [`api`] is the [`crate::ports::JobApi`] adapter.

pub mod api;
pub mod prediction;
pub mod webhook;

/// The provider name used in dedupe keys and events.
pub const PROVIDER: &str = "replicate";
/// The receiver route Replicate is pointed at.
pub const ROUTE: &str = "/webhooks/replicate";
/// Replicate's API base URL when none is configured.
pub const DEFAULT_BASE_URL: &str = "https://api.replicate.com";
/// The headers a delivery is verified with (Standard Webhooks').
pub const SIGNATURE_HEADERS: [&str; 3] = [
    crate::standard_webhooks::ID_HEADER,
    crate::standard_webhooks::TIMESTAMP_HEADER,
    crate::standard_webhooks::SIGNATURE_HEADER,
];
