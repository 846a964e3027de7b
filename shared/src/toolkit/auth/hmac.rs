//! HMAC-SHA256, the one primitive every scheme of genhook's is built on: a key
//! ([`HmacKey`]), the set of secrets a verifier accepts during a rotation ([`HmacSecrets`]:
//! the current one and any previous ones, all tried in constant time), and hex webhook
//! signatures over the exact raw request body.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// HMAC-SHA256's state, as [`HmacKey::mac_with`] hands it to a message's writer.
pub type HmacSha256 = Hmac<Sha256>;

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

/// One HMAC-SHA256 key, kept as its keyed state (the key's inner and outer pads already
/// hashed), so a MAC costs the message's blocks and the finalization only. `Debug` never
/// prints it.
#[derive(Clone)]
pub struct HmacKey(HmacSha256);

impl std::fmt::Debug for HmacKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HmacKey(<redacted>)")
    }
}

impl HmacKey {
    /// The key `secret` (any length: HMAC hashes long keys and pads short ones).
    pub fn new(secret: &[u8]) -> Self {
        Self(keyed(secret))
    }

    /// The MAC of the message `feed` writes into the state (its parts in order, e.g. a
    /// scheme's fields with their separators).
    pub fn mac_with(&self, feed: impl FnOnce(&mut HmacSha256)) -> [u8; 32] {
        let mut state = self.0.clone();
        feed(&mut state);
        state.finalize().into_bytes().into()
    }

    /// The MAC of `message`.
    pub fn mac(&self, message: &[u8]) -> [u8; 32] {
        self.mac_with(|m| m.update(message))
    }
}

/// The secrets a verifier accepts: the current one, which signs, and any number of
/// previous ones, accepted during a rotation so it never drops deliveries (or links).
/// Every check tries every secret in constant time. `Debug` shows only how many there
/// are.
#[derive(Clone)]
pub struct HmacSecrets {
    current: HmacKey,
    previous: Vec<HmacKey>,
}

impl std::fmt::Debug for HmacSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HmacSecrets({} secret(s), redacted)", self.len())
    }
}

impl HmacSecrets {
    /// The current secret and the previous ones (empty previous secrets are ignored).
    pub fn new(current: impl AsRef<[u8]>, previous: impl IntoIterator<Item = Vec<u8>>) -> Self {
        let previous = previous.into_iter().filter(|p| !p.is_empty()).map(|p| HmacKey::new(&p)).collect();
        Self::from_keys(HmacKey::new(current.as_ref()), previous)
    }

    /// The set of keys already made, the current one first.
    pub fn from_keys(current: HmacKey, previous: Vec<HmacKey>) -> Self {
        Self { current, previous }
    }

    /// The current secret: the one that signs.
    pub fn current(&self) -> &HmacKey {
        &self.current
    }

    /// Every secret, the current one first.
    pub fn keys(&self) -> impl Iterator<Item = &HmacKey> {
        std::iter::once(&self.current).chain(&self.previous)
    }

    /// How many secrets are accepted (at least one).
    pub fn len(&self) -> usize {
        self.previous.len().saturating_add(1)
    }

    /// Always `false`: there is at least one secret.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Whether `tag` is the MAC, under some secret, of the message `feed` writes. Every
    /// secret is tried, so timing does not reveal which one matched.
    pub fn matches_with(&self, feed: impl Fn(&mut HmacSha256), tag: &[u8]) -> bool {
        let mut ok = subtle::Choice::from(0);
        for key in self.keys() {
            ok |= key.mac_with(&feed).ct_eq(tag);
        }
        bool::from(ok)
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
        // Every secret is tried, so timing does not reveal which one matched. The current
        // secret's MAC is the one returned, so it is computed once.
        let ours = self.tag_of(message);
        let mut ok = ours.0.ct_eq(tag);
        for previous in &self.previous {
            ok |= previous.mac(message).ct_eq(tag);
        }
        if bool::from(ok) { Ok(ours) } else { Err(SignatureError::Mismatch) }
    }

    /// The raw HMAC-SHA256 tag of `message` under the current secret.
    pub fn tag(&self, message: &[u8]) -> Vec<u8> {
        self.tag_of(message).0.to_vec()
    }

    fn tag_of(&self, message: &[u8]) -> Tag {
        Tag(self.current.mac(message))
    }
}

fn keyed(secret: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length (long ones are hashed): this never fails, and the
    // key is our configuration, never request data.
    HmacSha256::new_from_slice(secret).expect("HMAC accepts keys of any length")
}

/// Lowercase hex HMAC-SHA256 of `body` under `secret`.
pub fn sign_hex(secret: &[u8], body: &[u8]) -> String {
    hex::encode(HmacKey::new(secret).mac(body))
}

/// Raw HMAC-SHA256 bytes of `message` under `secret` (for URL tokens and other schemes).
pub fn hmac_sha256(secret: &[u8], message: &[u8]) -> [u8; 32] {
    HmacKey::new(secret).mac(message)
}

#[cfg(test)]
mod tests;
