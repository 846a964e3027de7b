//! genhook: a receiver for AI-generation webhooks on AWS Lambda.
//!
//! This is the library crate `genhook`, kept in the workspace folder `shared/` (the
//! design card's name for it).
//!
//! Flow: API Gateway → [`receiver`] (route to the provider's source, verify over the raw
//! body → claim the dedupe key in DynamoDB → SQS inbox) → [`worker`] (hand each message
//! to its provider's reconciler, re-read the job from the provider's API → fresh signed
//! URLs → normalized event on the SQS outbox).
//!
//! Layers (see `docs/architecture.md`; `tests/layers.rs` enforces them): [`domain`]
//! depends on nothing; [`ports`] only on the domain; the toolkit ([`signature`],
//! [`standard_webhooks`], [`signed_url`], [`webhook_body`], [`http`], [`rate_limit`],
//! [`link`], [`telemetry`]: the metrics' names and dimensions, [`tls`]) on those; each provider in [`providers`] implements
//! [`ports::provider::Provider`]; [`adapters`] hold one implementation per real service;
//! [`config`] is the one composition root. The Lambda binaries in `functions/` only
//! translate events.

pub mod adapters;
pub mod config;
#[cfg(feature = "dev")]
pub mod consumer;
pub mod domain;
pub mod http;
pub mod link;
pub mod links;
pub mod ports;
pub mod providers;
pub mod rate_limit;
pub mod receiver;
pub mod refresh;
pub mod signature;
pub mod signed_url;
pub mod standard_webhooks;
pub mod telemetry;
pub mod tls;
pub mod webhook_body;
pub mod worker;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod schema_check;
