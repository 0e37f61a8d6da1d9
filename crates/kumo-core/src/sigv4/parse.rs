//! Finding the signature in a request: the Authorization header, or the
//! `X-Amz-*` parameters of a presigned URL; and the dates SigV4 uses.

use super::canonical::decode_query;
use super::{ALGORITHM, Credential, MAX_PRESIGNED_EXPIRES_SECS, ParsedSignature, RequestParts, SigV4Error};

/// Parses the signature of `request`; `Ok(None)` when it carries none at all.
pub fn parse(request: &RequestParts<'_>) -> Result<Option<ParsedSignature>, SigV4Error> {
    let query = decode_query(request.query);
    let presigned = match &query {
        Ok(pairs) => pairs.iter().any(|(name, _)| is_presign_marker(name)),
        // Only a query that tries to carry a signature may fail the request.
        Err(_) => ["X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Signature"].iter().any(|m| request.query.contains(m)),
    };
    match request.header("authorization") {
        Some(_) if presigned => Err(SigV4Error::AmbiguousAuthentication),
        Some(value) => parse_header_form(request, value).map(Some),
        None if presigned => parse_query_form(&query?).map(Some),
        None => Ok(None),
    }
}

fn is_presign_marker(name: &[u8]) -> bool {
    matches!(name, b"X-Amz-Algorithm" | b"X-Amz-Credential" | b"X-Amz-Signature")
}

fn parse_header_form<'a>(request: &RequestParts<'a>, value: &'a [u8]) -> Result<ParsedSignature, SigV4Error> {
    let Ok(header) = std::str::from_utf8(value) else {
        let authorization = String::from_utf8_lossy(value).into_owned();
        return Err(SigV4Error::MalformedAuthorizationPair { pair: authorization.clone(), authorization });
    };
    let authorization = || header.to_string();
    let header = header.trim();
    let (algorithm, rest) = header.split_once(|c: char| c.is_ascii_whitespace() || c == ',').unwrap_or((header, ""));

    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    // SDKs separate the components with ", " (botocore, aws-sdk-rust) or a bare
    // "," (some Java and JS versions); both are accepted.
    for pair in rest.split(|c: char| c.is_ascii_whitespace() || c == ',').filter(|p| !p.is_empty()) {
        let Some((key, val)) = pair.split_once('=') else {
            return Err(SigV4Error::MalformedAuthorizationPair {
                pair: pair.to_string(),
                authorization: authorization(),
            });
        };
        let slot = match key {
            "Credential" => &mut credential,
            "SignedHeaders" => &mut signed_headers,
            "Signature" => &mut signature,
            _ => continue,
        };
        slot.get_or_insert(val);
    }

    let date_header = request.header("x-amz-date").map(|v| (v, false)).or(request.header("date").map(|v| (v, true)));
    let present = |slot: Option<&'a str>| slot.filter(|v| !v.is_empty());
    let (Some(credential), Some(signature), Some(signed_headers), Some((date, is_http_date))) =
        (present(credential), present(signature), present(signed_headers), date_header)
    else {
        let missing = [("Credential", credential), ("Signature", signature), ("SignedHeaders", signed_headers)]
            .into_iter()
            .filter(|(_, slot)| present(*slot).is_none())
            .map(|(name, _)| name)
            .collect();
        return Err(SigV4Error::MissingAuthorizationComponents {
            missing,
            date_missing: date_header.is_none(),
            authorization: authorization(),
        });
    };

    check_algorithm(algorithm)?;
    let credential = parse_credential(credential)?;
    let date_text = String::from_utf8_lossy(date).into_owned();
    let request_time = match is_http_date {
        false => parse_amz_date(&date_text),
        true => parse_http_date(&date_text).or_else(|| parse_amz_date(&date_text)),
    }
    .ok_or(SigV4Error::MalformedDate { date: date_text })?;
    let signed_headers = parse_signed_headers(signed_headers)?;
    let signature = parse_signature(signature)?;
    let security_token = request.header("x-amz-security-token").map(|t| String::from_utf8_lossy(t).trim().to_string());
    Ok(ParsedSignature {
        credential,
        signed_headers,
        signature,
        amz_date: format_amz_date(request_time),
        request_time,
        security_token,
        presigned_expires: None,
    })
}

