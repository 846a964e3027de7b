//! What a delivery must be for genhook to carry it to the end: checked once, at the
//! receiver, so nothing is acknowledged that a later step (DynamoDB's key limit, SQS's
//! character set, the worker's JSON parser) would refuse forever.

/// The longest provider id (job id, task id) accepted, in bytes: dedupe keys built from
/// it stay far under DynamoDB's 2,048-byte partition key limit.
pub const MAX_ID_BYTES: usize = 512;

/// The longest event type or status word accepted, in bytes.
pub const MAX_KIND_BYTES: usize = 128;

/// The deepest JSON nesting accepted in a body. The inbox message and the published
/// event each wrap the body a level or two deeper, and serde_json refuses more than 128.
pub const MAX_JSON_DEPTH: usize = 64;

/// The longest message attribute value genhook writes, in bytes (attributes are for
/// filtering; the body carries the exact value).
pub const MAX_ATTRIBUTE_BYTES: usize = 256;

/// `id` trimmed, when that is 1 to `max` bytes: a job, task or prediction id a hand-made
/// message (a registration) may carry.
pub fn checked_id(id: &str, max: usize) -> Option<&str> {
    let id = id.trim();
    (!id.is_empty() && id.len() <= max).then_some(id)
}

/// The first field longer than a later step allows, as the reason to refuse the delivery
/// (a retry cannot change it): `(name, value, max bytes)` each.
pub fn check_lengths(fields: &[(&str, &str, usize)]) -> Result<(), String> {
    match fields.iter().find(|(_, value, max)| value.len() > *max) {
        Some((name, _, max)) => Err(format!("`{name}` is longer than {max} bytes")),
        None => Ok(()),
    }
}

