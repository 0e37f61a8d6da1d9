//! AWS Signature Version 4 verification.
//!
//! A request is taken as plain data ([`RequestParts`]) so the HTTP layer stays
//! in the adapter. The steps, in the order AWS applies them:
//!
//! 1. [`parse`] finds the signature (Authorization header or presigned query);
//!    `Ok(None)` means the request is unsigned.
//! 2. [`check`] compares the request time with `now` and the credential scope
//!    with the endpoint's region and service.
//! 3. The caller looks up the access key and derives (or takes from its cache)
//!    the [`SigningKey`] with [`signing_key`].
//! 4. [`verify`] recomputes the signature over the canonical request.
//!
//! [`authenticate`] runs all four with a key lookup closure.

mod canonical;
mod error;
mod parse;
mod sign;

pub use canonical::canonical_request;
pub use error::{AwsErrorResponse, ScopeFault, SigV4Error};
pub use parse::{format_amz_date, parse, parse_amz_date, parse_http_date};
pub use sign::Signer;

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The only algorithm SigV4 defines (SigV4a's ECDSA is not supported).
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// How far a request time may be from the server's clock, either way.
pub const MAX_SKEW_SECS: i64 = 15 * 60;
/// The longest a presigned URL may live: a week, as long as a signing key.
pub const MAX_PRESIGNED_EXPIRES_SECS: u64 = 7 * 24 * 60 * 60;
/// The payload hash of requests whose body is not signed.
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";

/// The parts of an HTTP request that SigV4 signs, as received.
#[derive(Debug, Clone, Copy)]
pub struct RequestParts<'a> {
    pub method: &'a str,
    /// The path exactly as it arrived on the wire (still percent-encoded).
    pub path: &'a str,
    /// The raw query string, without the `?`.
    pub query: &'a str,
    /// Every header, repeated names included, in arrival order. HTTP/2 requests
    /// have no `host` header: pass the `:authority` as `host`.
    pub headers: &'a [(&'a str, &'a [u8])],
    /// Lower-case hex SHA-256 of the body ([`sha256_hex`]).
    pub payload_sha256: &'a str,
}

impl<'a> RequestParts<'a> {
    fn header_values<'n>(&self, name: &'n str) -> impl Iterator<Item = &'a [u8]> + use<'a, 'n> {
        self.headers.iter().filter(move |(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| *v)
    }

    fn header(&self, name: &str) -> Option<&'a [u8]> {
        self.header_values(name).next()
    }
}

/// The credential of a signature: `AKID/yyyymmdd/region/service/aws4_request`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    pub access_key_id: String,
    /// `yyyymmdd`, as the client wrote it.
    pub date: String,
    pub region: String,
    pub service: String,
    /// `aws4_request` in every valid signature.
    pub terminator: String,
}

impl Credential {
    /// `date/region/service/terminator`, the third line of the string to sign.
    pub fn scope(&self) -> String {
        format!("{}/{}/{}/{}", self.date, self.region, self.service, self.terminator)
    }
}

/// A signature found in a request, syntactically valid but not yet verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedSignature {
    pub credential: Credential,
    /// Lower-cased header names, in the order the client listed them.
    pub signed_headers: Vec<String>,
    pub signature: [u8; 32],
    /// The request time as `yyyymmddTHHMMSSZ` (from `X-Amz-Date`, or the `Date` header).
    pub amz_date: String,
    /// The request time in seconds since the epoch.
    pub request_time: i64,
    pub security_token: Option<String>,
    /// `X-Amz-Expires` of a presigned URL; `None` for the Authorization header.
    pub presigned_expires: Option<u64>,
}

/// What the endpoint expects in the credential scope.
#[derive(Debug, Clone, Copy)]
pub struct ExpectedScope<'a> {
    /// The signing name, e.g. `lambda`, `logs` or `s3`.
    pub service: &'a str,
    /// `None` accepts any non-empty region.
    pub region: Option<&'a str>,
}

/// `kSigning`: valid for one access key, date, region and service.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKey(pub [u8; 32]);

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey(..)")
    }
}

