//! Provider adapters: webhook formats, verification and job APIs, one module each.

pub mod apimp;
pub mod body;
pub mod katalo;
pub mod replicate;
