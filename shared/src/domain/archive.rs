//! Archived outputs (issue 22, first part): where an output's copy lives in the
//! archive bucket, and what the event says of it.
//!
//! A copy's key is `<prefix>/<provider>/<job_id>/<index><ext>`: one key per output, so a
//! retried copy writes the same object (and a conditional completion refuses a second).
//! Job ids are the provider's, hence hostile: a key part is percent-escaped so that no id
//! can climb out of its folder or name another job's object.

use serde::{Deserialize, Serialize};

/// The longest key S3 takes, in bytes.
pub const MAX_KEY_BYTES: usize = 1024;

/// What the event's output says of its archived copy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchivedCopy {
    /// The bucket.
    pub bucket: String,
    /// The object's key ([`object_key`]).
    pub key: String,
    /// Its size in bytes.
    pub bytes: u64,
    /// The SHA-256 of its bytes, hex (computed while copying).
    pub sha256: String,
    /// The `Content-Type` the provider served it with.
    pub content_type: String,
}

/// Why an output has no archived copy (its event carries `archive_error`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ArchiveError {
    /// The provider no longer serves the file (404, 410).
    Gone,
    /// The file is larger than `ArchiveMaxBytes`.
    TooLarge,
    /// Its content type is not on the allow-list.
    TypeNotAllowed,
    /// S3 refused the copy for good.
    Refused,
}

impl ArchiveError {
    /// The word events carry.
    pub fn code(self) -> &'static str {
        match self {
            Self::Gone => "gone",
            Self::TooLarge => "too_large",
            Self::TypeNotAllowed => "type_not_allowed",
            Self::Refused => "refused",
        }
    }
}

/// The key of output `index` of `provider`'s job `job_id` under `prefix`, with the
/// extension its content type (or else its URL's path) names; `None` when it would be
/// longer than S3 allows.
pub fn object_key(
    prefix: &str,
    provider: &str,
    job_id: &str,
    index: usize,
    content_type: Option<&str>,
    url: &str,
) -> Option<String> {
    let ext = content_type.and_then(extension_of_type).or_else(|| extension_of_url(url)).unwrap_or("");
    let mut key = String::new();
    let prefix = prefix.trim_matches('/');
    if !prefix.is_empty() {
        key.push_str(prefix);
        key.push('/');
    }
    key.push_str(&escaped(provider));
    key.push('/');
    key.push_str(&escaped(job_id));
    key.push('/');
    key.push_str(&index.to_string());
    key.push_str(ext);
    (key.len() <= MAX_KEY_BYTES).then_some(key)
}

/// `part` with every byte but ASCII letters, digits, `-`, `_` and `.` percent-escaped,
/// and a part of dots only (`.`, `..`) escaped whole: one folder name, whatever it was,
/// and never another part's.
fn escaped(part: &str) -> String {
    let keep = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.');
    let dots_only = !part.is_empty() && part.bytes().all(|b| b == b'.');
    let mut out = String::with_capacity(part.len());
    for b in part.bytes() {
        if keep(b) && !dots_only {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    // An empty part becomes a lone `%`, which no escaped part can be (every `%` escaping
    // writes is followed by two hex digits).
    if out.is_empty() {
        out.push('%');
    }
    out
}

/// The extension of a media type genhook archives (parameters ignored), with its dot.
fn extension_of_type(content_type: &str) -> Option<&'static str> {
    let essence = content_type.split(';').next()?.trim().to_ascii_lowercase();
    Some(match essence.as_str() {
        "image/png" => ".png",
        "image/jpeg" | "image/jpg" => ".jpg",
        "image/webp" => ".webp",
        "image/gif" => ".gif",
        "video/mp4" => ".mp4",
        "video/quicktime" => ".mov",
        "video/webm" => ".webm",
        "audio/mpeg" => ".mp3",
        "audio/wav" | "audio/x-wav" => ".wav",
        "audio/ogg" => ".ogg",
        _ => return None,
    })
}

/// The extension of a URL's last path segment when it is one genhook knows, with its dot.
fn extension_of_url(url: &str) -> Option<&'static str> {
    let path = url::Url::parse(url).ok()?.path().to_ascii_lowercase();
    let ext = path.rsplit('/').next()?.rsplit_once('.')?.1.to_string();
    Some(match ext.as_str() {
        "png" => ".png",
        "jpg" | "jpeg" => ".jpg",
        "webp" => ".webp",
        "gif" => ".gif",
        "mp4" => ".mp4",
        "mov" => ".mov",
        "webm" => ".webm",
        "mp3" => ".mp3",
        "wav" => ".wav",
        "ogg" => ".ogg",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn keys_name_the_output_and_its_type() {
        let key = |ct, url| object_key("archive/", "replicate", "p1", 0, ct, url);
        assert_eq!(key(Some("image/png"), "https://x/a"), Some("archive/replicate/p1/0.png".into()));
        assert_eq!(key(Some("video/mp4; codecs=avc1"), "https://x/a.bin"), Some("archive/replicate/p1/0.mp4".into()));
        // No known type: the URL's extension, else none.
        assert_eq!(
            key(Some("application/octet-stream"), "https://x/out.WEBP?sig=1"),
            Some("archive/replicate/p1/0.webp".into())
        );
        assert_eq!(key(None, "https://x/out"), Some("archive/replicate/p1/0".into()));
        assert_eq!(object_key("", "katalo", "j", 3, None, "https://x/y.jpeg"), Some("katalo/j/3.jpg".into()));
        assert_eq!(object_key("a", "katalo", &"j".repeat(MAX_KEY_BYTES), 0, None, "https://x"), None);
    }

    #[test]
    fn hostile_ids_stay_in_their_folder() {
        for (id, want) in [
            ("../other", "..%2Fother"),
            ("..", "%2E%2E"),
            (".", "%2E"),
            ("a/b", "a%2Fb"),
            ("", "%"),
            ("\u{0}", "%00"),
            ("é", "%C3%A9"),
        ] {
            assert_eq!(
                object_key("p", "katalo", id, 0, None, "https://x"),
                Some(format!("p/katalo/{want}/0")),
                "{id:?}"
            );
        }
    }

    proptest! {
        /// Distinct (provider, job, index) never share a key, and a key has exactly the
        /// folders it should.
        #[test]
        fn keys_are_one_to_one(a in ".{0,12}", b in ".{0,12}", i in 0usize..3, j in 0usize..3) {
            let (ka, kb) = (object_key("p", "katalo", &a, i, None, "https://x"), object_key("p", "katalo", &b, j, None, "https://x"));
            if (a.as_str(), i) != (b.as_str(), j) {
                prop_assert_ne!(&ka, &kb);
            }
            if let Some(k) = ka {
                prop_assert_eq!(k.split('/').count(), 4);
                prop_assert!(!k.split('/').any(|part| part == ".." || part == "."));
            }
        }
    }
}
