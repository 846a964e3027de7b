//! Standard Webhooks (<https://www.standardwebhooks.com>): the signature scheme Svix,
//! Replicate and others use, verified the way its reference libraries do.
//!
//! A delivery carries three headers: `webhook-id` (the message id, the same on every
//! retry), `webhook-timestamp` (integer Unix seconds of this attempt) and
//! `webhook-signature` (a space-separated list of `v1,<base64>` entries, several during
//! a secret rotation). Each `v1` signature is the base64 HMAC-SHA256 of
//! `{id}.{timestamp}.{body}` under the secret's key bytes; a secret is written
//! `whsec_<base64 of the key>`.
//!
//! [`Secrets::verify`] is hard to misuse: it needs the clock's reading (`now`), checks
//! the timestamp against [`TOLERANCE`] before computing any HMAC, accepts any `v1` entry
//! matching any configured secret (entries of other versions are ignored), compares
//! in constant time, bounds every header it reads, and answers every malformed input
//! with an error, never a panic. Its errors are for logs and tests; an HTTP answer
//! should not say which check failed.

use base64::Engine;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use hmac::Mac;
use subtle::ConstantTimeEq;
use time::OffsetDateTime;

use crate::toolkit::auth::hmac::{HmacKey, HmacSecrets};

/// The message id header.
pub const ID_HEADER: &str = "webhook-id";
/// The attempt timestamp header (integer Unix seconds).
pub const TIMESTAMP_HEADER: &str = "webhook-timestamp";
/// The signature list header.
pub const SIGNATURE_HEADER: &str = "webhook-signature";
/// The prefix of a serialized symmetric secret.
pub const SECRET_PREFIX: &str = "whsec_";
/// The version tag of symmetric (HMAC-SHA256) signatures.
pub const SIGNATURE_VERSION: &str = "v1";
/// How far a delivery's timestamp may be from the receiver's clock, either way (the
/// reference libraries' five minutes; exactly five minutes still passes).
pub const TOLERANCE: time::Duration = time::Duration::minutes(5);
/// The longest `webhook-id` accepted, in bytes (Svix's ids are about 30).
pub const MAX_ID_BYTES: usize = 256;
/// The longest `webhook-signature` header accepted, in bytes.
pub const MAX_SIGNATURE_HEADER_BYTES: usize = 4096;
/// The most entries a `webhook-signature` header may list (of any version).
pub const MAX_SIGNATURES: usize = 16;
/// The longest `webhook-timestamp` accepted: a sign and the 19 digits of an `i64`.
const MAX_TIMESTAMP_BYTES: usize = 20;
/// The length of an HMAC-SHA256 tag.
const TAG_BYTES: usize = 32;

/// Base64 as secrets are written, with or without the trailing `=` padding.
const LENIENT_BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Why a secret cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// Nothing after the optional `whsec_` prefix (or no key bytes).
    #[error("the webhook secret is empty")]
    Empty,
    /// What follows `whsec_` is not base64.
    #[error("the webhook secret is not `whsec_` followed by base64")]
    InvalidBase64,
    /// No secret was given at all.
    #[error("no webhook secret was given")]
    NoSecrets,
}

/// Why a delivery was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// A required header is absent.
    #[error("header `{0}` is missing")]
    MissingHeader(&'static str),
    /// A header is empty, not visible ASCII, too long, or lists too many signatures.
    #[error("header `{0}` is malformed")]
    InvalidHeader(&'static str),
    /// `webhook-timestamp` is not an integer number of seconds.
    #[error("`webhook-timestamp` is not integer Unix seconds")]
    InvalidTimestamp,
    /// The timestamp is more than [`TOLERANCE`] in the past (a replay, or a slow retry).
    #[error("the delivery timestamp is too old")]
    TooOld,
    /// The timestamp is more than [`TOLERANCE`] in the future.
    #[error("the delivery timestamp is too far in the future")]
    TooNew,
    /// No `v1` signature matches any configured secret.
    #[error("no signature matches")]
    NoMatchingSignature,
}

/// What a successful verification vouches for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The `webhook-id`: the same on every retry of a message (an idempotency key).
    pub id: String,
    /// The attempt's `webhook-timestamp`.
    pub timestamp: OffsetDateTime,
}

