//! The toolkit: reusable pieces the providers, the engine and the adapters build on. It
//! depends on the domain and the ports only.
//!
//! - [`auth`]: HMAC secrets with rotation, Standard Webhooks, output-link tokens;
//! - [`http`]: the provider API clients' plumbing (TLS, rate limit, error
//!   classification, `Retry-After`, signed URLs' expiry and redaction);
//! - [`webhook_body`]: reading a verified JSON body's fields;
//! - [`telemetry`]: the metrics' names, units and dimensions.

pub mod auth;
pub mod http;
pub mod telemetry;
pub mod webhook_body;
