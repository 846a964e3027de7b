//! Bounding text from elsewhere (a provider's error message, a failure reason) before it
//! is stored or logged.

/// `s` cut to at most `max_chars` characters, ending in `…` when it was cut (the ellipsis
/// comes on top, so the cut text always says it was cut).
pub fn clip(s: &str, max_chars: usize) -> String {
    match s.char_indices().nth(max_chars) {
        Some((cut, _)) => format!("{}…", s.get(..cut).unwrap_or_default()),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::clip;

    #[test]
    fn cuts_on_characters_and_says_so() {
        assert_eq!(clip("short", 5), "short");
        assert_eq!(clip("longer", 4), "long…");
        assert_eq!(clip("ééé", 2), "éé…", "never inside a character");
        assert_eq!(clip("", 0), "");
        assert_eq!(clip("a", 0), "…");
    }
}
