//! The Katalo API the end-to-end tests read: the `genhook simulate` API (one fake Katalo
//! for the CLI and the tests), with no rate limit or injected errors, whose jobs the
//! tests script read by read ([`genhook_cli::simulate::script`]); and the job bodies they
//! script.

use std::net::{Ipv4Addr, SocketAddr};

use genhook_cli::simulate::{ApiOptions, KataloSimulator};
use serde_json::{Value, json};
use time::OffsetDateTime;

/// The API key the fake expects.
pub const API_KEY: &str = "test-katalo-api-key";

/// Starts the fake on an ephemeral loopback port; its base URL is `base_url()`.
pub async fn start() -> KataloSimulator {
    let options = ApiOptions { api_key: API_KEY.into(), rate_limit_per_min: 0, ..ApiOptions::default() };
    KataloSimulator::start(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), options)
        .await
        .expect("the fake Katalo API starts")
}

/// An S3 SigV4-style presigned URL signed at `signed_at`, valid for `expires_in` seconds.
pub fn s3_url(object: &str, signed_at: OffsetDateTime, expires_in: i64) -> String {
    let date = format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        signed_at.year(),
        u8::from(signed_at.month()),
        signed_at.day(),
        signed_at.hour(),
        signed_at.minute(),
        signed_at.second()
    );
    format!(
        "https://katalo-outputs.s3.amazonaws.com/{object}?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAEXAMPLE%2F20261123%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date={date}&X-Amz-Expires={expires_in}&X-Amz-SignedHeaders=host&X-Amz-Signature=deadbeef"
    )
}

/// A succeeded job whose one output URL was signed now and lives `ttl` seconds.
pub fn succeeded(job_id: &str, ttl: i64) -> Value {
    json!({
        "job_id": job_id,
        "status": "succeeded",
        "source_asset_id": "src_01JXAMPLE",
        "reference": "listing-123",
        "metadata": {"tenant": "acme"},
        "outputs": [{"url": s3_url(&format!("{job_id}/primary.png"), OffsetDateTime::now_utc(), ttl)}]
    })
}

/// A job in a non-terminal state.
pub fn pending(job_id: &str, status: &str) -> Value {
    json!({"job_id": job_id, "status": status, "outputs": []})
}
