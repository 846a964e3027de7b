//! genhook: a receiver for AI-generation webhooks on AWS Lambda.
//!
//! Flow: API Gateway → [`receiver`] (verify the signature over the raw body → claim the
//! dedupe key in DynamoDB → SQS inbox) → [`worker`] (re-read the job from the provider's
//! API → fresh signed URLs → normalized event on the SQS outbox).
//!
//! Logic lives here behind [`ports`]; [`adapters`] hold one implementation per real
//! service; the Lambda binaries in `functions/` only translate events.

pub mod adapters;
pub mod backoff;
pub mod clock;
pub mod config;
pub mod consumer;
pub mod domain;
pub mod http;
pub mod ports;
pub mod providers;
pub mod rate_limit;
pub mod receiver;
pub mod signature;
pub mod signed_url;
pub mod standard_webhooks;
pub mod worker;

#[cfg(test)]
mod proptests;