fn parse_query_form(pairs: &[(Vec<u8>, Vec<u8>)]) -> Result<ParsedSignature, SigV4Error> {
    let param = |name: &str| {
        pairs.iter().find(|(n, _)| n == name.as_bytes()).map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    };
    let (Some(algorithm), Some(credential), Some(signature), Some(signed_headers), Some(date), Some(expires)) = (
        param("X-Amz-Algorithm"),
        param("X-Amz-Credential"),
        param("X-Amz-Signature"),
        param("X-Amz-SignedHeaders"),
        param("X-Amz-Date"),
        param("X-Amz-Expires"),
    ) else {
        const REQUIRED: [&str; 6] = [
            "X-Amz-Algorithm",
            "X-Amz-Credential",
            "X-Amz-Signature",
            "X-Amz-SignedHeaders",
            "X-Amz-Date",
            "X-Amz-Expires",
        ];
        let missing = REQUIRED.into_iter().filter(|name| param(name).is_none()).collect();
        return Err(SigV4Error::MissingQueryParameters { missing });
    };

    check_algorithm(&algorithm)?;
    let credential = parse_credential(&credential)?;
    let request_time = parse_amz_date(&date).ok_or(SigV4Error::MalformedDate { date: date.clone() })?;
    let expires = parse_expires(&expires)?;
    let signed_headers = parse_signed_headers(&signed_headers)?;
    let signature = parse_signature(&signature)?;
    Ok(ParsedSignature {
        credential,
        signed_headers,
        signature,
        // The string to sign uses X-Amz-Date verbatim, and parse_amz_date only
        // accepts the canonical form, so reformatting would be a no-op.
        amz_date: date,
        request_time,
        security_token: param("X-Amz-Security-Token"),
        presigned_expires: Some(expires),
    })
}

fn check_algorithm(algorithm: &str) -> Result<(), SigV4Error> {
    if algorithm == ALGORITHM {
        Ok(())
    } else {
        Err(SigV4Error::UnsupportedAlgorithm { algorithm: algorithm.to_string() })
    }
}

fn parse_credential(text: &str) -> Result<Credential, SigV4Error> {
    let parts: Vec<&str> = text.split('/').collect();
    let [access_key_id, date, region, service, terminator] = parts.as_slice() else {
        return Err(SigV4Error::MalformedCredential { credential: text.to_string() });
    };
    Ok(Credential {
        access_key_id: access_key_id.to_string(),
        date: date.to_string(),
        region: region.to_string(),
        service: service.to_string(),
        terminator: terminator.to_string(),
    })
}

fn parse_signed_headers(text: &str) -> Result<Vec<String>, SigV4Error> {
    let names: Vec<String> = text.split(';').map(str::to_ascii_lowercase).collect();
    if names.iter().any(|n| n == "host") { Ok(names) } else { Err(SigV4Error::HostNotSigned) }
}

fn parse_signature(text: &str) -> Result<[u8; 32], SigV4Error> {
    let bytes = text.as_bytes();
    if bytes.len() != 64 {
        return Err(SigV4Error::MalformedSignature);
    }
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        let hi = hex_value(pair[0]).ok_or(SigV4Error::MalformedSignature)?;
        let lo = hex_value(pair[1]).ok_or(SigV4Error::MalformedSignature)?;
        out[i] = hi << 4 | lo;
    }
    Ok(out)
}

pub(super) fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

