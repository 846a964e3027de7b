//! Authentication over raw bytes, all on HMAC-SHA256 with constant-time checks:
//! [`hmac`] (a set of secrets, the current one and any previous ones, and hex
//! signatures), [`standard_webhooks`] (the Standard Webhooks scheme) and [`link_token`]
//! (the output links' capability tokens).

pub mod hmac;
pub mod link_token;
pub mod standard_webhooks;
