//! What the simulated output URLs serve: a tiny valid PNG, or S3-style XML errors.

/// PNG width and height in pixels.
const SIDE: u32 = 16;

/// A `SIDE`×`SIDE` RGB PNG: a diagonal gradient, tinted by output number `n`
/// (so the primary and the alternate differ).
pub(crate) fn png(n: u8) -> Vec<u8> {
    let tint = n.wrapping_mul(97);
    let mut raw = Vec::new();
    for y in 0..SIDE {
        raw.push(0); // filter type: none
        for x in 0..SIDE {
            let v = ((x + y) * 255 / (2 * SIDE - 2)) as u8;
            raw.extend([v, tint ^ v, 255 - v]);
        }
    }
    let mut ihdr = Vec::new();
    ihdr.extend(SIDE.to_be_bytes());
    ihdr.extend(SIDE.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]); // 8-bit depth, truecolour, deflate, no filter, no interlace
    let mut out = vec![0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1a, b'\n'];
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(&mut out, b"IDAT", &zlib_stored(&raw));
    chunk(&mut out, b"IEND", &[]);
    out
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend(u32::try_from(data.len()).unwrap_or(u32::MAX).to_be_bytes());
    let start = out.len();
    out.extend(kind);
    out.extend(data);
    let crc = crc32(&out[start..]);
    out.extend(crc.to_be_bytes());
}

/// A zlib stream holding `data` in uncompressed ("stored") deflate blocks.
fn zlib_stored(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x78, 0x01];
    let mut blocks = data.chunks(0xffff).peekable();
    if blocks.peek().is_none() {
        out.extend([1, 0, 0, 0xff, 0xff]);
    }
    while let Some(block) = blocks.next() {
        let last = u8::from(blocks.peek().is_none());
        let len = block.len() as u16;
        out.push(last);
        out.extend(len.to_le_bytes());
        out.extend((!len).to_le_bytes());
        out.extend(block);
    }
    out.extend(adler32(data).to_be_bytes());
    out
}

/// CRC-32 (IEEE, reflected), as PNG chunks use.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

/// Adler-32, as zlib streams end with.
fn adler32(data: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for &byte in data {
        a = (a + u32::from(byte)) % 65_521;
        b = (b + a) % 65_521;
    }
    (b << 16) | a
}

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
    fn checksums_match_their_standard_check_values() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(adler32(b"Wikipedia"), 0x11E6_0398);
        assert_eq!(adler32(b""), 1);
    }

    #[test]
    fn png_is_well_formed() {
        let png = png(1);
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        // Walk the chunks: each CRC holds and the last chunk is IEND.
        let mut at = 8;
        let mut kinds = Vec::new();
        while at < png.len() {
            let len = u32::from_be_bytes(png[at..at + 4].try_into().unwrap()) as usize;
            let body = &png[at + 4..at + 8 + len];
            let crc = u32::from_be_bytes(png[at + 8 + len..at + 12 + len].try_into().unwrap());
            assert_eq!(crc32(body), crc);
            kinds.push(String::from_utf8_lossy(&body[..4]).to_string());
            at += 12 + len;
        }
        assert_eq!(kinds, ["IHDR", "IDAT", "IEND"]);
        assert_ne!(png, super::png(2), "outputs differ");
    }

    #[test]
    fn stored_zlib_splits_long_data() {
        let z = zlib_stored(&[0; 70_000]);
        assert_eq!(z.len(), 2 + 5 + 0xffff + 5 + (70_000 - 0xffff) + 4);
        assert_eq!(z[2], 0, "first block is not the last");
        assert_eq!(zlib_stored(&[]), [0x78, 0x01, 1, 0, 0, 0xff, 0xff, 0, 0, 0, 1]);
    }

    #[test]
    fn s3_errors() {
        let xml = s3_error("AccessDenied", "Request has expired", &[("X-Amz-Expires", "60".into())]);
        assert!(xml.contains("<Code>AccessDenied</Code><Message>Request has expired</Message>"));
        assert!(xml.contains("<X-Amz-Expires>60</X-Amz-Expires>"));
    }
}
