//! Output links: capability URLs that stand for one output of one job,
//! `{base}/outputs/{provider}/{job_id}/{index}?token={t}[&expires={epoch s}]`. Following
//! one answers a redirect to a freshly signed provider URL, so a link outlives the
//! provider's URLs (and, without a lifetime, never expires).
//!
//! The token is the lowercase hex HMAC-SHA256, under the link secret, of
//! `genhook-link-v1 || 0x00 || u64be(len provider) || provider || u64be(len job_id) ||
//! job_id || u64be(index) || (0x00 | 0x01 || i64be(expires))`: every field is
//! length-prefixed or fixed-width, so no bytes can move from one field to another, and
//! a link minted without an expiry never verifies with one appended (nor the reverse).
//!
//! A link is bound to the expiry it was minted with; changing the lifetime does not
//! touch links already out. Rotating the secret revokes every link.

use std::time::Duration;

use hmac::Mac;
use time::OffsetDateTime;
use url::Url;

use crate::domain::clock::secs_ceil;
use crate::domain::event::NormalizedEvent;
use crate::domain::link_cache::{MAX_JOB_ID_BYTES, valid_provider};
use crate::toolkit::auth::hmac::{HmacKey, HmacSecrets, HmacSha256};

/// The first path segment of every link.
pub const ROUTE: &str = "outputs";
/// The query parameter carrying the token.
pub const TOKEN_PARAM: &str = "token";
/// The query parameter carrying the expiry (epoch seconds).
pub const EXPIRES_PARAM: &str = "expires";
/// Output indexes are below this.
pub const MAX_INDEX: usize = 1000;
/// Length of a token: hex of a 32-byte MAC.
pub const TOKEN_LEN: usize = 64;

/// What is signed before the fields.
const DOMAIN: &[u8] = b"genhook-link-v1\0";
/// The longest request path or query parsed (a maximal link's path is under 850 bytes).
const MAX_PATH_LEN: usize = 1024;
const MAX_QUERY_LEN: usize = 1024;

/// A link secret that cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LinkSignerError {
    /// The secret is empty.
    #[error("the link secret is empty")]
    EmptySecret,
}

/// Why a link is refused. The HTTP answer should not say which beyond "expired"; the
/// reason is for logs and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    /// Not a link: wrong path, bad segment, missing, repeated or malformed token or expiry.
    #[error("malformed link")]
    Malformed,
    /// Well-formed, but the token was not minted for these fields under this secret.
    #[error("link token does not match")]
    Forged,
    /// Genuine, but past its expiry.
    #[error("link expired")]
    Expired,
}

/// Mints and checks output links under one secret. `Debug` never prints the secret.
#[derive(Clone)]
pub struct LinkSigner {
    secrets: HmacSecrets,
    lifetime: Option<Duration>,
}

impl std::fmt::Debug for LinkSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkSigner").field("secret", &"<redacted>").field("lifetime", &self.lifetime).finish()
    }
}

impl LinkSigner {
    /// A signer with `secret`; links expire `lifetime` after they are minted (counted
    /// in whole seconds, rounded up), or never when it is `None`.
    pub fn new(secret: &[u8], lifetime: Option<Duration>) -> Result<Self, LinkSignerError> {
        if secret.is_empty() {
            return Err(LinkSignerError::EmptySecret);
        }
        Ok(Self { secrets: HmacSecrets::new(secret, None), lifetime })
    }

    /// The same signer, also accepting links minted under `previous` secrets (a
    /// rotation: new links are minted under the current secret only). Empty ones are
    /// ignored.
    pub fn accepting(self, previous: impl IntoIterator<Item = Vec<u8>>) -> Self {
        let mut previous = previous.into_iter().filter(|p| !p.is_empty()).map(|p| HmacKey::new(&p)).peekable();
        if previous.peek().is_none() {
            return self;
        }
        let current = self.secrets.current().clone();
        Self { secrets: HmacSecrets::from_keys(current, previous.collect()), ..self }
    }

    /// The link to output `index` of `job_id` under `base` (the API's root, any path
    /// prefix such as a stage kept, its query dropped), minted at `now`.
    ///
    /// `None` when `base` is not an http(s) URL that can take a path, the provider name
    /// is not 1-32 of `[a-z0-9_-]`, `index` is not below [`MAX_INDEX`], or the job id
    /// cannot travel as one path segment: empty, over 256 bytes, `.` or `..` (URLs
    /// drop those segments), or holding a tab, CR or LF (URLs drop those characters).
    pub fn link(&self, base: &Url, provider: &str, job_id: &str, index: usize, now: OffsetDateTime) -> Option<String> {
        if !valid_provider(provider) || !linkable_job_id(job_id) || index >= MAX_INDEX {
            return None;
        }
        if base.cannot_be_a_base() || !matches!(base.scheme(), "http" | "https") {
            return None;
        }
        let expires = self.expires_at(now);
        let mut url = base.clone();
        url.set_fragment(None);
        url.set_query(None);
        url.path_segments_mut().ok()?.pop_if_empty().extend([ROUTE, provider, job_id, &index.to_string()]);
        {
            let mut query = url.query_pairs_mut();
            query.append_pair(TOKEN_PARAM, &self.token(provider, job_id, index, expires));
            if let Some(e) = expires {
                query.append_pair(EXPIRES_PARAM, &e.to_string());
            }
        }
        Some(url.into())
    }

