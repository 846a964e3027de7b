//! The engine: the provider-agnostic steps. [`receiver`] (route → verify → claim →
//! enqueue → acknowledge), [`worker`] (reconcile → publish) and [`links`] (the output
//! links' redirects), with [`answer`], the JSON answers they give over HTTP, and
//! [`stage`], the API Gateway stage both cut from request paths, and [`reload`], how
//! each rebuilds what it built from its secrets. It knows
//! providers only through the `ports::provider` traits.

pub mod answer;
pub mod links;
pub mod receiver;
pub mod reload;
pub mod stage;
pub mod worker;
