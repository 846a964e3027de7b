//! Katalo: signed `generation.*` webhooks and `GET /api/v1/generations/{job_id}`.

pub mod api;
pub mod job;
pub mod webhook;

/// The provider name used in dedupe keys and events.
pub const PROVIDER: &str = "katalo";
/// The signature header (matched case-insensitively, as all HTTP headers).
pub const SIGNATURE_HEADER: &str = "x-katalo-signature";
/// The job-completed event type.
pub const COMPLETED: &str = "generation.completed";
/// The job-failed event type.
pub const FAILED: &str = "generation.failed";