    /// Checks a link's fields at `now`: the token (constant-time) first, then the expiry
    /// (expired when `now >= expires`).
    pub fn verify(
        &self,
        provider: &str,
        job_id: &str,
        index: usize,
        token: &str,
        expires: Option<i64>,
        now: OffsetDateTime,
    ) -> Result<(), LinkError> {
        if !valid_provider(provider) || !linkable_job_id(job_id) || index >= MAX_INDEX {
            return Err(LinkError::Malformed);
        }
        let tag = decode_token(token)?;
        if !self.secrets.matches_with(fields(provider, job_id, index, expires), &tag) {
            return Err(LinkError::Forged);
        }
        match expires {
            Some(e) if now.unix_timestamp() >= e => Err(LinkError::Expired),
            _ => Ok(()),
        }
    }

    /// [`Self::verify`] on a parsed request.
    pub fn verify_request(&self, request: &LinkRequest, now: OffsetDateTime) -> Result<(), LinkError> {
        self.verify(&request.provider, &request.job_id, request.index, &request.token, request.expires, now)
    }

    /// When a link minted at `now` expires (epoch s), saturating; `None` without a lifetime.
    fn expires_at(&self, now: OffsetDateTime) -> Option<i64> {
        let lifetime = self.lifetime?;
        Some(now.unix_timestamp().saturating_add(secs_ceil(lifetime)))
    }

    fn token(&self, provider: &str, job_id: &str, index: usize, expires: Option<i64>) -> String {
        hex::encode(self.secrets.current().mac_with(fields(provider, job_id, index, expires)))
    }
}

/// Writes a link's fields into the MAC, each length-prefixed or fixed-width (see the
/// module's documentation).
fn fields<'a>(provider: &'a str, job_id: &'a str, index: usize, expires: Option<i64>) -> impl Fn(&mut HmacSha256) + 'a {
    move |mac| {
        mac.update(DOMAIN);
        for field in [provider.as_bytes(), job_id.as_bytes()] {
            mac.update(&u64::try_from(field.len()).unwrap_or(u64::MAX).to_be_bytes());
            mac.update(field);
        }
        mac.update(&u64::try_from(index).unwrap_or(u64::MAX).to_be_bytes());
        match expires {
            None => mac.update(&[0]),
            Some(e) => {
                mac.update(&[1]);
                mac.update(&e.to_be_bytes());
            }
        }
    }
}

/// Puts links on published events' outputs: the signer and the root of the API that
/// serves them (`GENHOOK_PUBLIC_URL`). `Debug` never prints the secret.
#[derive(Debug, Clone)]
pub struct LinkMinter {
    signer: LinkSigner,
    base: Url,
}

/// A public URL links cannot be minted under.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0} is not an http(s) URL that can take a path")]
pub struct BaseUrlError(String);

impl LinkMinter {
    /// Mints under `base` (any path prefix, such as a stage, is kept; a query dropped).
    pub fn new(signer: LinkSigner, base: &str) -> Result<Self, BaseUrlError> {
        let bad = || BaseUrlError(crate::toolkit::http::redact::redact(base));
        let base = Url::parse(base).map_err(|_| bad())?;
        if base.cannot_be_a_base() || !matches!(base.scheme(), "http" | "https") {
            return Err(bad());
        }
        Ok(Self { signer, base })
    }

    /// Sets each output's `link` (output `i` of the event's job), minted at `now`. An
    /// output whose link cannot be minted (a job id no URL segment can carry) has none.
    pub fn add_links(&self, event: &mut NormalizedEvent, now: OffsetDateTime) {
        for (index, output) in event.outputs.iter_mut().enumerate() {
            output.link = self.signer.link(&self.base, &event.provider, &event.job_id, index, now);
        }
    }
}

/// Whether a job id survives a trip through one URL path segment (see [`LinkSigner::link`]).
fn linkable_job_id(job_id: &str) -> bool {
    !job_id.is_empty()
        && job_id.len() <= MAX_JOB_ID_BYTES
        && !matches!(job_id, "." | "..")
        && !job_id.contains(['\t', '\n', '\r'])
}