/// One signing secret (the HMAC key). `Debug` never shows it.
#[derive(Clone)]
pub struct Secret(HmacKey);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl Secret {
    /// Reads `whsec_<base64>`, or bare base64 as the reference libraries also accept
    /// (surrounding whitespace is ignored; padding is optional).
    pub fn parse(secret: &str) -> Result<Self, SecretError> {
        let trimmed = secret.trim();
        let encoded = trimmed.strip_prefix(SECRET_PREFIX).unwrap_or(trimmed);
        if encoded.is_empty() {
            return Err(SecretError::Empty);
        }
        let key = LENIENT_BASE64.decode(encoded).map_err(|_| SecretError::InvalidBase64)?;
        Self::from_bytes(&key)
    }

    /// A secret from raw key bytes (at least one).
    pub fn from_bytes(key: &[u8]) -> Result<Self, SecretError> {
        if key.is_empty() {
            return Err(SecretError::Empty);
        }
        Ok(Self(HmacKey::new(key)))
    }

    /// `v1,<base64 HMAC-SHA256 of {id}.{timestamp}.{body}>`: one `webhook-signature` entry.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let tag = self.tag(id, &timestamp.to_string(), body);
        format!("{SIGNATURE_VERSION},{}", STANDARD.encode(tag))
    }

    /// The three headers of a delivery of `body` signed with this secret.
    pub fn headers(&self, id: &str, timestamp: i64, body: &[u8]) -> [(&'static str, String); 3] {
        [
            (ID_HEADER, id.to_string()),
            (TIMESTAMP_HEADER, timestamp.to_string()),
            (SIGNATURE_HEADER, self.sign(id, timestamp, body)),
        ]
    }

    fn tag(&self, id: &str, timestamp: &str, body: &[u8]) -> [u8; TAG_BYTES] {
        tag(&self.0, id, timestamp, body)
    }
}

/// The HMAC of `{id}.{timestamp}.{body}` under `key`.
fn tag(key: &HmacKey, id: &str, timestamp: &str, body: &[u8]) -> [u8; TAG_BYTES] {
    key.mac_with(|mac| {
        for part in [id.as_bytes(), b".", timestamp.as_bytes(), b".", body] {
            mac.update(part);
        }
    })
}

/// The secrets a receiver accepts: the current one first, then previous ones during a
/// rotation. `Debug` shows only how many there are.
#[derive(Clone)]
pub struct Secrets {
    keys: HmacSecrets,
    current: Secret,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secrets({} secret(s), redacted)", self.len())
    }
}

impl Secrets {
    /// The current secret and any previous ones.
    pub fn new(current: Secret, previous: impl IntoIterator<Item = Secret>) -> Self {
        let keys = HmacSecrets::from_keys(current.0.clone(), previous.into_iter().map(|s| s.0).collect());
        Self { keys, current }
    }

