//! AWS's binary event-stream framing (`application/vnd.amazon.eventstream`),
//! which InvokeWithResponseStream answers in.
//!
//! One message: total length and headers length (u32, big-endian), a CRC32 of
//! those eight bytes, the headers (name length u8, name, value type u8, and for
//! strings a u16 length and the bytes), the payload, and a CRC32 of everything
//! before it.

/// Header value type 7: a UTF-8 string.
const STRING_VALUE: u8 = 7;

/// Prelude (12 bytes) plus the trailing message CRC.
const FRAMING_BYTES: usize = 16;

/// Why a message cannot be framed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("event-stream header name `{0}` is longer than 255 bytes")]
    NameTooLong(String),
    #[error("event-stream header `{0}` has a value longer than 65535 bytes")]
    ValueTooLong(String),
    #[error("event-stream message of {0} bytes does not fit its 32-bit length")]
    MessageTooLong(usize),
}

/// An event message (`:message-type event`) of `event_type` carrying `payload`.
pub fn event(event_type: &str, content_type: &str, payload: &[u8]) -> Result<Vec<u8>, FrameError> {
    message(&[(":event-type", event_type), (":content-type", content_type), (":message-type", "event")], payload)
}

/// A message with string headers.
pub fn message(headers: &[(&str, &str)], payload: &[u8]) -> Result<Vec<u8>, FrameError> {
    let mut header_bytes = Vec::new();
    for (name, value) in headers {
        let name_len = u8::try_from(name.len()).map_err(|_| FrameError::NameTooLong((*name).to_string()))?;
        let value_len = u16::try_from(value.len()).map_err(|_| FrameError::ValueTooLong((*name).to_string()))?;
        header_bytes.push(name_len);
        header_bytes.extend_from_slice(name.as_bytes());
        header_bytes.push(STRING_VALUE);
        header_bytes.extend_from_slice(&value_len.to_be_bytes());
        header_bytes.extend_from_slice(value.as_bytes());
    }
    let total = FRAMING_BYTES + header_bytes.len() + payload.len();
    let total_u32 = u32::try_from(total).map_err(|_| FrameError::MessageTooLong(total))?;
    // Header bytes are bounded by the total, which fits.
    let headers_u32 = header_bytes.len() as u32;
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&total_u32.to_be_bytes());
    out.extend_from_slice(&headers_u32.to_be_bytes());
    let prelude_crc = crc32(&out);
    out.extend_from_slice(&prelude_crc.to_be_bytes());
    out.extend_from_slice(&header_bytes);
    out.extend_from_slice(payload);
    let message_crc = crc32(&out);
    out.extend_from_slice(&message_crc.to_be_bytes());
    Ok(out)
}

/// CRC-32 (IEEE 802.3, reflected, as zlib computes it).
pub fn crc32(bytes: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut table = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
                k += 1;
            }
            table[i] = c;
            i += 1;
        }
        table
    };
    let mut crc = !0u32;
    for &b in bytes {
        crc = TABLE[((crc ^ u32::from(b)) & 0xFF) as usize] ^ (crc >> 8);
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads one message back (headers and payload), checking both CRCs.
    fn parse(msg: &[u8]) -> (Vec<(String, String)>, Vec<u8>) {
        let word = |at: usize| u32::from_be_bytes([msg[at], msg[at + 1], msg[at + 2], msg[at + 3]]);
        let total = word(0) as usize;
        let headers_len = word(4) as usize;
        assert_eq!(total, msg.len());
        assert_eq!(word(8), crc32(&msg[..8]));
        assert_eq!(word(total - 4), crc32(&msg[..total - 4]));
        let mut headers = Vec::new();
        let mut at = 12;
        while at < 12 + headers_len {
            let n = msg[at] as usize;
            let name = String::from_utf8(msg[at + 1..at + 1 + n].to_vec()).expect("utf-8 name");
            at += 1 + n;
            assert_eq!(msg[at], STRING_VALUE);
            let v = u16::from_be_bytes([msg[at + 1], msg[at + 2]]) as usize;
            headers.push((name, String::from_utf8(msg[at + 3..at + 3 + v].to_vec()).expect("utf-8 value")));
            at += 3 + v;
        }
        (headers, msg[12 + headers_len..total - 4].to_vec())
    }

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn an_event_round_trips() {
        let msg = event("PayloadChunk", "application/octet-stream", b"\0hello").expect("frame");
        let (headers, payload) = parse(&msg);
        assert_eq!(
            headers,
            [
                (":event-type".to_string(), "PayloadChunk".to_string()),
                (":content-type".into(), "application/octet-stream".into()),
                (":message-type".into(), "event".into()),
            ]
        );
        assert_eq!(payload, b"\0hello");
    }

    #[test]
    fn an_empty_message_is_sixteen_bytes() {
        let msg = message(&[], b"").expect("frame");
        assert_eq!(msg.len(), 16);
        assert_eq!(parse(&msg), (vec![], vec![]));
    }

    #[test]
    fn oversized_headers_are_refused() {
        let long = "x".repeat(256);
        assert!(matches!(message(&[(&long, "v")], b""), Err(FrameError::NameTooLong(_))));
        let value = "v".repeat(70_000);
        assert!(matches!(message(&[("n", &value)], b""), Err(FrameError::ValueTooLong(_))));
    }
}