/// Lower-case hex SHA-256, the form SigV4 uses for payload and canonical request hashes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// Derives `kSigning` = HMAC chain over `"AWS4" + secret`, date, region, service, `aws4_request`.
pub fn signing_key(secret_access_key: &str, date: &str, region: &str, service: &str) -> SigningKey {
    let mut secret = Vec::with_capacity(4 + secret_access_key.len());
    secret.extend_from_slice(b"AWS4");
    secret.extend_from_slice(secret_access_key.as_bytes());
    let k_date = hmac_sha256(&secret, date.as_bytes());
    let k_region = hmac_sha256(&k_date, region.as_bytes());
    let k_service = hmac_sha256(&k_region, service.as_bytes());
    SigningKey(hmac_sha256(&k_service, b"aws4_request"))
}

/// `AWS4-HMAC-SHA256 \n amz_date \n scope \n hex(sha256(canonical_request))`.
pub fn string_to_sign(amz_date: &str, scope: &str, canonical_request: &[u8]) -> String {
    format!("{ALGORITHM}\n{amz_date}\n{scope}\n{}", sha256_hex(canonical_request))
}

/// Checks the request time against `now` (epoch seconds) and the credential scope.
pub fn check(parsed: &ParsedSignature, expected: &ExpectedScope<'_>, now: i64) -> Result<(), SigV4Error> {
    let t = parsed.request_time;
    if t > now.saturating_add(MAX_SKEW_SECS) {
        return Err(SigV4Error::SignatureNotYetCurrent {
            request_time: t,
            now,
            presigned: parsed.presigned_expires.is_some(),
        });
    }
    match parsed.presigned_expires {
        None if t < now.saturating_sub(MAX_SKEW_SECS) => {
            return Err(SigV4Error::SignatureExpired { request_time: t, now });
        }
        Some(expires) if now > t.saturating_add_unsigned(expires) => {
            return Err(SigV4Error::PresignedUrlExpired { request_time: t, expires, now });
        }
        _ => {}
    }

    let c = &parsed.credential;
    let mut faults = Vec::new();
    let region_ok = match expected.region {
        Some(region) => c.region == region,
        None => !c.region.is_empty(),
    };
    if !region_ok {
        faults.push(ScopeFault::Region { got: c.region.clone() });
    }
    if c.service != expected.service {
        faults.push(ScopeFault::Service { expected: expected.service.to_string() });
    }
    if c.terminator != "aws4_request" {
        faults.push(ScopeFault::Terminator { got: c.terminator.clone() });
    }
    if parsed.amz_date.get(..8) != Some(c.date.as_str()) {
        faults.push(ScopeFault::Date { scope_date: c.date.clone(), amz_date: parsed.amz_date.clone() });
    }
    if faults.is_empty() { Ok(()) } else { Err(SigV4Error::WrongScope { faults }) }
}

/// Recomputes the signature with `key` and compares it in constant time.
pub fn verify(request: &RequestParts<'_>, parsed: &ParsedSignature, key: &SigningKey) -> Result<(), SigV4Error> {
    let declared = match request.header("x-amz-content-sha256") {
        Some(value) => Some(std::str::from_utf8(value).map_err(|_| SigV4Error::PayloadHashMismatch)?.trim()),
        None => None,
    };
    // A presigned URL is made before its body exists: S3 presigners sign
    // UNSIGNED-PAYLOAD, others (botocore's SigV4QueryAuth, aws-sigv4) the hash
    // of whatever body they were given, usually empty. Try both.
    let candidates: &[&str] = match declared {
        Some(d) if d.starts_with("STREAMING-") => return Err(SigV4Error::StreamingPayloadUnsupported),
        Some(d) => &[d],
        None if parsed.presigned_expires.is_some() => &[request.payload_sha256, UNSIGNED_PAYLOAD],
        None => &[request.payload_sha256],
    };

    let scope = parsed.credential.scope();
    let mut first_attempt = None;
    for payload_hash in candidates {
        let creq = canonical_request(request, parsed, payload_hash)?;
        let sts = string_to_sign(&parsed.amz_date, &scope, &creq);
        let expected = hmac_sha256(&key.0, sts.as_bytes());
        if bool::from(expected.ct_eq(&parsed.signature)) {
            // The signature covers the declared hash; the body must match it.
            return match declared {
                Some(d) if d != UNSIGNED_PAYLOAD && !d.eq_ignore_ascii_case(request.payload_sha256) => {
                    Err(SigV4Error::PayloadHashMismatch)
                }
                _ => Ok(()),
            };
        }
        first_attempt.get_or_insert((creq, sts));
    }
    let (creq, sts) = first_attempt.unwrap_or_default();
    Err(SigV4Error::SignatureMismatch {
        canonical_request: String::from_utf8_lossy(&creq).into_owned(),
        string_to_sign: sts,
    })
}

