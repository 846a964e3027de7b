//! Showing URLs in logs: a signed URL's query is its credential, so it never appears.

/// The URL with its query and fragment replaced by `?<redacted>`, safe for logs.
pub fn redact(raw: &str) -> String {
    let cut = raw.find(['?', '#']).unwrap_or(raw.len());
    if cut == raw.len() { raw.to_string() } else { format!("{}?<redacted>", &raw[..cut]) }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn redaction_drops_the_credential() {
        assert_eq!(redact("https://b/o.png?X-Amz-Signature=secret"), "https://b/o.png?<redacted>");
        assert_eq!(redact("https://b/o.png#frag"), "https://b/o.png?<redacted>");
        assert_eq!(redact("https://b/o.png"), "https://b/o.png");
    }
}
