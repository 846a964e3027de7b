//! Webhook signatures: hex HMAC-SHA256 over the exact raw request body, checked in
//! constant time against the current secret and, during a rotation, the previous one.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// Why a signature was rejected. The HTTP answer never says which (it is always a
/// generic 401); the reason is for logs and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No signature header was sent.
    #[error("signature header missing")]
    Missing,
    /// The header is not a hex string of the length a SHA-256 MAC has.
    #[error("signature is not 64 hex characters")]
    Malformed,
    /// Well-formed, but no configured secret produces it.
    #[error("signature does not match")]
    Mismatch,
}

/// A MAC tag of a verified message: the HMAC-SHA256 of the body under the *current*
/// secret, whichever secret the sender used. Stable across retries of the same body, it
/// doubles as the body's fingerprint (the receiver's same-key-different-body check), so
/// the body is hashed once per delivery.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Tag(pub [u8; 32]);

impl Tag {
    /// Lowercase hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl std::fmt::Debug for Tag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tag({})", self.to_hex())
    }
}

/// A set of HMAC-SHA256 signing secrets: the current one plus an optional previous one,
/// so a provider-side rotation never drops deliveries. `Debug` never prints them.
///
/// Each secret is kept as its keyed HMAC state (the key's inner and outer pads already
/// hashed), so a verification costs the message's blocks and the finalization only.
#[derive(Clone)]
pub struct HmacSecrets {
    current: HmacSha256,
    previous: Option<HmacSha256>,
}

impl std::fmt::Debug for HmacSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HmacSecrets({} secret(s), redacted)", 1 + usize::from(self.previous.is_some()))
    }
}

impl HmacSecrets {
    /// Builds the set from the current secret and an optional previous one; empty
    /// previous secrets are ignored.
    pub fn new(current: impl AsRef<[u8]>, previous: Option<Vec<u8>>) -> Self {
        Self { current: keyed(current.as_ref()), previous: previous.filter(|p| !p.is_empty()).map(|p| keyed(&p)) }
    }

    /// Lowercase hex HMAC-SHA256 of `body` under the current secret.
    pub fn sign_hex(&self, body: &[u8]) -> String {
        self.tag_of(body).to_hex()
    }

    /// Verifies a hex signature header (either case, surrounding whitespace ignored,
    /// an optional `sha256=` prefix tolerated) over the raw `body`; the verified body's
    /// [`Tag`] under the current secret.
    pub fn verify_hex(&self, body: &[u8], header: Option<&str>) -> Result<Tag, SignatureError> {
        let header = header.ok_or(SignatureError::Missing)?.trim();
        let header = header.strip_prefix("sha256=").unwrap_or(header);
        if header.is_empty() {
            return Err(SignatureError::Missing);
        }
        let mut tag = [0u8; 32];
        hex::decode_to_slice(header, &mut tag).map_err(|_| SignatureError::Malformed)?;
        self.verify_tag(body, &tag)
    }

    /// Verifies a raw HMAC-SHA256 tag (already decoded from hex, base64...) over `message`
    /// in constant time against every secret; the message's [`Tag`] under the current
    /// secret.
    pub fn verify_tag(&self, message: &[u8], tag: &[u8]) -> Result<Tag, SignatureError> {
        // Every secret is tried, so timing does not reveal which one matched.
        let ours = self.tag_of(message);
        let mut ok = ours.0.ct_eq(tag);
        if let Some(previous) = &self.previous {
            let theirs: [u8; 32] = previous.clone().chain_update(message).finalize().into_bytes().into();
            ok |= theirs.ct_eq(tag);
        }
        if bool::from(ok) { Ok(ours) } else { Err(SignatureError::Mismatch) }
    }

    /// The raw HMAC-SHA256 tag of `message` under the current secret.
    pub fn tag(&self, message: &[u8]) -> Vec<u8> {
        self.tag_of(message).0.to_vec()
    }

    fn tag_of(&self, message: &[u8]) -> Tag {
        Tag(self.current.clone().chain_update(message).finalize().into_bytes().into())
    }
}

fn keyed(secret: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length (long ones are hashed): this never fails, and the
    // key is our configuration, never request data.
    HmacSha256::new_from_slice(secret).expect("HMAC accepts keys of any length")
}

fn mac(secret: &[u8], body: &[u8]) -> HmacSha256 {
    keyed(secret).chain_update(body)
}

/// Lowercase hex HMAC-SHA256 of `body` under `secret`.
pub fn sign_hex(secret: &[u8], body: &[u8]) -> String {
    hex::encode(mac(secret, body).finalize().into_bytes())
}

/// Raw HMAC-SHA256 bytes of `message` under `secret` (for URL tokens and other schemes).
pub fn hmac_sha256(secret: &[u8], message: &[u8]) -> [u8; 32] {
    mac(secret, message).finalize().into_bytes().into()
}

#[cfg(test)]
mod tests;