/// Parses, checks and verifies in AWS's order, with `now` in epoch seconds.
/// `key_for` returns the signing key for a credential (typically from a cache
/// filled by [`signing_key`]), or `None` for an unknown access key.
pub fn authenticate(
    request: &RequestParts<'_>,
    expected: &ExpectedScope<'_>,
    now: i64,
    key_for: impl FnOnce(&Credential) -> Option<SigningKey>,
) -> Result<ParsedSignature, SigV4Error> {
    let parsed = parse(request)?.ok_or(SigV4Error::MissingAuthentication)?;
    check(&parsed, expected, now)?;
    let key = key_for(&parsed.credential).ok_or(SigV4Error::UnrecognizedClient)?;
    verify(request, &parsed, &key)?;
    Ok(parsed)
}

/// HMAC-SHA256 (RFC 2104), the primitive of SigV4; also signs Kumo's code download URLs.
pub fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    // RFC 2104 zero-pads a key to the block size and first hashes a longer
    // one; doing that here lets us use the infallible block-sized constructor.
    let mut block = [0u8; 64];
    if key.len() > block.len() {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let mut mac = <Hmac<Sha256> as KeyInit>::new(&block.into());
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    /// 2015-08-30T12:36:00Z, the time of AWS's SigV4 test suite.
    const T: i64 = 1_440_938_160;
    const LAMBDA: ExpectedScope<'static> = ExpectedScope { service: "service", region: Some("us-east-1") };

    fn vanilla_auth(signature: &str) -> String {
        format!(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
             SignedHeaders=host;x-amz-date, Signature={signature}"
        )
    }

    const VANILLA_SIG: &str = "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31";

    fn key() -> SigningKey {
        signing_key(SECRET, "20150830", "us-east-1", "service")
    }

    fn run(headers: &[(&str, &[u8])], query: &str, now: i64) -> Result<ParsedSignature, SigV4Error> {
        let req = RequestParts { method: "GET", path: "/", query, headers, payload_sha256: EMPTY_SHA256 };
        authenticate(&req, &LAMBDA, now, |c| (c.access_key_id == "AKIDEXAMPLE").then(key))
    }

    #[test]
    fn hmac_matches_rfc_4231_for_short_and_long_keys() {
        assert_eq!(
            hex(&hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            hex(&hmac_sha256(&[0xaa; 131], b"Test Using Larger Than Block-Size Key - Hash Key First")),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn signing_key_matches_aws_documentation() {
        let k = signing_key(SECRET, "20120215", "us-east-1", "iam");
        assert_eq!(hex(&k.0), "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d");
        assert_eq!(format!("{k:?}"), "SigningKey(..)");
    }

    #[test]
    fn sha256_of_nothing() {
        assert_eq!(sha256_hex(b""), EMPTY_SHA256);
    }

    #[test]
    fn accepts_aws_test_suite_get_vanilla() {
        let auth = vanilla_auth(VANILLA_SIG);
        let headers: [(&str, &[u8]); 3] = [
            ("Host", b"example.amazonaws.com"),
            ("X-Amz-Date", b"20150830T123600Z"),
            ("Authorization", auth.as_bytes()),
        ];
        let parsed = run(&headers, "", T).unwrap();
        assert_eq!(parsed.credential.access_key_id, "AKIDEXAMPLE");

        let query_auth = vanilla_auth("b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500");
        let headers: [(&str, &[u8]); 3] = [
            ("host", b"example.amazonaws.com"),
            ("x-amz-date", b"20150830T123600Z"),
            ("authorization", query_auth.as_bytes()),
        ];
        run(&headers, "Param2=value2&Param1=value1", T).unwrap();
    }

    #[test]
    fn rejects_a_changed_header_key_or_signature() {
        let auth = vanilla_auth(VANILLA_SIG);
        let headers: [(&str, &[u8]); 3] = [
            ("host", b"example.amazonaws.com."),
            ("x-amz-date", b"20150830T123600Z"),
            ("authorization", auth.as_bytes()),
        ];
        let err = run(&headers, "", T).unwrap_err();
        let SigV4Error::SignatureMismatch { canonical_request, string_to_sign } = &err else { panic!("{err:?}") };
        assert!(canonical_request.contains("host:example.amazonaws.com.\n"), "{canonical_request}");
        assert!(
            string_to_sign.starts_with("AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n")
        );
        assert_eq!(err.aws_error().code, "InvalidSignatureException");
        assert_eq!(
            err.aws_error().message,
            "The request signature we calculated does not match the signature you provided. Check your AWS Secret \
             Access Key and signing method. Consult the service documentation for details."
        );
        assert_eq!(err.s3_error().code, "SignatureDoesNotMatch");

        let headers: [(&str, &[u8]); 3] = [
            ("host", b"example.amazonaws.com"),
            ("x-amz-date", b"20150830T123600Z"),
            ("authorization", auth.as_bytes()),
        ];
        let req = RequestParts { method: "GET", path: "/", query: "", headers: &headers, payload_sha256: EMPTY_SHA256 };
        let parsed = parse(&req).unwrap().unwrap();
        let wrong = signing_key("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEx", "20150830", "us-east-1", "service");
        assert!(matches!(verify(&req, &parsed, &wrong), Err(SigV4Error::SignatureMismatch { .. })));
        let mut flipped = parsed.clone();
        flipped.signature[31] ^= 1;
        assert!(matches!(verify(&req, &flipped, &key()), Err(SigV4Error::SignatureMismatch { .. })));
        assert_eq!(verify(&req, &parsed, &key()), Ok(()));
    }

    #[test]
    fn missing_signature_and_unknown_key() {
        let err = run(&[("host", b"example.amazonaws.com")], "", T).unwrap_err();
        assert_eq!(err, SigV4Error::MissingAuthentication);
        let r = err.aws_error();
        assert_eq!(
            (r.code, r.status, r.message.as_str()),
            ("MissingAuthenticationTokenException", 403, "Missing Authentication Token")
        );

        let auth = vanilla_auth(VANILLA_SIG).replace("AKIDEXAMPLE", "AKIDOTHER");
        let headers: [(&str, &[u8]); 3] = [
            ("host", b"example.amazonaws.com"),
            ("x-amz-date", b"20150830T123600Z"),
            ("authorization", auth.as_bytes()),
        ];
        let err = run(&headers, "", T).unwrap_err();
        assert_eq!(err, SigV4Error::UnrecognizedClient);
        assert_eq!(err.aws_error().message, "The security token included in the request is invalid.");
        assert_eq!(err.s3_error().code, "InvalidAccessKeyId");
    }

    fn parsed_at(amz_date: &str, presigned_expires: Option<u64>) -> ParsedSignature {
        ParsedSignature {
            credential: Credential {
                access_key_id: "AKID".into(),
                date: amz_date[..8].into(),
                region: "us-east-1".into(),
                service: "service".into(),
                terminator: "aws4_request".into(),
            },
            signed_headers: vec!["host".into()],
            signature: [0; 32],
            amz_date: amz_date.into(),
            request_time: parse_amz_date(amz_date).unwrap(),
            security_token: None,
            presigned_expires,
        }
    }

    #[test]
    fn fifteen_minutes_either_side_inclusive() {
        let p = parsed_at("20150830T123600Z", None);
        assert_eq!(check(&p, &LAMBDA, T + 900), Ok(()));
        assert_eq!(check(&p, &LAMBDA, T - 900), Ok(()));

        let late = check(&p, &LAMBDA, T + 901).unwrap_err();
        assert_eq!(late, SigV4Error::SignatureExpired { request_time: T, now: T + 901 });
        assert_eq!(
            late.aws_error().message,
            "Signature expired: 20150830T123600Z is now earlier than 20150830T123601Z (20150830T125101Z - 15 min.)"
        );
        assert_eq!(late.s3_error().code, "RequestTimeTooSkewed");

        let early = check(&p, &LAMBDA, T - 901).unwrap_err();
        assert_eq!(
            early.aws_error().message,
            "Signature not yet current: 20150830T123600Z is still later than 20150830T123559Z (20150830T122059Z + 15 min.)"
        );
        assert_eq!(early.aws_error().code, "InvalidSignatureException");
        assert_eq!(early.s3_error().code, "RequestTimeTooSkewed");

        // The example of the task's brief: 12:36 against a clock at 13:01.
        let brief = SigV4Error::SignatureExpired { request_time: T, now: T + 25 * 60 };
        assert_eq!(
            brief.aws_error().message,
            "Signature expired: 20150830T123600Z is now earlier than 20150830T124600Z (20150830T130100Z - 15 min.)"
        );
    }

    #[test]
    fn presigned_urls_live_for_their_expiry() {
        let p = parsed_at("20150830T123600Z", Some(3600));
        assert_eq!(check(&p, &LAMBDA, T + 3600), Ok(()));
        // Beyond the 15 minutes a header signature gets, but within X-Amz-Expires.
        assert_eq!(check(&p, &LAMBDA, T + 1800), Ok(()));
        let expired = check(&p, &LAMBDA, T + 3601).unwrap_err();
        assert_eq!(expired, SigV4Error::PresignedUrlExpired { request_time: T, expires: 3600, now: T + 3601 });
        assert_eq!(expired.s3_error().message, "Request has expired");
        assert_eq!(check(&p, &LAMBDA, T - 900), Ok(()));
        let future = check(&p, &LAMBDA, T - 901).unwrap_err();
        assert!(matches!(future, SigV4Error::SignatureNotYetCurrent { presigned: true, .. }));
        assert_eq!(future.s3_error().message, "Request is not yet valid");

        let short = parsed_at("20150830T123600Z", Some(60));
        assert_eq!(check(&short, &LAMBDA, T + 60), Ok(()));
        assert!(check(&short, &LAMBDA, T + 61).is_err());
    }

    #[test]
    fn every_scope_fault_is_reported_at_once() {
        let mut p = parsed_at("20150830T123600Z", None);
        p.credential.region = "eu-west-1".into();
        p.credential.service = "s3".into();
        p.credential.terminator = "aws5_request".into();
        p.credential.date = "20150829".into();
        let expected = ExpectedScope { service: "lambda", region: Some("us-east-1") };
        let err = check(&p, &expected, T).unwrap_err();
        assert_eq!(
            err.aws_error().message,
            "Credential should be scoped to a valid region, not 'eu-west-1'. \
             Credential should be scoped to correct service: 'lambda'. \
             Credential should be scoped with a valid terminator: 'aws4_request', not 'aws5_request'. \
             Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: \
             '20150829' != '20150830', from '20150830T123600Z'."
        );
        assert_eq!(err.s3_error().code, "AuthorizationHeaderMalformed");

        let mut p = parsed_at("20150830T123600Z", None);
        p.credential.region = String::new();
        let any_region = ExpectedScope { service: "service", region: None };
        let err = check(&p, &any_region, T).unwrap_err();
        assert_eq!(err.aws_error().message, "Credential should be scoped to a valid region.");
        p.credential.region = "ap-south-2".into();
        assert_eq!(check(&p, &any_region, T), Ok(()));
    }

    fn signed_with_payload_header(declared: &str, body_hash: &str) -> Result<(), SigV4Error> {
        let headers_no_auth: [(&str, &[u8]); 3] = [
            ("host", b"example.amazonaws.com"),
            ("x-amz-content-sha256", declared.as_bytes()),
            ("x-amz-date", b"20150830T123600Z"),
        ];
        let mut parsed = parsed_at("20150830T123600Z", None);
        parsed.signed_headers = vec!["host".into(), "x-amz-content-sha256".into(), "x-amz-date".into()];
        let req =
            RequestParts { method: "PUT", path: "/", query: "", headers: &headers_no_auth, payload_sha256: body_hash };
        let creq = canonical_request(&req, &parsed, declared)?;
        let sts = string_to_sign(&parsed.amz_date, &parsed.credential.scope(), &creq);
        parsed.signature = hmac_sha256(&key().0, sts.as_bytes());
        verify(&req, &parsed, &key())
    }

    #[test]
    fn declared_payload_hash_is_signed_and_must_match_the_body() {
        let body = sha256_hex(b"hello");
        assert_eq!(signed_with_payload_header(&body, &body), Ok(()));
        assert_eq!(signed_with_payload_header(UNSIGNED_PAYLOAD, &body), Ok(()));
        let err = signed_with_payload_header(&body, EMPTY_SHA256).unwrap_err();
        assert_eq!(err, SigV4Error::PayloadHashMismatch);
        assert_eq!(err.s3_error().code, "XAmzContentSHA256Mismatch");
        assert_eq!(
            signed_with_payload_header("STREAMING-AWS4-HMAC-SHA256-PAYLOAD", &body),
            Err(SigV4Error::StreamingPayloadUnsupported)
        );
    }
}
