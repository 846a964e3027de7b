//! What the simulated output URLs serve: a tiny valid PNG, or S3-style XML errors.

/// A valid 1×1 transparent PNG (chunk CRCs checked with Python's zlib): what every
/// simulated output file holds. The bytes do not matter to genhook, only that the URL's
/// signature and expiry are checked.
pub(crate) const PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4, 0x89, 0x00, 0x00, 0x00, 0x0b, 0x49,
    0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0x60, 0x00, 0x02, 0x00, 0x00, 0x05, 0x00, 0x01, 0x7a, 0x5e, 0xab, 0x3f, 0x00,
    0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
];

/// An S3-style XML error document.
pub(crate) fn s3_error(code: &str, message: &str, extra: &[(&str, String)]) -> String {
    let mut xml =
        format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message>");
    for (name, value) in extra {
        xml.push_str(&format!("<{name}>{value}</{name}>"));
    }
    xml.push_str(&format!("<RequestId>{}</RequestId></Error>", super::jobs::random_hex(8).to_uppercase()));
    xml
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_png_has_a_png_signature_and_ends_with_iend() {
        assert_eq!(&PNG[..8], b"\x89PNG\r\n\x1a\n");
        assert_eq!(&PNG[PNG.len() - 8..PNG.len() - 4], b"IEND");
    }

    #[test]
    fn s3_errors() {
        let xml = s3_error("AccessDenied", "Request has expired", &[("X-Amz-Expires", "60".into())]);
        assert!(xml.contains("<Code>AccessDenied</Code><Message>Request has expired</Message>"));
        assert!(xml.contains("<X-Amz-Expires>60</X-Amz-Expires>"));
    }
}