fn parse_expires(text: &str) -> Result<u64, SigV4Error> {
    let malformed = || SigV4Error::MalformedExpires { expires: text.to_string() };
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed());
    }
    let expires: u64 = text.parse().map_err(|_| malformed())?;
    if (1..=MAX_PRESIGNED_EXPIRES_SECS).contains(&expires) {
        Ok(expires)
    } else {
        Err(SigV4Error::ExpiresOutOfRange { expires })
    }
}

/// Days from 1970-01-01 to a proleptic Gregorian date (Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn days_in_month(year: i64, month: u32) -> u32 {
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

fn digits(text: &str) -> Option<u32> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

fn epoch_seconds(year: u32, month: u32, day: u32, hour: u32, minute: u32, second: u32) -> Option<i64> {
    let year = i64::from(year);
    let valid = (1..=12).contains(&month)
        && (1..=days_in_month(year, month)).contains(&day)
        && hour < 24
        && minute < 60
        && second < 60;
    valid.then(|| {
        days_from_civil(year, month, day) * 86_400 + i64::from(hour) * 3600 + i64::from(minute) * 60 + i64::from(second)
    })
}

/// `yyyymmddTHHMMSSZ` (ISO 8601 basic format, UTC) to epoch seconds.
pub fn parse_amz_date(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let field = |range: std::ops::Range<usize>| text.get(range).and_then(digits);
    epoch_seconds(field(0..4)?, field(4..6)?, field(6..8)?, field(9..11)?, field(11..13)?, field(13..15)?)
}

/// An HTTP `Date` header (`Sun, 30 Aug 2015 12:36:00 GMT`, or botocore's
/// `-0000` zone) to epoch seconds.
pub fn parse_http_date(text: &str) -> Option<i64> {
    let text = text.trim();
    let text = match text.split_once(',') {
        Some((weekday, rest)) if weekday.len() == 3 => rest,
        Some(_) => return None,
        None => text,
    };
    let fields: Vec<&str> = text.split_ascii_whitespace().collect();
    let [day, month, year, time, zone] = fields.as_slice() else { return None };
    if !matches!(*zone, "GMT" | "UTC" | "UT" | "Z" | "+0000" | "-0000") || year.len() != 4 {
        return None;
    }
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let month = MONTHS.iter().position(|m| m == month)? as u32 + 1;
    let hms: Vec<&str> = time.split(':').collect();
    let [h, m, s] = hms.as_slice() else { return None };
    if day.len() > 2 || h.len() != 2 || m.len() != 2 || s.len() != 2 {
        return None;
    }
    epoch_seconds(digits(year)?, month, digits(day)?, digits(h)?, digits(m)?, digits(s)?)
}

