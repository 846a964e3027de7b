//! Reading a verified webhook body: a JSON object with some required text fields, and
//! [`WebhookError`], why a provider's webhook reader refused it.

use std::borrow::Cow;

use serde::Deserialize;
use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use serde_json::error::Category;
use serde_json::value::RawValue;

/// Why a verified body is not a usable webhook (answered with 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    /// Not UTF-8 text (JSON must be): the offset of the first byte that is not.
    #[error("body is not UTF-8 text: invalid byte at offset {0}")]
    NotUtf8(usize),
    /// Not JSON at all.
    #[error("body is not valid JSON: {0}")]
    NotJson(String),
    /// JSON, but not an object.
    #[error("body must be a JSON object")]
    NotObject,
    /// A required field is missing, empty or not a string.
    #[error("`{0}` must be a non-empty string")]
    MissingField(&'static str),
    /// A field is longer than genhook accepts.
    #[error("`{0}` is too long")]
    TooLong(&'static str),
}

/// The body as JSON, if it is an object.
pub fn json_object(raw: &[u8]) -> Result<Value, WebhookError> {
    // Checked first so the answer names the real fault: serde_json would report an
    // "invalid unicode code point" or an unexpected character somewhere in the text.
    let text = std::str::from_utf8(raw).map_err(|e| WebhookError::NotUtf8(e.valid_up_to()))?;
    let body: Value = serde_json::from_str(text).map_err(|e| WebhookError::NotJson(e.to_string()))?;
    if body.is_object() { Ok(body) } else { Err(WebhookError::NotObject) }
}

/// The trimmed text of `field`, which must be a non-empty string.
pub fn required_text<'a>(body: &'a Value, field: &'static str) -> Result<&'a str, WebhookError> {
    match body.get(field).and_then(Value::as_str).map(str::trim) {
        Some(s) if !s.is_empty() => Ok(s),
        _ => Err(WebhookError::MissingField(field)),
    }
}

/// A verified body read in one pass without building a DOM: its text (for carrying
/// byte for byte) and the trimmed text of each of `fields`, borrowed from it where no
/// escape had to be undone. The same answers as [`json_object`] + [`required_text`]:
/// not UTF-8, not JSON, not an object, or a field missing, empty or not a string; like a
/// JSON object read into a map, the last of repeated keys counts. Every other value is
/// checked as a DOM parse would check it (numbers in range, escapes that are characters),
/// so the text is refused here rather than by whoever parses it later.
pub fn text_fields<'a, const N: usize>(
    raw: &'a [u8],
    fields: [&'static str; N],
) -> Result<(&'a str, [Cow<'a, str>; N]), WebhookError> {
    let text = std::str::from_utf8(raw).map_err(|e| WebhookError::NotUtf8(e.valid_up_to()))?;
    let mut de = serde_json::Deserializer::from_str(text);
    let found = FieldsSeed(&fields).deserialize(&mut de).and_then(|found| de.end().map(|()| found));
    let found = match found {
        Ok(found) => found,
        // The only type a body can get wrong is the top level's; whether the rest is JSON
        // is only known by reading it (off the accepting path).
        Err(e) if e.classify() == Category::Data => {
            return Err(match serde_json::from_str::<Checked>(text) {
                Ok(_) => WebhookError::NotObject,
                Err(e) => WebhookError::NotJson(e.to_string()),
            });
        }
        Err(e) => return Err(WebhookError::NotJson(e.to_string())),
    };
    // Every value is read (and a DOM's refusals found) before any is found missing.
    let mut values: [Option<Cow<'a, str>>; N] = std::array::from_fn(|_| None);
    for (slot, value) in values.iter_mut().zip(found) {
        *slot = value.map(as_text).transpose()?.flatten();
    }
    let mut out: [Cow<'a, str>; N] = std::array::from_fn(|_| Cow::Borrowed(""));
    for ((slot, value), name) in out.iter_mut().zip(values).zip(fields) {
        *slot = value.filter(|s| !s.is_empty()).ok_or(WebhookError::MissingField(name))?;
    }
    Ok((text, out))
}

/// A field's value, if it is a string: its trimmed text, borrowed when it has no escapes.
/// A value a DOM parse would refuse (a lone surrogate escape, a number out of range) is
/// not JSON.
fn as_text(value: &RawValue) -> Result<Option<Cow<'_, str>>, WebhookError> {
    let not_json = |e: serde_json::Error| WebhookError::NotJson(e.to_string());
    let Some(quoted) = value.get().strip_prefix('"').and_then(|v| v.strip_suffix('"')) else {
        serde_json::from_str::<Checked>(value.get()).map_err(not_json)?;
        return Ok(None);
    };
    if !quoted.contains('\\') {
        // A valid JSON string without escapes is its own text.
        return Ok(Some(Cow::Borrowed(quoted.trim())));
    }
    let text = serde_json::from_str::<String>(value.get()).map_err(not_json)?;
    Ok(Some(Cow::Owned(text.trim().to_string())))
}

/// A JSON value read through and dropped, checked as `serde_json::Value` would check it.
/// (`IgnoredAny` skips faster but lets through what a DOM refuses: a number out of `f64`'s
/// range such as `1e400`, or a lone surrogate escape such as `"\ud800"`.)
struct Checked;

impl<'de> Deserialize<'de> for Checked {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(Checked)
    }
}

impl<'de> Visitor<'de> for Checked {
    type Value = Checked;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_str<E>(self, _: &str) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_unit<E>(self) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Checked, A::Error> {
        while seq.next_element::<Checked>()?.is_some() {}
        Ok(Checked)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Checked, A::Error> {
        while map.next_entry::<Checked, Checked>()?.is_some() {}
        Ok(Checked)
    }
}

/// Which of the wanted fields a key names, read without copying it.
struct KeySeed<'n, const N: usize>(&'n [&'static str; N]);

impl<'de, const N: usize> DeserializeSeed<'de> for KeySeed<'_, N> {
    type Value = Option<usize>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<const N: usize> Visitor<'_> for KeySeed<'_, N> {
    type Value = Option<usize>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E: serde::de::Error>(self, key: &str) -> Result<Self::Value, E> {
        Ok(self.0.iter().position(|name| *name == key))
    }
}

/// Reads a JSON object, keeping the raw value of each wanted field (`None`: absent) and
/// skipping every other value without keeping it.
struct FieldsSeed<'n, const N: usize>(&'n [&'static str; N]);

impl<'de, const N: usize> DeserializeSeed<'de> for FieldsSeed<'_, N> {
    type Value = [Option<&'de RawValue>; N];

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de, const N: usize> Visitor<'de> for FieldsSeed<'_, N> {
    type Value = [Option<&'de RawValue>; N];

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found = [None; N];
        while let Some(wanted) = map.next_key_seed(KeySeed(self.0))? {
            match wanted {
                Some(i) => {
                    let value = map.next_value::<&'de RawValue>()?;
                    if let Some(slot) = found.get_mut(i) {
                        // A repeated field: the value it replaces is checked all the same.
                        if let Some(replaced) = slot.replace(value) {
                            serde_json::from_str::<Checked>(replaced.get()).map_err(serde::de::Error::custom)?;
                        }
                    }
                }
                None => {
                    map.next_value::<Checked>()?;
                }
            }
        }
        Ok(found)
    }
}
