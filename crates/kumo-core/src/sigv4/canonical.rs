//! The canonical request: the exact bytes whose hash the client signed.
//!
//! Clients sign the path and query they put on the wire, so everything here
//! starts from the request as received, never from a decoded form.

use super::parse::hex_value;
use super::{ParsedSignature, RequestParts, SigV4Error};

/// The canonical request of `request` under `parsed`, with `payload_hash` as its last line.
pub fn canonical_request(
    request: &RequestParts<'_>,
    parsed: &ParsedSignature,
    payload_hash: &str,
) -> Result<Vec<u8>, SigV4Error> {
    let mut out = Vec::with_capacity(256 + request.path.len() + request.query.len());
    out.extend_from_slice(request.method.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(canonical_uri(request.path, &parsed.credential.service).as_bytes());
    out.push(b'\n');
    out.extend_from_slice(canonical_query(request.query, parsed.presigned_expires.is_some())?.as_bytes());
    out.push(b'\n');
    for name in &parsed.signed_headers {
        out.extend_from_slice(name.as_bytes());
        out.push(b':');
        for (i, value) in request.header_values(name).enumerate() {
            if i > 0 {
                out.push(b',');
            }
            trim_all(value, &mut out);
        }
        out.push(b'\n');
    }
    out.push(b'\n');
    out.extend_from_slice(parsed.signed_headers.join(";").as_bytes());
    out.push(b'\n');
    out.extend_from_slice(payload_hash.as_bytes());
    Ok(out)
}

/// The canonical URI. S3 signs its path as sent. Every other service signs the
/// sent path with dot segments and empty segments removed, URI-encoded once
/// more: a name sent as `my-fn%3Aprod` is signed as `my-fn%253Aprod`.
pub fn canonical_uri(path: &str, service: &str) -> String {
    if path.is_empty() {
        return "/".to_string();
    }
    if service == "s3" {
        return path.to_string();
    }
    let mut out = String::with_capacity(path.len() + 16);
    uri_encode(normalize_path(path).as_bytes(), true, &mut out);
    out
}

/// RFC 3986 §5.2.4 dot-segment removal, dropping empty segments too (AWS
/// treats `//` as `/`); a trailing slash survives, as in aws-sigv4.
fn normalize_path(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut out = String::with_capacity(path.len() + 1);
    for s in &segments {
        out.push('/');
        out.push_str(s);
    }
    let trailing = path.ends_with('/') || path.ends_with("/.") || path.ends_with("/..");
    if out.is_empty() || trailing {
        out.push('/');
    }
    out
}

/// The canonical query: every parameter decoded, re-encoded the SigV4 way and
/// sorted by name then value. A presigned URL's `X-Amz-Signature` is left out.
pub fn canonical_query(query: &str, presigned: bool) -> Result<String, SigV4Error> {
    let mut pairs: Vec<(String, String)> = decode_query(query)?
        .into_iter()
        .filter(|(name, _)| !(presigned && name == b"X-Amz-Signature"))
        .map(|(name, value)| {
            let (mut n, mut v) = (String::with_capacity(name.len()), String::with_capacity(value.len()));
            uri_encode(&name, false, &mut n);
            uri_encode(&value, false, &mut v);
            (n, v)
        })
        .collect();
    pairs.sort_unstable();
    let mut out = String::with_capacity(query.len() + 16);
    for (i, (name, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(name);
        out.push('=');
        out.push_str(value);
    }
    Ok(out)
}

/// Decoded `(name, value)` pairs of a query, in order.
pub(super) type QueryPairs = Vec<(Vec<u8>, Vec<u8>)>;

/// Splits a raw query into decoded pairs; empty pieces are skipped.
pub(super) fn decode_query(query: &str) -> Result<QueryPairs, SigV4Error> {
    query
        .split('&')
        .filter(|piece| !piece.is_empty())
        .map(|piece| {
            let (name, value) = piece.split_once('=').unwrap_or((piece, ""));
            Ok((percent_decode(name)?, percent_decode(value)?))
        })
        .collect()
}

/// Form decoding: `%XX` escapes, and `+` as a space (as the Rust and Go SDKs
/// read a query before signing it).
fn percent_decode(text: &str) -> Result<Vec<u8>, SigV4Error> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let (Some(&hi), Some(&lo)) = (bytes.get(i + 1), bytes.get(i + 2)) else {
                    return Err(SigV4Error::MalformedQueryString {
                        reason: "Incomplete trailing escape (%) pattern".to_string(),
                    });
                };
                let (Some(hi), Some(lo)) = (hex_value(hi), hex_value(lo)) else {
                    let escape = String::from_utf8_lossy(&bytes[i..i + 3]);
                    return Err(SigV4Error::MalformedQueryString {
                        reason: format!("Illegal hex characters in escape (%) pattern: {escape}"),
                    });
                };
                out.push(hi << 4 | lo);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    Ok(out)
}

/// SigV4's URI encoding: unreserved characters as they are, every other byte
/// (of UTF-8, for text) as upper-case `%XX`; `/` kept when encoding a path.
fn uri_encode(bytes: &[u8], keep_slash: bool, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in bytes {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') || (keep_slash && b == b'/') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
    }
}

/// Trims spaces and tabs at both ends and turns each inner run into one space,
/// as botocore does; aws-sigv4 leaves tabs alone, so a tab inside a signed
/// header value from that SDK would not verify.
fn trim_all(value: &[u8], out: &mut Vec<u8>) {
    let is_space = |b: &u8| *b == b' ' || *b == b'\t';
    let mut pending_space = false;
    let mut started = false;
    for b in value {
        if is_space(b) {
            pending_space = started;
        } else {
            if pending_space {
                out.push(b' ');
                pending_space = false;
            }
            out.push(*b);
            started = true;
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn path_is_encoded_once_more_for_lambda() {
        assert_eq!(
            canonical_uri("/2015-03-31/functions/my-fn%3Aprod/invocations", "lambda"),
            "/2015-03-31/functions/my-fn%253Aprod/invocations"
        );
        assert_eq!(canonical_uri("/2015-03-31/functions/caf%C3%A9", "lambda"), "/2015-03-31/functions/caf%25C3%25A9");
        // A client may leave sub-delimiters raw on the wire; it signed them encoded once.
        assert_eq!(canonical_uri("/functions/my-fn:prod", "lambda"), "/functions/my-fn%3Aprod");
        assert_eq!(canonical_uri("/a~b/c_d-e.f/g%20h", "lambda"), "/a~b/c_d-e.f/g%2520h");
        assert_eq!(canonical_uri("/caf\u{e9}", "lambda"), "/caf%C3%A9");
        assert_eq!(canonical_uri("/!$&'()*+,;=@", "lambda"), "/%21%24%26%27%28%29%2A%2B%2C%3B%3D%40");
    }

    #[test]
    fn path_normalisation() {
        for (path, expected) in [
            ("", "/"),
            ("/", "/"),
            ("//", "/"),
            ("/a//b", "/a/b"),
            ("/a/./b/../c", "/a/c"),
            ("/a/b/", "/a/b/"),
            ("/a/b/.", "/a/b/"),
            ("/a/b/..", "/a/"),
            ("/../../a", "/a"),
            ("/..", "/"),
            ("/a/%2E%2E/b", "/a/%252E%252E/b"),
            ("relative/x", "/relative/x"),
        ] {
            assert_eq!(canonical_uri(path, "lambda"), expected, "{path}");
        }
    }

    #[test]
    fn s3_signs_the_path_as_sent() {
        assert_eq!(canonical_uri("/bucket/a%20b/./c//d", "s3"), "/bucket/a%20b/./c//d");
        assert_eq!(canonical_uri("/bucket/my%3Akey", "s3"), "/bucket/my%3Akey");
        assert_eq!(canonical_uri("", "s3"), "/");
    }

    #[test]
    fn query_is_sorted_and_reencoded() {
        assert_eq!(canonical_query("b=2&a=1&a=0", false).unwrap(), "a=0&a=1&b=2");
        assert_eq!(canonical_query("", false).unwrap(), "");
        assert_eq!(canonical_query("&&list&x=", false).unwrap(), "list=&x=");
        assert_eq!(canonical_query("q=a+b&r=a%20b&s=a b", false).unwrap(), "q=a%20b&r=a%20b&s=a%20b");
        assert_eq!(canonical_query("k=%7e%2a!'()&t=~", false).unwrap(), "k=~%2A%21%27%28%29&t=~");
        assert_eq!(canonical_query("v=caf%C3%A9&w=caf\u{e9}", false).unwrap(), "v=caf%C3%A9&w=caf%C3%A9");
        assert_eq!(canonical_query("a=x%3Dy%26z", false).unwrap(), "a=x%3Dy%26z");
        // Sorted by encoded bytes: upper case before lower, '%' before letters.
        assert_eq!(canonical_query("b=1&B=2&a%20b=3&a-b=4", false).unwrap(), "B=2&a%20b=3&a-b=4&b=1");
        assert_eq!(
            canonical_query("X-Amz-Signature=abc&X-Amz-Date=1", true).unwrap(),
            "X-Amz-Date=1",
            "a presigned URL does not sign its own signature"
        );
        assert_eq!(canonical_query("X-Amz-Signature=abc", false).unwrap(), "X-Amz-Signature=abc");
    }

    #[test]
    fn bad_percent_encoding_is_an_error() {
        for (query, reason) in [
            ("a=%zz", "Illegal hex characters in escape (%) pattern: %zz"),
            ("a=%4", "Incomplete trailing escape (%) pattern"),
            ("a%=1", "Incomplete trailing escape (%) pattern"),
            ("a=%\u{e9}", "Illegal hex characters in escape (%) pattern: %\u{e9}"),
            // The escape ends inside a character; the message must not split it.
            ("a=%\u{20ac}", "Illegal hex characters in escape (%) pattern: %\u{fffd}"),
        ] {
            assert_eq!(
                canonical_query(query, false),
                Err(SigV4Error::MalformedQueryString { reason: reason.to_string() }),
                "{query}"
            );
        }
    }

    #[test]
    fn header_values_are_trimmed_and_joined() {
        let mut out = Vec::new();
        trim_all(b"  a   b \t c  ", &mut out);
        assert_eq!(out, b"a b c");
        out.clear();
        trim_all(b" \t ", &mut out);
        assert_eq!(out, b"");
        out.clear();
        trim_all(b"\"a   b\"", &mut out);
        assert_eq!(out, b"\"a b\"");
    }

    #[test]
    fn canonical_request_layout() {
        let headers: [(&str, &[u8]); 5] = [
            ("Host", b"example.com"),
            ("X-Multi", b" one  two "),
            ("x-multi", b"three"),
            ("x-amz-date", b"20150830T123600Z"),
            ("x-unsigned", b"ignored"),
        ];
        let req =
            RequestParts { method: "POST", path: "/a b", query: "z=1&a=2", headers: &headers, payload_sha256: "" };
        let parsed = ParsedSignature {
            credential: super::super::Credential {
                access_key_id: "AK".into(),
                date: "20150830".into(),
                region: "r".into(),
                service: "lambda".into(),
                terminator: "aws4_request".into(),
            },
            signed_headers: vec!["host".into(), "x-amz-date".into(), "x-missing".into(), "x-multi".into()],
            signature: [0; 32],
            amz_date: "20150830T123600Z".into(),
            request_time: 0,
            security_token: None,
            presigned_expires: None,
        };
        let creq = canonical_request(&req, &parsed, "HASH").unwrap();
        assert_eq!(
            String::from_utf8(creq).unwrap(),
            "POST\n/a%20b\na=2&z=1\nhost:example.com\nx-amz-date:20150830T123600Z\nx-missing:\nx-multi:one two,three\n\n\
             host;x-amz-date;x-missing;x-multi\nHASH"
        );
    }
}