/// The deepest nesting of arrays and objects in a JSON text (0 for a scalar), read
/// without parsing; brackets inside strings do not count. Stops counting at
/// `MAX_JSON_DEPTH + 1`.
pub fn json_depth(raw: &[u8]) -> usize {
    let (mut depth, mut max) = (0usize, 0usize);
    let (mut in_string, mut escaped) = (false, false);
    for &b in raw {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth = depth.saturating_add(1);
                max = max.max(depth);
                if max > MAX_JSON_DEPTH {
                    return max;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

/// Whether `raw` nests deeper than `max` levels (`json_depth(raw) > max`). Each level
/// needs an opening bracket, so when a vectorized count finds at most `max` of them (as
/// in every real webhook) the text is not walked.
pub fn nests_deeper_than(raw: &[u8], max: usize) -> bool {
    memchr::memchr2_iter(b'[', b'{', raw).count() > max && json_depth(raw) > max
}

/// Whether SQS accepts `c` in a message body or attribute: #x9, #xA, #xD, #x20-#xD7FF,
/// #xE000-#xFFFD, #x10000-#x10FFFF.
pub fn is_sqs_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// Whether SQS accepts every character of `text` ([`is_sqs_char`]), checked on its
/// UTF-8 bytes: a `str` holds no surrogates, so the only characters SQS refuses are the
/// C0 controls but tab, line feed and carriage return (one byte each) and U+FFFE and
/// U+FFFF (`EF BF BE`, `EF BF BF`).
pub fn is_sqs_text(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.iter().enumerate().all(|(i, &b)| match b {
        b'\t' | b'\n' | b'\r' => true,
        0..0x20 => false,
        0xEF => !(bytes.get(i + 1) == Some(&0xBF) && matches!(bytes.get(i + 2), Some(0xBE | 0xBF))),
        _ => true,
    })
}

/// [`is_sqs_text`] for JSON text (RFC 8259: the only control characters it holds
/// unescaped are tab, line feed and carriage return, as whitespace): whether it holds
/// U+FFFE or U+FFFF, found with a vectorized search for their first byte, so a message
/// is checked in a fraction of an instruction per byte.
pub fn json_is_sqs_text(json: &str) -> bool {
    let bytes = json.as_bytes();
    memchr::memchr_iter(0xEF, bytes).all(|i| {
        !(bytes.get(i.saturating_add(1)) == Some(&0xBF) && matches!(bytes.get(i.saturating_add(2)), Some(0xBE | 0xBF)))
    })
}

/// JSON text made acceptable to SQS without changing its meaning. serde_json escapes
/// control characters but writes the noncharacters U+FFFE and U+FFFF raw, which SQS
/// refuses; outside strings JSON has no such characters, so escaping them wherever they
/// occur keeps the text's value.
pub fn sqs_safe_json(json: String) -> String {
    if json_is_sqs_text(&json) {
        return json;
    }
    let mut out = String::with_capacity(json.len().saturating_add(16));
    for c in json.chars() {
        if is_sqs_char(c) {
            out.push(c);
        } else {
            out.push_str(&format!("\\u{:04x}", u32::from(c)));
        }
    }
    out
}

/// A message attribute value SQS accepts: characters it refuses become U+FFFD, and the
/// value is cut to [`MAX_ATTRIBUTE_BYTES`] on a character boundary.
pub fn attribute_value(raw: &str) -> String {
    clean_text(raw, MAX_ATTRIBUTE_BYTES)
}

/// `raw` with the characters SQS refuses replaced by U+FFFD, cut to `max` bytes on a
/// character boundary.
pub fn clean_text(raw: &str, max: usize) -> String {
    if raw.len() <= max && is_sqs_text(raw) {
        return raw.to_string();
    }
    let mut out = String::with_capacity(raw.len().min(max));
    for c in raw.chars() {
        let c = if is_sqs_char(c) { c } else { '\u{FFFD}' };
        if out.len().saturating_add(c.len_utf8()) > max {
            break;
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_byte_check_agrees_with_the_character_check() {
        // Every character near each range's edges, alone and between others.
        let edges = [0u32, 8, 9, 10, 11, 13, 14, 0x1F, 0x20, 0x7F, 0xD7FF, 0xE000, 0xFEFF, 0xFFFD, 0xFFFE, 0xFFFF]
            .into_iter()
            .chain([0x10000, 0x10FFFF, 0xBF, 0xEF, 0xFBFE, 0xFFBE]);
        for c in edges.filter_map(char::from_u32) {
            for text in [c.to_string(), format!("a{c}b"), format!("\u{EF}{c}"), format!("{c}\u{FFFF}")] {
                assert_eq!(is_sqs_text(&text), text.chars().all(is_sqs_char), "{:?}", text);
            }
        }
    }

    #[test]
    fn depth_ignores_brackets_in_strings() {
        assert_eq!(json_depth(b"1"), 0);
        assert_eq!(json_depth(br#"{"a":[1,{"b":"[[[{{"}]}"#), 3);
        assert_eq!(json_depth(br#"{"a":"\"[[[", "b":[]}"#), 2);
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert_eq!(json_depth(deep.as_bytes()), MAX_JSON_DEPTH + 1);
    }

    #[test]
    fn the_depth_check_agrees_with_the_walk() {
        let nested = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        let wide = format!("[{}]", vec!["[]"; 200].join(","));
        let quoted = format!(r#"{{"s":"{}"}}"#, "[".repeat(200));
        for (text, deeper) in [
            (nested(MAX_JSON_DEPTH), false),
            (nested(MAX_JSON_DEPTH + 1), true),
            // Many brackets, little depth: the count is not enough, the walk decides.
            (wide, false),
            (quoted, false),
            (format!("{}{}", r#"{"a":"#.repeat(MAX_JSON_DEPTH + 1), "}".repeat(MAX_JSON_DEPTH + 1)), true),
        ] {
            assert_eq!(nests_deeper_than(text.as_bytes(), MAX_JSON_DEPTH), deeper, "{text}");
            assert_eq!(json_depth(text.as_bytes()) > MAX_JSON_DEPTH, deeper, "{text}");
        }
    }

    #[test]
    fn noncharacters_are_escaped_and_the_value_kept() {
        let v = serde_json::json!({"s": "a\u{FFFE}b\u{FFFF}c\u{1}d"});
        let raw = serde_json::to_string(&v).unwrap();
        assert!(!raw.chars().all(is_sqs_char), "serde_json writes U+FFFE raw");
        let safe = sqs_safe_json(raw);
        assert!(safe.chars().all(is_sqs_char), "{safe}");
        assert_eq!(serde_json::from_str::<serde_json::Value>(&safe).unwrap(), v);
    }

    #[test]
    fn attributes_are_cleaned_and_bounded() {
        assert_eq!(attribute_value("generation.completed"), "generation.completed");
        assert_eq!(attribute_value("a\u{0}b\u{FFFF}"), "a\u{FFFD}b\u{FFFD}");
        let long = attribute_value(&"é".repeat(500));
        assert!(long.len() <= MAX_ATTRIBUTE_BYTES && long.chars().all(|c| c == 'é'));
    }
}
