//! What several providers share: [`refresh`], the reconciliation of refresh requests.

pub mod refresh;
