//! UUIDs from a clock and random bytes the caller supplies (crypto.getRandomValues in the
//! browser), so this module stays pure and testable.

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Lowercase hex digits of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(HEX[usize::from(b >> 4)] as char);
        out.push(HEX[usize::from(b & 15)] as char);
    }
    out
}

/// Formats 16 bytes as a lowercase 8-4-4-4-12 UUID.
pub fn hyphenated(bytes: &[u8; 16]) -> String {
    let mut out = String::with_capacity(36);
    for (i, b) in bytes.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push('-');
        }
        out.push(HEX[usize::from(b >> 4)] as char);
        out.push(HEX[usize::from(b & 15)] as char);
    }
    out
}

/// UUID v7 (RFC 9562): 48-bit Unix ms, version 7, 74 random bits, variant 10.
/// Sorts by time, which keeps the collector's ClickHouse primary key local.
pub fn v7(unix_ms: u64, random: &[u8; 16]) -> String {
    let mut b = *random;
    // Byte by byte: `copy_from_slice` would bring a length-mismatch panic (and, on stable,
    // its message formatting) into the wasm.
    for (i, byte) in b.iter_mut().take(6).enumerate() {
        *byte = (unix_ms >> (40 - 8 * i)) as u8;
    }
    b[6] = 0x70 | (b[6] & 0x0f);
    b[8] = 0x80 | (b[8] & 0x3f);
    hyphenated(&b)
}

/// UUID v4 (RFC 9562): 122 random bits; used for anonymous and session ids.
pub fn v4(random: &[u8; 16]) -> String {
    let mut b = *random;
    b[6] = 0x40 | (b[6] & 0x0f);
    b[8] = 0x80 | (b[8] & 0x3f);
    hyphenated(&b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use event_model::rules::parse_event_id;

    #[test]
    fn v7_carries_time_version_and_variant() {
        let id = v7(0x0192_f0c6_3b7a, &[0xff; 16]);
        assert_eq!(id, "0192f0c6-3b7a-7fff-bfff-ffffffffffff");
        let zero = v7(1_795_600_800_000, &[0; 16]);
        assert_eq!(&zero[14..15], "7");
        assert_eq!(&zero[19..20], "8");
        assert!(parse_event_id(&zero).is_ok());
    }

    #[test]
    fn v7_sorts_by_time() {
        let a = v7(1_795_600_800_000, &[0xff; 16]);
        let b = v7(1_795_600_800_001, &[0; 16]);
        assert!(a < b);
    }

    #[test]
    fn v4_is_a_valid_uuid() {
        let id = v4(&[0xab; 16]);
        assert_eq!(id, "abababab-abab-4bab-abab-abababababab");
        assert_eq!(parse_event_id(&id).map(|b| b[6] >> 4), Ok(4));
    }
}