    /// Reads secrets written as for [`Secret::parse`], the current one first. At least
    /// one is needed; any unreadable one is an error (never silently dropped).
    pub fn parse<'a>(secrets: impl IntoIterator<Item = &'a str>) -> Result<Self, SecretError> {
        let mut parsed = secrets.into_iter().map(Secret::parse);
        let current = parsed.next().ok_or(SecretError::NoSecrets)??;
        Ok(Self::new(current, parsed.collect::<Result<Vec<_>, _>>()?))
    }

    /// How many secrets are accepted (at least one).
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Always `false`: there is at least one secret.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The current secret.
    pub fn current(&self) -> &Secret {
        &self.current
    }

    /// One `v1` signature under the current secret (see [`Secret::sign`]).
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        self.current.sign(id, timestamp, body)
    }

    /// A signature under every secret, space-separated: what a sender rotating its
    /// secret puts in `webhook-signature`.
    pub fn sign_all(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let timestamp = timestamp.to_string();
        let signature = |key| format!("{SIGNATURE_VERSION},{}", STANDARD.encode(tag(key, id, &timestamp, body)));
        self.keys.keys().map(signature).collect::<Vec<_>>().join(" ")
    }

    /// Verifies a delivery of the raw `body` at `now`: the three headers present and
    /// well-formed, the timestamp within [`TOLERANCE`] of `now` (checked before any
    /// HMAC), and some `v1` entry equal, in constant time, to the signature under some
    /// secret.
    pub fn verify(&self, headers: &http::HeaderMap, body: &[u8], now: OffsetDateTime) -> Result<Verified, VerifyError> {
        let id = header(headers, ID_HEADER, MAX_ID_BYTES)?;
        let timestamp_text = header(headers, TIMESTAMP_HEADER, MAX_TIMESTAMP_BYTES).map_err(|e| {
            if e == VerifyError::InvalidHeader(TIMESTAMP_HEADER) { VerifyError::InvalidTimestamp } else { e }
        })?;
        let signatures = header(headers, SIGNATURE_HEADER, MAX_SIGNATURE_HEADER_BYTES)?;
        let timestamp = check_timestamp(timestamp_text, now)?;
        let entries: Vec<&str> = signatures.split(' ').filter(|e| !e.is_empty()).collect();
        if entries.len() > MAX_SIGNATURES {
            return Err(VerifyError::InvalidHeader(SIGNATURE_HEADER));
        }
        let expected: Vec<[u8; TAG_BYTES]> = self.keys.keys().map(|k| tag(k, id, timestamp_text, body)).collect();
        let mut matched = subtle::Choice::from(0);
        for entry in entries {
            let Some(tag) = entry.strip_prefix("v1,").and_then(decode_tag) else { continue };
            for want in &expected {
                // No early exit: every entry is compared with every secret's tag.
                matched |= tag.as_slice().ct_eq(want.as_slice());
            }
        }
        if bool::from(matched) {
            Ok(Verified { id: id.to_string(), timestamp })
        } else {
            Err(VerifyError::NoMatchingSignature)
        }
    }
}

/// A header's value: present, visible ASCII (spaces allowed), trimmed, non-empty and at
/// most `max` bytes.
fn header<'h>(headers: &'h http::HeaderMap, name: &'static str, max: usize) -> Result<&'h str, VerifyError> {
    let value = headers.get(name).ok_or(VerifyError::MissingHeader(name))?;
    if value.len() > max.saturating_add(64) {
        // Not even worth trimming.
        return Err(VerifyError::InvalidHeader(name));
    }
    let text = value.to_str().map_err(|_| VerifyError::InvalidHeader(name))?.trim();
    if text.is_empty() || text.len() > max {
        return Err(VerifyError::InvalidHeader(name));
    }
    Ok(text)
}

/// The timestamp as an instant, if it is an integer within [`TOLERANCE`] of `now`.
fn check_timestamp(text: &str, now: OffsetDateTime) -> Result<OffsetDateTime, VerifyError> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(VerifyError::InvalidTimestamp);
    }
    let secs: i64 = text.parse().map_err(|_| VerifyError::InvalidTimestamp)?;
    // Saturating: an `i64::MIN` timestamp is simply very old, `i64::MAX` very new.
    let age = now.unix_timestamp().saturating_sub(secs);
    let tolerance = TOLERANCE.whole_seconds();
    if age > tolerance {
        return Err(VerifyError::TooOld);
    }
    if age < tolerance.saturating_neg() {
        return Err(VerifyError::TooNew);
    }
    OffsetDateTime::from_unix_timestamp(secs).map_err(|_| VerifyError::InvalidTimestamp)
}

/// A `v1` entry's base64 tag, if it decodes to exactly an HMAC-SHA256's length.
fn decode_tag(encoded: &str) -> Option<[u8; TAG_BYTES]> {
    // 32 bytes are 44 base64 characters; anything much longer is not a tag.
    if encoded.len() > 64 {
        return None;
    }
    let bytes = STANDARD.decode(encoded).ok()?;
    <[u8; TAG_BYTES]>::try_from(bytes.as_slice()).ok()
}

#[cfg(test)]
mod tests;
