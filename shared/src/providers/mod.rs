//! Providers: one folder each, implementing [`crate::ports::provider::Provider`] (its
//! routes and authentication, its inbox messages, its API and status vocabulary), and
//! [`common`], what several share. A provider depends on the domain, the ports, the
//! toolkit and `common`, never on another provider, an adapter, the engine or the
//! composition root. See `docs/architecture.md`, "Adding a provider".

use crate::ports::provider::Provider;

pub mod apimp;
pub mod common;
pub mod katalo;
pub mod replicate;

/// Every provider genhook knows, in routing order: registering a provider is one line here.
pub static ALL: &[&dyn Provider] = &[&katalo::Katalo, &apimp::Apimp, &replicate::Replicate];

/// The registered provider with this name.
pub fn named(name: &str) -> Option<&'static dyn Provider> {
    ALL.iter().copied().find(|p| p.name() == name)
}

#[cfg(test)]
mod tests;
