//! genhook: a receiver for AI-generation webhooks on AWS Lambda (the library crate
//! `genhook`, in the workspace folder `shared/`).
//!
//! Flow: API Gateway → [`engine::receiver`] (route to the provider's source, verify over
//! the raw body → claim the dedupe key → inbox) → [`engine::worker`] (hand each message to
//! its provider's reconciler, re-read the job from the provider's API → fresh signed URLs
//! → normalized event on the outbox); [`engine::links`] serves the output links.
//!
//! The folders are the layers (`docs/architecture.md`; `tests/layers.rs` enforces the
//! dependency rule by folder):
//!
//! | layer | holds | uses |
//! |---|---|---|
//! | [`domain`] | types and rules only: dedupe records, inbox envelope, jobs, events, limits, clock, backoff | nothing |
//! | [`ports`] | traits over the domain: stores, queues, job APIs, secrets, the provider traits | domain |
//! | [`toolkit`] | reusable pieces: auth (HMAC, Standard Webhooks, link tokens), HTTP plumbing, body reading, metric names | domain, ports |
//! | [`providers`] | one folder per provider (and `common`), each implementing `ports::provider` | domain, ports, toolkit |
//! | [`engine`] | the provider-agnostic steps: receiver, worker, links | domain, ports, toolkit |
//! | [`adapters`] | one implementation of each port per real service | domain, ports, toolkit |
//! | [`config`] | the composition root: environment → services | everything |

pub mod adapters;
pub mod config;
pub mod domain;
pub mod engine;
pub mod ports;
pub mod providers;
pub mod toolkit;
