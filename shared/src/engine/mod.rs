//! The engine: the provider-agnostic steps. [`receiver`] (route → verify → claim →
//! enqueue → acknowledge), [`worker`] (reconcile → publish) and [`links`] (the output
//! links' redirects), with [`answer`], the JSON answers they give over HTTP. It knows
//! providers only through the `ports::provider` traits.

pub mod answer;
pub mod links;
pub mod receiver;
pub mod worker;
