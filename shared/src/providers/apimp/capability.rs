//! Capability callback URLs. Most upstreams do not sign their callbacks and APIMP
//! forwards our URL as-is, so the URL itself is the credential: its query carries the
//! caller's reference and an HMAC of (upstream, reference) under `APIMP_CALLBACK_SECRET`.
//! A URL minted for one upstream does not work on another's route.

use url::Url;

use crate::toolkit::auth::hmac::{HmacSecrets, SignatureError};

use super::ROUTE_PREFIX;
use super::upstream::Upstream;

/// The query parameter carrying the caller's reference.
pub const REF_PARAM: &str = "ref";
/// The query parameter carrying the token.
pub const TOKEN_PARAM: &str = "token";
/// Longest reference accepted (it travels in a URL and in dedupe keys).
pub const MAX_REF_LEN: usize = 200;

/// Why a callback URL cannot be minted or its token is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CapabilityError {
    /// The base URL is not an http(s) URL.
    #[error("the base URL must be an http(s) URL such as https://abc.execute-api.us-east-1.amazonaws.com")]
    BadBase,
    /// The reference is empty, too long or has characters outside `[A-Za-z0-9._:-]`.
    #[error("the reference must be 1-200 characters of A-Z a-z 0-9 . _ : -")]
    BadReference,
    /// No reference in the callback URL.
    #[error("the callback URL carries no reference")]
    MissingReference,
    /// The token is missing or wrong.
    #[error("callback token: {0}")]
    Token(SignatureError),
}

fn message(upstream: Upstream, reference: &str) -> Vec<u8> {
    format!("genhook/apimp-callback/v1\n{upstream}\n{reference}").into_bytes()
}

/// Whether a reference is usable: 1–200 characters of `[A-Za-z0-9._:-]`.
pub fn valid_reference(reference: &str) -> bool {
    !reference.is_empty()
        && reference.len() <= MAX_REF_LEN
        && reference.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

/// The callback URL for `upstream` and `reference` under `base_url` (the API's root,
/// with or without a stage path): `{base}/webhooks/apimp/{upstream}?ref=..&token=..`.
pub fn mint_callback_url(
    base_url: &str,
    upstream: Upstream,
    reference: &str,
    secrets: &HmacSecrets,
) -> Result<String, CapabilityError> {
    if !valid_reference(reference) {
        return Err(CapabilityError::BadReference);
    }
    let mut url = Url::parse(base_url).map_err(|_| CapabilityError::BadBase)?;
    if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() {
        return Err(CapabilityError::BadBase);
    }
    let route = format!("{}{}", ROUTE_PREFIX.trim_start_matches('/'), upstream);
    {
        let mut segments = url.path_segments_mut().map_err(|_| CapabilityError::BadBase)?;
        segments.pop_if_empty();
        segments.extend(route.split('/'));
    }
    url.set_query(None);
    url.query_pairs_mut()
        .append_pair(REF_PARAM, reference)
        .append_pair(TOKEN_PARAM, &secrets.sign_hex(&message(upstream, reference)));
    Ok(url.into())
}

/// Checks a callback's query string; returns the reference when its token is valid for
/// this upstream (constant-time, current or previous secret).
pub fn verify_query(query: Option<&str>, upstream: Upstream, secrets: &HmacSecrets) -> Result<String, CapabilityError> {
    let (mut reference, mut token) = (None, None);
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match k.as_ref() {
            REF_PARAM => reference = Some(v.into_owned()),
            TOKEN_PARAM => token = Some(v.into_owned()),
            _ => {}
        }
    }
    let reference = reference.filter(|r| valid_reference(r)).ok_or(CapabilityError::MissingReference)?;
    secrets.verify_hex(&message(upstream, &reference), token.as_deref()).map_err(CapabilityError::Token)?;
    Ok(reference)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets() -> HmacSecrets {
        HmacSecrets::new("apimp-secret-current", Some(b"apimp-secret-old".to_vec()))
    }

    fn query(url: &str) -> String {
        Url::parse(url).unwrap().query().unwrap().to_string()
    }

    #[test]
    fn minted_urls_verify_on_their_own_route_only() {
        let url = mint_callback_url("https://abc.example.com/prod/", Upstream::Kling, "order-42", &secrets()).unwrap();
        assert!(url.starts_with("https://abc.example.com/prod/webhooks/apimp/kling?ref=order-42&token="), "{url}");
        assert_eq!(verify_query(Some(&query(&url)), Upstream::Kling, &secrets()).unwrap(), "order-42");
        assert_eq!(
            verify_query(Some(&query(&url)), Upstream::Vidu, &secrets()),
            Err(CapabilityError::Token(SignatureError::Mismatch))
        );
    }

    #[test]
    fn rotation_accepts_urls_minted_under_the_previous_secret() {
        let old = HmacSecrets::new("apimp-secret-old", None);
        let url = mint_callback_url("http://127.0.0.1:8080", Upstream::Vidu, "r1", &old).unwrap();
        assert_eq!(verify_query(Some(&query(&url)), Upstream::Vidu, &secrets()).unwrap(), "r1");
        let stranger = HmacSecrets::new("someone-else", None);
        assert!(verify_query(Some(&query(&url)), Upstream::Vidu, &stranger).is_err());
    }

    #[test]
    fn bad_inputs_say_what_is_wrong() {
        assert_eq!(mint_callback_url("ftp://x", Upstream::Kling, "r", &secrets()), Err(CapabilityError::BadBase));
        assert_eq!(
            mint_callback_url("https://x", Upstream::Kling, "a b", &secrets()),
            Err(CapabilityError::BadReference)
        );
        assert_eq!(mint_callback_url("https://x", Upstream::Kling, "", &secrets()), Err(CapabilityError::BadReference));
        assert_eq!(verify_query(None, Upstream::Kling, &secrets()), Err(CapabilityError::MissingReference));
        assert_eq!(
            verify_query(Some("ref=r1"), Upstream::Kling, &secrets()),
            Err(CapabilityError::Token(SignatureError::Missing))
        );
        assert_eq!(
            verify_query(Some("ref=r1&token=zz"), Upstream::Kling, &secrets()),
            Err(CapabilityError::Token(SignatureError::Malformed))
        );
    }
}
