//! `genhook simulate`: a faithful fake Katalo provider (status API + webhook delivery).

use std::process::ExitCode;

/// `genhook simulate` arguments.
#[derive(clap::Args, Debug)]
pub struct SimulateArgs {}

/// What can go wrong in `genhook simulate`.
#[derive(Debug, thiserror::Error)]
pub enum SimulateError {
    /// The API server could not bind its address.
    #[error("cannot listen on {addr}: {source} (pick another --listen address)")]
    Bind {
        /// The address.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
}

/// Runs `genhook simulate`.
pub async fn run(_args: SimulateArgs) -> Result<ExitCode, SimulateError> {
    Ok(ExitCode::SUCCESS)
}