/// Epoch seconds as `yyyymmddTHHMMSSZ`.
pub fn format_amz_date(epoch_seconds: i64) -> String {
    let p = crate::time::utc_parts(epoch_seconds.saturating_mul(1000));
    format!("{:04}{:02}{:02}T{:02}{:02}{:02}Z", p.year, p.month, p.day, p.hour, p.minute, p.second)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const SIG: &str = "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31";

    fn parse_with(headers: &[(&str, &[u8])], query: &str) -> Result<Option<ParsedSignature>, SigV4Error> {
        parse(&RequestParts { method: "GET", path: "/", query, headers, payload_sha256: "" })
    }

    fn with_auth(auth: &str) -> Result<Option<ParsedSignature>, SigV4Error> {
        parse_with(
            &[("host", b"example.com"), ("x-amz-date", b"20150830T123600Z"), ("authorization", auth.as_bytes())],
            "",
        )
    }

    #[test]
    fn header_form_with_the_separators_sdks_use() {
        for auth in [
            format!(
                "AWS4-HMAC-SHA256 Credential=AK/20150830/us-east-1/lambda/aws4_request, SignedHeaders=host;x-amz-date, Signature={SIG}"
            ),
            format!(
                "AWS4-HMAC-SHA256 Credential=AK/20150830/us-east-1/lambda/aws4_request,SignedHeaders=host;x-amz-date,Signature={SIG}"
            ),
            format!(
                "  AWS4-HMAC-SHA256   Signature={SIG} ,  SignedHeaders=host;x-amz-date   Credential=AK/20150830/us-east-1/lambda/aws4_request  "
            ),
            format!(
                "AWS4-HMAC-SHA256,Credential=AK/20150830/us-east-1/lambda/aws4_request,SignedHeaders=Host;X-Amz-Date,Signature={}",
                SIG.to_uppercase()
            ),
        ] {
            let p = with_auth(&auth).unwrap().unwrap();
            assert_eq!(
                p.credential,
                Credential {
                    access_key_id: "AK".into(),
                    date: "20150830".into(),
                    region: "us-east-1".into(),
                    service: "lambda".into(),
                    terminator: "aws4_request".into()
                },
                "{auth}"
            );
            assert_eq!(p.signed_headers, ["host", "x-amz-date"]);
            assert_eq!(p.signature[0], 0x5f);
            assert_eq!(p.amz_date, "20150830T123600Z");
            assert_eq!(p.request_time, 1_440_938_160);
            assert_eq!(p.presigned_expires, None);
        }
    }

    #[test]
    fn unsigned_requests_parse_to_none() {
        assert_eq!(parse_with(&[("host", b"example.com")], ""), Ok(None));
        assert_eq!(parse_with(&[("host", b"example.com")], "Qualifier=prod&X-Amz-Date=1"), Ok(None));
        // A broken query that does not try to sign is the handler's business.
        assert_eq!(parse_with(&[("host", b"example.com")], "a=%zz"), Ok(None));
        assert!(matches!(
            parse_with(&[("host", b"example.com")], "X-Amz-Signature=%zz"),
            Err(SigV4Error::MalformedQueryString { .. })
        ));
    }

    #[test]
    fn missing_components_are_listed_like_aws() {
        let err = parse_with(&[("authorization", b"AWS4-HMAC-SHA256")], "").unwrap_err();
        assert_eq!(
            err.aws_error().message,
            "Authorization header requires 'Credential' parameter. Authorization header requires 'Signature' \
             parameter. Authorization header requires 'SignedHeaders' parameter. Authorization header requires \
             existence of either a 'X-Amz-Date' or a 'Date' header. Authorization=AWS4-HMAC-SHA256"
        );
        assert_eq!((err.aws_error().code, err.aws_error().status), ("IncompleteSignatureException", 403));

        let err =
            with_auth("AWS4-HMAC-SHA256 Credential=AK/20150830/us-east-1/lambda/aws4_request, Signature=").unwrap_err();
        assert_eq!(
            err,
            SigV4Error::MissingAuthorizationComponents {
                missing: vec!["Signature", "SignedHeaders"],
                date_missing: false,
                authorization: "AWS4-HMAC-SHA256 Credential=AK/20150830/us-east-1/lambda/aws4_request, Signature="
                    .into()
            }
        );
    }

    #[test]
    fn malformed_header_pieces() {
        let err = with_auth("AWS4-HMAC-SHA256 Credential= AK/20150830/us-east-1/lambda/aws4_request").unwrap_err();
        assert_eq!(
            err.aws_error().message,
            "'AK/20150830/us-east-1/lambda/aws4_request' not a valid key=value pair (missing equal-sign) in \
             Authorization header: 'AWS4-HMAC-SHA256 Credential= AK/20150830/us-east-1/lambda/aws4_request'."
        );

        let auth =
            format!("AWS4-HMAC-SHA512 Credential=AK/20150830/r/s/aws4_request, SignedHeaders=host, Signature={SIG}");
        let err = with_auth(&auth).unwrap_err();
        assert_eq!(
            err.aws_error().message,
            "Unsupported AWS 'algorithm': 'AWS4-HMAC-SHA512' (only AWS4-HMAC-SHA256 for now)."
        );

        let auth = format!("AWS4-HMAC-SHA256 Credential=AK/20150830/r/s, SignedHeaders=host, Signature={SIG}");
        assert_eq!(
            with_auth(&auth).unwrap_err().aws_error().message,
            "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, \
             got 'AK/20150830/r/s'"
        );

        let auth = format!(
            "AWS4-HMAC-SHA256 Credential=AK/20150830/r/s/aws4_request, SignedHeaders=x-amz-date, Signature={SIG}"
        );
        let err = with_auth(&auth).unwrap_err();
        assert_eq!(err, SigV4Error::HostNotSigned);
        assert_eq!(
            err.aws_error().message,
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."
        );

        for bad in ["abc", &SIG[1..], &format!("{}g", &SIG[1..]), &format!("{SIG}00")] {
            let auth = format!(
                "AWS4-HMAC-SHA256 Credential=AK/20150830/r/s/aws4_request, SignedHeaders=host, Signature={bad}"
            );
            assert_eq!(with_auth(&auth), Err(SigV4Error::MalformedSignature), "{bad}");
        }

        let err = parse_with(&[("authorization", b"AWS4-HMAC-SHA256 Credential=\xff\xfe")], "").unwrap_err();
        assert!(matches!(err, SigV4Error::MalformedAuthorizationPair { .. }));
    }

    #[test]
    fn date_header_fallback_and_bad_dates() {
        let auth = format!(
            "AWS4-HMAC-SHA256 Credential=AK/20150830/r/s/aws4_request, SignedHeaders=date;host, Signature={SIG}"
        );
        for date in ["Sun, 30 Aug 2015 12:36:00 GMT", "Sun, 30 Aug 2015 12:36:00 -0000", "20150830T123600Z"] {
            let headers: [(&str, &[u8]); 3] =
                [("host", b"example.com"), ("Date", date.as_bytes()), ("authorization", auth.as_bytes())];
            let p = parse_with(&headers, "").unwrap().unwrap();
            assert_eq!(p.amz_date, "20150830T123600Z", "{date}");
        }
        // X-Amz-Date wins over Date.
        let headers: [(&str, &[u8]); 4] = [
            ("host", b"example.com"),
            ("date", b"Mon, 31 Aug 2015 12:36:00 GMT"),
            ("x-amz-date", b"20150830T123600Z"),
            ("authorization", auth.as_bytes()),
        ];
        assert_eq!(parse_with(&headers, "").unwrap().unwrap().amz_date, "20150830T123600Z");

        for bad in [
            "201",
            "20150830T123600",
            "2015-08-30T12:36:00Z",
            "20150230T123600Z",
            "20150830T243600Z",
            "２0150830T123600Z",
        ] {
            let headers: [(&str, &[u8]); 3] =
                [("host", b"example.com"), ("x-amz-date", bad.as_bytes()), ("authorization", auth.as_bytes())];
            let err = parse_with(&headers, "").unwrap_err();
            assert_eq!(
                err.aws_error().message,
                format!(
                    "Date must be in ISO-8601 'basic format'. Got '{bad}'. See http://en.wikipedia.org/wiki/ISO_8601"
                )
            );
        }
    }

    #[test]
    fn civil_date_arithmetic() {
        assert_eq!(parse_amz_date("19700101T000000Z"), Some(0));
        assert_eq!(parse_amz_date("19691231T235959Z"), Some(-1));
        assert_eq!(parse_amz_date("20000229T000000Z"), Some(951_782_400));
        assert_eq!(parse_amz_date("20240229T120000Z"), Some(1_709_208_000));
        assert_eq!(parse_amz_date("20240301T000000Z"), Some(1_709_251_200));
        assert_eq!(parse_amz_date("20231231T235959Z"), Some(1_704_067_199));
        assert_eq!(parse_amz_date("20230229T000000Z"), None);
        assert_eq!(parse_amz_date("19000229T000000Z"), None);
        assert_eq!(parse_amz_date("21000229T000000Z"), None);
        assert_eq!(parse_amz_date("20241301T000000Z"), None);
        assert_eq!(parse_amz_date("20240100T000000Z"), None);
        assert_eq!(parse_amz_date("20240431T000000Z"), None);
        assert_eq!(parse_amz_date("20240101T006000Z"), None);
        assert_eq!(parse_amz_date("20240101T000060Z"), None);
        assert_eq!(parse_amz_date("2024010+T000000Z"), None);
        for t in [0, 951_782_400, 1_709_208_000, 4_107_542_399, 253_402_300_799] {
            assert_eq!(parse_amz_date(&format_amz_date(t)), Some(t), "{t}");
        }
        assert_eq!(format_amz_date(253_402_300_799), "99991231T235959Z");
        assert_eq!(parse_http_date("Thu, 29 Feb 2024 12:00:00 GMT"), Some(1_709_208_000));
        assert_eq!(parse_http_date("29 Feb 2024 12:00:00 GMT"), Some(1_709_208_000));
        assert_eq!(parse_http_date("Thu, 29 Feb 2023 12:00:00 GMT"), None);
        assert_eq!(parse_http_date("Thu, 29 Feb 2024 12:00:00 +0100"), None);
        assert_eq!(parse_http_date("Thursday, 29 Feb 2024 12:00:00 GMT"), None);
    }

    #[test]
    fn presigned_query_form() {
        let query = format!(
            "Qualifier=prod&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AK%2F20150830%2Fus-east-1%2Flambda%2Faws4_request\
             &X-Amz-Date=20150830T123600Z&X-Amz-Expires=900&X-Amz-SignedHeaders=host&X-Amz-Security-Token=tok%2Ben%3D\
             &X-Amz-Signature={SIG}"
        );
        let p = parse_with(&[("host", b"example.com")], &query).unwrap().unwrap();
        assert_eq!(p.credential.access_key_id, "AK");
        assert_eq!(p.credential.service, "lambda");
        assert_eq!(p.presigned_expires, Some(900));
        assert_eq!(p.security_token.as_deref(), Some("tok+en="));
        assert_eq!(p.signed_headers, ["host"]);

        let auth =
            format!("AWS4-HMAC-SHA256 Credential=AK/20150830/r/s/aws4_request, SignedHeaders=host, Signature={SIG}");
        let both = parse_with(&[("host", b"example.com"), ("authorization", auth.as_bytes())], &query);
        assert_eq!(both, Err(SigV4Error::AmbiguousAuthentication));

        let err = parse_with(
            &[("host", b"example.com")],
            "X-Amz-Credential=AK%2F20150830%2Fr%2Fs%2Faws4_request&X-Amz-Date=20150830T123600Z",
        )
        .unwrap_err();
        assert_eq!(
            err.aws_error().message,
            "AWS query-string parameters must include 'X-Amz-Algorithm'. AWS query-string parameters must include \
             'X-Amz-Signature'. AWS query-string parameters must include 'X-Amz-SignedHeaders'. AWS query-string \
             parameters must include 'X-Amz-Expires'. Re-examine the query-string parameters."
        );

        for (expires, expected) in [
            ("0", SigV4Error::ExpiresOutOfRange { expires: 0 }),
            ("604801", SigV4Error::ExpiresOutOfRange { expires: 604_801 }),
            ("-5", SigV4Error::MalformedExpires { expires: "-5".into() }),
            ("99999999999999999999999", SigV4Error::MalformedExpires { expires: "99999999999999999999999".into() }),
        ] {
            let q = query.replace("X-Amz-Expires=900", &format!("X-Amz-Expires={expires}"));
            assert_eq!(parse_with(&[("host", b"example.com")], &q), Err(expected), "{expires}");
        }
        let q = query.replace("X-Amz-Expires=900", "X-Amz-Expires=604800");
        assert_eq!(parse_with(&[("host", b"example.com")], &q).unwrap().unwrap().presigned_expires, Some(604_800));
    }
}