/// The MAC in a token: exactly [`TOKEN_LEN`] hex digits (either case), checked before
/// decoding.
fn decode_token(token: &str) -> Result<[u8; 32], LinkError> {
    if token.len() != TOKEN_LEN {
        return Err(LinkError::Malformed);
    }
    let mut tag = [0u8; 32];
    hex::decode_to_slice(token, &mut tag).map_err(|_| LinkError::Malformed)?;
    Ok(tag)
}

/// A link as requested: its path and query, parsed but not yet verified.
#[derive(Clone, PartialEq, Eq)]
pub struct LinkRequest {
    /// The provider name.
    pub provider: String,
    /// The job id (percent-decoded).
    pub job_id: String,
    /// The output's index.
    pub index: usize,
    /// The token (a credential: `Debug` does not print it).
    pub token: String,
    /// The expiry (epoch s), when the link has one.
    pub expires: Option<i64>,
}

impl std::fmt::Debug for LinkRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkRequest")
            .field("provider", &self.provider)
            .field("job_id", &self.job_id)
            .field("index", &self.index)
            .field("token", &"<redacted>")
            .field("expires", &self.expires)
            .finish()
    }
}

impl LinkRequest {
    /// Parses a request's raw (percent-encoded) path, `/outputs/{provider}/{job_id}/{index}`
    /// exactly (any stage prefix of the base already removed), and its query, `token=..`
    /// and optionally `expires=..` (other parameters are ignored, within a query of at
    /// most 1 KiB; a repeated token or expiry is malformed). Each field is held to what
    /// [`LinkSigner::link`] mints, so anything else is [`LinkError::Malformed`].
    pub fn parse(path: &str, query: Option<&str>) -> Result<Self, LinkError> {
        if path.len() > MAX_PATH_LEN {
            return Err(LinkError::Malformed);
        }
        let rest = path.strip_prefix('/').and_then(|p| p.strip_prefix(ROUTE)).and_then(|p| p.strip_prefix('/'));
        let mut segments = rest.ok_or(LinkError::Malformed)?.split('/');
        let mut next = || segments.next().ok_or(LinkError::Malformed).and_then(percent_decode);
        let (provider, job_id, index) = (next()?, next()?, next()?);
        if segments.next().is_some() || !valid_provider(&provider) || !linkable_job_id(&job_id) {
            return Err(LinkError::Malformed);
        }
        let index = parse_index(&index)?;
        let (token, expires) = parse_query(query.unwrap_or_default())?;
        Ok(Self { provider, job_id, index, token, expires })
    }
}

/// A canonical decimal index below [`MAX_INDEX`] (no sign, no leading zero).
fn parse_index(s: &str) -> Result<usize, LinkError> {
    let canonical =
        (1..=3).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'));
    match s.parse::<usize>() {
        Ok(index) if canonical && index < MAX_INDEX => Ok(index),
        _ => Err(LinkError::Malformed),
    }
}

/// The token and optional expiry from a query string.
fn parse_query(query: &str) -> Result<(String, Option<i64>), LinkError> {
    if query.len() > MAX_QUERY_LEN {
        return Err(LinkError::Malformed);
    }
    let (mut token, mut expires) = (None, None);
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        let slot = match k.as_ref() {
            TOKEN_PARAM => &mut token,
            EXPIRES_PARAM => &mut expires,
            _ => continue,
        };
        if slot.replace(v).is_some() {
            return Err(LinkError::Malformed);
        }
    }
    let token = token.ok_or(LinkError::Malformed)?;
    decode_token(&token)?;
    let expires = expires.map(|e| parse_epoch(&e)).transpose()?;
    Ok((token.into_owned(), expires))
}

/// Epoch seconds as minted: an optional `-` and 1-19 digits that fit an `i64`.
fn parse_epoch(s: &str) -> Result<i64, LinkError> {
    let digits = s.strip_prefix('-').unwrap_or(s);
    if digits.is_empty() || digits.len() > 19 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(LinkError::Malformed);
    }
    s.parse::<i64>().map_err(|_| LinkError::Malformed)
}

/// A path segment percent-decoded: `%` must start two hex digits, and the result must
/// be UTF-8.
fn percent_decode(segment: &str) -> Result<String, LinkError> {
    let mut out = Vec::with_capacity(segment.len());
    let mut bytes = segment.bytes();
    while let Some(b) = bytes.next() {
        if b == b'%' {
            let hi = bytes.next().and_then(hex_digit).ok_or(LinkError::Malformed)?;
            let lo = bytes.next().and_then(hex_digit).ok_or(LinkError::Malformed)?;
            out.push((hi << 4) | lo);
        } else {
            out.push(b);
        }
    }
    String::from_utf8(out).map_err(|_| LinkError::Malformed)
}

fn hex_digit(b: u8) -> Option<u8> {
    char::from(b).to_digit(16).and_then(|d| u8::try_from(d).ok())
}

#[cfg(test)]
mod tests;
