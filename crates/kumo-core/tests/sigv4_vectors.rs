//! Golden vectors for the SigV4 verifier: requests signed by aws-sigv4 (at test
//! time) and by botocore (fixtures/sigv4/botocore.json, written by
//! scripts/sigv4-vectors.py) must verify, and stop verifying when any signed
//! part changes.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, UNIX_EPOCH};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SignatureLocation, SigningSettings,
    UriPathNormalizationMode, sign,
};
use aws_sigv4::sign::v4;
use kumo_core::sigv4::{
    self, ExpectedScope, ParsedSignature, RequestParts, SigV4Error, SigningKey, canonical_request, sha256_hex,
    signing_key, string_to_sign,
};
use proptest::prelude::*;

const AKID: &str = "AKIDEXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
/// 2015-08-30T12:36:00Z.
const T: i64 = 1_440_938_160;

/// A request as the server receives it.
#[derive(Debug, Clone)]
struct Wire {
    method: String,
    path: String,
    query: String,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
    service: String,
    region: String,
}

impl Wire {
    fn verify_with(&self, secret: &str, now: i64) -> Result<ParsedSignature, SigV4Error> {
        let headers: Vec<(&str, &[u8])> = self.headers.iter().map(|(k, v)| (k.as_str(), v.as_slice())).collect();
        let body_hash = sha256_hex(&self.body);
        let req = RequestParts {
            method: &self.method,
            path: &self.path,
            query: &self.query,
            headers: &headers,
            payload_sha256: &body_hash,
        };
        let expected = ExpectedScope { service: &self.service, region: Some(&self.region) };
        sigv4::authenticate(&req, &expected, now, |c| {
            (c.access_key_id == AKID).then(|| signing_key(secret, &c.date, &c.region, &c.service))
        })
    }

    fn verify(&self) -> Result<ParsedSignature, SigV4Error> {
        self.verify_with(SECRET, T + 30)
    }

    fn set_header(&mut self, name: &str, value: &[u8]) {
        for (k, v) in &mut self.headers {
            if k.eq_ignore_ascii_case(name) {
                *v = value.to_vec();
            }
        }
    }

    fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_slice())
    }
}

/// What to sign with aws-sigv4.
#[derive(Debug, Clone)]
struct Case {
    method: &'static str,
    service: &'static str,
    region: &'static str,
    /// Path and query as the client sends them.
    path_and_query: String,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
    token: Option<&'static str>,
    presign_expires: Option<u64>,
    unsigned_payload: bool,
}

impl Case {
    fn new(method: &'static str, service: &'static str, path_and_query: &str) -> Self {
        Case {
            method,
            service,
            region: "us-east-1",
            path_and_query: path_and_query.to_string(),
            headers: Vec::new(),
            body: Vec::new(),
            token: None,
            presign_expires: None,
            unsigned_payload: false,
        }
    }

    fn host(&self) -> String {
        format!("{}.{}.amazonaws.com", self.service, self.region)
    }

    /// Signs with aws-sigv4, configured as the AWS SDK for Rust configures it per service.
    fn sign(&self) -> Wire {
        let identity = Credentials::new(AKID, SECRET, self.token.map(str::to_string), None, "test").into();
        let mut settings = SigningSettings::default();
        if self.service == "s3" {
            settings.percent_encoding_mode = PercentEncodingMode::Single;
            settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
            settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        }
        if self.unsigned_payload {
            // Declared in x-amz-content-sha256, so the server knows the body is unsigned.
            settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        }
        if let Some(expires) = self.presign_expires {
            settings.signature_location = SignatureLocation::QueryParams;
            settings.expires_in = Some(Duration::from_secs(expires));
        }
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(self.region)
            .name(self.service)
            .time(UNIX_EPOCH + Duration::from_secs(T as u64))
            .settings(settings)
            .build()
            .unwrap()
            .into();
        let uri = format!("https://{}{}", self.host(), self.path_and_query);
        let body = if self.unsigned_payload { SignableBody::UnsignedPayload } else { SignableBody::Bytes(&self.body) };
        let signable =
            SignableRequest::new(self.method, uri.clone(), self.headers.iter().map(|(k, v)| (*k, v.as_str())), body)
                .unwrap();
        let (instructions, _) = sign(signable, &params).unwrap().into_parts();

        let mut request = http::Request::builder().method(self.method).uri(&uri);
        for (k, v) in &self.headers {
            request = request.header(*k, v.as_str());
        }
        let mut request = request.body(()).unwrap();
        instructions.apply_to_request_http1x(&mut request);

        let mut headers: Vec<(String, Vec<u8>)> =
            request.headers().iter().map(|(k, v)| (k.as_str().to_string(), v.as_bytes().to_vec())).collect();
        if !headers.iter().any(|(k, _)| k == "host") {
            headers.push(("host".to_string(), self.host().into_bytes()));
        }
        Wire {
            method: self.method.to_string(),
            path: request.uri().path().to_string(),
            query: request.uri().query().unwrap_or("").to_string(),
            headers,
            body: self.body.clone(),
            service: self.service.to_string(),
            region: self.region.to_string(),
        }
    }
}

fn oracle_cases() -> Vec<Case> {
    let mut cases = Vec::new();

    let mut invoke = Case::new("POST", "lambda", "/2015-03-31/functions/my-fn%3Aprod/invocations");
    invoke.headers = vec![
        ("content-type", "application/json".into()),
        ("x-amz-invocation-type", "RequestResponse".into()),
        ("user-agent", "aws-sdk-rust/1.0 (not signed)".into()),
    ];
    invoke.body = br#"{"key": "value"}"#.to_vec();
    cases.push(invoke);

    cases.push(Case::new("GET", "lambda", "/2015-03-31/functions/my-fn:prod/configuration"));
    cases.push(Case::new("GET", "lambda", "/2015-03-31/functions/100%25%20done/policy"));
    cases.push(Case::new("GET", "lambda", "/2015-03-31/functions/caf%C3%A9"));
    cases.push(Case::new("GET", "lambda", "/2015-03-31/functions/a/./b/../c//d/"));
    cases.push(Case::new(
        "GET",
        "lambda",
        "/2018-10-31/layers?tag=b&tag=a&Marker=a%2Fb%20c&x=%7E&plus=a+b&lit=%2B&empty=&flag&caf%C3%A9=%E2%82%AC",
    ));

    let mut token = Case::new("DELETE", "lambda", "/2015-03-31/functions/fn/aliases/live");
    token.token = Some("IQoJb3JpZ2luX2VjEBAa+/token==");
    token.region = "eu-west-1";
    cases.push(token);

    let mut spaces = Case::new("PUT", "lambda", "/2015-03-31/functions/fn/concurrency");
    spaces.headers =
        vec![("x-custom", "  a   b  ".into()), ("x-multi", "one".into()), ("x-multi", "two  three".into())];
    spaces.body = br#"{"ReservedConcurrentExecutions": 5}"#.to_vec();
    cases.push(spaces);

    let mut unsigned = Case::new("POST", "lambda", "/2015-03-31/functions/fn/invocations");
    unsigned.unsigned_payload = true;
    unsigned.body = b"{}".to_vec();
    cases.push(unsigned);

    let mut logs = Case::new("POST", "logs", "/");
    logs.region = "eu-central-1";
    logs.headers = vec![
        ("x-amz-target", "Logs_20140328.PutLogEvents".into()),
        ("content-type", "application/x-amz-json-1.1".into()),
    ];
    logs.body = "{\"logGroupName\": \"/aws/lambda/caf\u{e9}\"}".as_bytes().to_vec();
    cases.push(logs);

    let mut presigned = Case::new("GET", "lambda", "/2015-03-31/functions/my-fn%3A1/configuration?Qualifier=prod");
    presigned.presign_expires = Some(900);
    cases.push(presigned);

    let mut presigned_token = Case::new("GET", "lambda", "/2015-03-31/functions/my-fn/policy");
    presigned_token.presign_expires = Some(604_800);
    presigned_token.token = Some("IQoJb3JpZ2luX2VjEBAa+/token==");
    cases.push(presigned_token);

    let mut s3_put = Case::new("PUT", "s3", "/bucket/a%20b/./c//d%3A.txt");
    s3_put.headers = vec![("content-type", "text/plain".into())];
    s3_put.body = b"hello s3".to_vec();
    s3_put.token = Some("IQoJb3JpZ2luX2VjEBAa+/token==");
    cases.push(s3_put);

    cases.push(Case::new("GET", "s3", "/bucket?list-type=2&prefix=a%2Fb&delimiter=%2F"));

    let mut s3_presigned = Case::new("GET", "s3", "/bucket/key%20x?versionId=3");
    s3_presigned.presign_expires = Some(3600);
    s3_presigned.unsigned_payload = true;
    s3_presigned.token = Some("IQoJb3JpZ2luX2VjEBAa+/token==");
    cases.push(s3_presigned);

    cases
}

/// Every way of changing a signed part of `wire`; each must be refused.
fn mutations(wire: &Wire) -> Vec<(&'static str, Wire)> {
    let mut out = Vec::new();

    let mut path = wire.clone();
    path.path.push('x');
    out.push(("path", path));

    let mut query = wire.clone();
    query.query = if wire.query.is_empty() { "zz=1".into() } else { format!("{}&zz=1", wire.query) };
    out.push(("query", query));

    let mut host = wire.clone();
    host.set_header("host", b"attacker.example.com");
    out.push(("host header", host));

    let mut method = wire.clone();
    method.method = if wire.method == "GET" { "HEAD".into() } else { "GET".into() };
    out.push(("method", method));

    let body_signed = wire.header("x-amz-content-sha256") != Some(b"UNSIGNED-PAYLOAD")
        && !(wire.service == "s3" && wire.query.contains("X-Amz-Signature"));
    if body_signed {
        let mut body = wire.clone();
        match body.body.first_mut() {
            Some(b) => *b ^= 0x01,
            None => body.body.push(b'x'),
        }
        out.push(("body", body));
    }
    out
}

fn assert_refused(wire: &Wire, what: &str) {
    let result = wire.verify();
    assert!(result.is_err(), "changing the {what} must be refused: {wire:?}");
}

#[test]
fn aws_sigv4_signed_requests_verify() {
    for case in oracle_cases() {
        let wire = case.sign();
        let parsed = wire.verify().unwrap_or_else(|e| panic!("{case:?}\n{wire:?}\n{e:?}"));
        assert_eq!(parsed.security_token.as_deref(), case.token, "{case:?}");
        assert_eq!(parsed.presigned_expires, case.presign_expires);

        let wrong_secret = wire.verify_with("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEz", T + 30);
        assert!(matches!(wrong_secret, Err(SigV4Error::SignatureMismatch { .. })), "{case:?}");
        for (what, mutated) in mutations(&wire) {
            assert_refused(&mutated, what);
        }
        for (name, _) in wire.headers.iter().filter(|(k, _)| k.starts_with("x-amz-") || k == "content-type") {
            let signed = parsed.signed_headers.iter().any(|s| s == name);
            if signed && name != "x-amz-date" {
                let mut changed = wire.clone();
                changed.set_header(name, b"changed");
                assert_refused(&changed, name);
            }
        }
    }
}

#[test]
fn aws_sigv4_time_limits() {
    let header = Case::new("GET", "lambda", "/2015-03-31/functions").sign();
    assert!(header.verify_with(SECRET, T + 900).is_ok());
    assert!(matches!(header.verify_with(SECRET, T + 901), Err(SigV4Error::SignatureExpired { .. })));
    assert!(matches!(header.verify_with(SECRET, T - 901), Err(SigV4Error::SignatureNotYetCurrent { .. })));

    let mut case = Case::new("GET", "lambda", "/2015-03-31/functions");
    case.presign_expires = Some(3600);
    let presigned = case.sign();
    assert!(presigned.verify_with(SECRET, T + 3600).is_ok());
    assert!(matches!(presigned.verify_with(SECRET, T + 3601), Err(SigV4Error::PresignedUrlExpired { .. })));

    // The date is part of the string to sign, so moving it breaks the signature.
    let mut moved = header.clone();
    moved.set_header("x-amz-date", b"20150830T123601Z");
    assert!(matches!(moved.verify(), Err(SigV4Error::SignatureMismatch { .. })));
}

#[test]
fn long_secrets_derive_the_same_key_as_aws_sigv4() {
    // Over 60 characters, "AWS4" + secret exceeds HMAC's block and is hashed first.
    let secret = "k".repeat(100);
    let identity = Credentials::new(AKID, secret.clone(), None, None, "test").into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("lambda")
        .time(UNIX_EPOCH + Duration::from_secs(T as u64))
        .settings(SigningSettings::default())
        .build()
        .unwrap()
        .into();
    let signable = SignableRequest::new(
        "GET",
        "https://lambda.us-east-1.amazonaws.com/",
        std::iter::empty(),
        SignableBody::Bytes(b""),
    )
    .unwrap();
    let (instructions, _) = sign(signable, &params).unwrap().into_parts();
    let mut request = http::Request::builder().uri("https://lambda.us-east-1.amazonaws.com/").body(()).unwrap();
    instructions.apply_to_request_http1x(&mut request);
    let mut headers: Vec<(String, Vec<u8>)> =
        request.headers().iter().map(|(k, v)| (k.as_str().to_string(), v.as_bytes().to_vec())).collect();
    headers.push(("host".into(), b"lambda.us-east-1.amazonaws.com".to_vec()));
    let wire = Wire {
        method: "GET".into(),
        path: "/".into(),
        query: String::new(),
        headers,
        body: Vec::new(),
        service: "lambda".into(),
        region: "us-east-1".into(),
    };
    assert!(wire.verify_with(&secret, T).is_ok());
}

#[derive(Debug, serde::Deserialize)]
struct BotocoreFile {
    vectors: Vec<BotocoreVector>,
}

#[derive(Debug, serde::Deserialize)]
struct BotocoreVector {
    name: String,
    service: String,
    region: String,
    access_key_id: String,
    secret_access_key: String,
    session_token: Option<String>,
    signed_at: String,
    method: String,
    path: String,
    query: String,
    headers: Vec<(String, String)>,
    body: String,
    body_sha256: String,
    canonical_request: String,
    string_to_sign: String,
}

#[test]
fn botocore_vectors_verify() {
    let file: BotocoreFile = serde_json::from_str(include_str!("fixtures/sigv4/botocore.json")).unwrap();
    assert!(file.vectors.len() >= 16);
    for v in &file.vectors {
        assert_eq!(v.access_key_id, AKID);
        assert_eq!(sha256_hex(v.body.as_bytes()), v.body_sha256, "{}", v.name);
        let wire = Wire {
            method: v.method.clone(),
            path: v.path.clone(),
            query: v.query.clone(),
            headers: v.headers.iter().map(|(k, val)| (k.clone(), val.as_bytes().to_vec())).collect(),
            body: v.body.clone().into_bytes(),
            service: v.service.clone(),
            region: v.region.clone(),
        };
        let now = sigv4::parse_amz_date(&v.signed_at).unwrap();

        // Same canonical request and string to sign as botocore, byte for byte.
        let headers: Vec<(&str, &[u8])> = wire.headers.iter().map(|(k, val)| (k.as_str(), val.as_slice())).collect();
        let req = RequestParts {
            method: &wire.method,
            path: &wire.path,
            query: &wire.query,
            headers: &headers,
            payload_sha256: &v.body_sha256,
        };
        let parsed = sigv4::parse(&req).unwrap().unwrap();
        let payload_line = v.canonical_request.rsplit('\n').next().unwrap();
        let declared = wire.header("x-amz-content-sha256").map(|h| String::from_utf8_lossy(h).into_owned());
        assert!(
            payload_line == v.body_sha256
                || payload_line == "UNSIGNED-PAYLOAD"
                || Some(payload_line) == declared.as_deref(),
            "{}: payload line {payload_line}",
            v.name
        );
        let creq = canonical_request(&req, &parsed, payload_line).unwrap();
        assert_eq!(String::from_utf8(creq.clone()).unwrap(), v.canonical_request, "{}", v.name);
        let sts = string_to_sign(&parsed.amz_date, &parsed.credential.scope(), &creq);
        assert_eq!(sts, v.string_to_sign, "{}", v.name);

        let parsed = wire.verify_with(&v.secret_access_key, now + 60).unwrap_or_else(|e| panic!("{}: {e:?}", v.name));
        assert_eq!(parsed.security_token, v.session_token, "{}", v.name);

        assert!(wire.verify_with("not the secret", now).is_err(), "{}", v.name);
        for (what, mutated) in mutations(&wire) {
            assert!(mutated.verify_with(&v.secret_access_key, now).is_err(), "{}: changed {what}", v.name);
        }
    }
}

fn secret_key() -> SigningKey {
    signing_key(SECRET, "20150830", "us-east-1", "lambda")
}

/// Characters a client may send in a path segment: raw sub-delimiters, escapes, non-ASCII, dots.
fn path_segment() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            "[a-zA-Z0-9_~.-]",
            "[:@!$&'()*+,;=]",
            "[ %/?#\\[\\]{}\"<>^`|]".prop_map(|c| encode(&c)),
            "[\u{e9}\u{20ac}\u{1f600}]".prop_map(|c| encode(&c)),
            "%[0-9a-fA-F]{2}",
            Just(".".to_string()),
            Just("..".to_string()),
        ],
        0..6,
    )
    .prop_map(|parts| parts.concat())
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn query_component() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            "[a-zA-Z0-9_~.-]",
            Just("+".to_string()),
            "[ +&=%/?#:@!$'()*,;\u{e9}\u{20ac}]".prop_map(|c| encode(&c)),
        ],
        0..6,
    )
    .prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_input_never_panics(
        authorization in "\\PC{0,200}",
        structured in ("(AWS4-HMAC-SHA256|AWS4|)", "[ ,]{0,3}", "(Credential|SignedHeaders|Signature|X)", "=?", "[a-zA-Z0-9/;=, _-]{0,80}"),
        query in "[a-zA-Z0-9%&=+~ -]{0,60}",
        path in "\\PC{0,60}",
        header_bytes in proptest::collection::vec(any::<u8>(), 0..64),
        date in "[0-9TZ]{0,18}",
        now in any::<i64>(),
    ) {
        let structured = format!("{}{}{}{}{}", structured.0, structured.1, structured.2, structured.3, structured.4);
        for auth in [authorization.as_bytes(), structured.as_bytes(), header_bytes.as_slice()] {
            let headers: [(&str, &[u8]); 5] = [
                ("host", &header_bytes),
                ("authorization", auth),
                ("x-amz-date", date.as_bytes()),
                ("x-amz-content-sha256", &header_bytes),
                ("x-amz-security-token", &header_bytes),
            ];
            let req = RequestParts { method: "GET", path: &path, query: &query, headers: &headers, payload_sha256: "" };
            let expected = ExpectedScope { service: "lambda", region: None };
            let result = sigv4::authenticate(&req, &expected, now, |_| Some(secret_key()));
            if let Err(e) = &result {
                let _ = (e.aws_error(), e.s3_error(), e.to_string());
            }
            let presigned_query = format!("X-Amz-Signature={query}&X-Amz-Credential={date}&{query}");
            let req = RequestParts { query: &presigned_query, headers: &headers[..1], ..req };
            let _ = sigv4::authenticate(&req, &expected, now, |_| Some(secret_key()));
        }
    }

    #[test]
    fn random_requests_signed_by_aws_sigv4_verify_until_changed(
        segments in proptest::collection::vec(path_segment(), 0..5),
        trailing_slash in any::<bool>(),
        params in proptest::collection::vec((query_component(), query_component()), 0..5),
        body in proptest::collection::vec(any::<u8>(), 0..64),
        s3 in any::<bool>(),
        presign in proptest::option::of(1u64..=604_800),
        token in any::<bool>(),
        header_value in "[a-zA-Z0-9 ,;=/-]{0,20}",
        mutation in 0usize..6,
    ) {
        let mut path = format!("/{}", segments.join("/"));
        if trailing_slash && !path.ends_with('/') {
            path.push('/');
        }
        let query: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let path_and_query = if query.is_empty() { path } else { format!("{path}?{}", query.join("&")) };
        let mut case = Case::new("POST", if s3 { "s3" } else { "lambda" }, &path_and_query);
        case.body = body;
        case.presign_expires = presign;
        case.token = token.then_some("FQoGZXIvYXdzEJr//////////wEaD+token=");
        if !header_value.trim().is_empty() {
            case.headers.push(("x-custom", header_value));
        }
        let wire = case.sign();
        let verified = wire.verify();
        prop_assert!(verified.is_ok(), "{:?}\n{:?}\n{:?}", case, wire, verified);

        let changed = match mutation {
            0 => {
                let mut w = wire.clone();
                w.path.push('x');
                w
            }
            1 => {
                let mut w = wire.clone();
                w.query = if w.query.is_empty() { "a=b".into() } else { format!("{}&a=b", w.query) };
                w
            }
            2 => {
                let mut w = wire.clone();
                w.set_header("host", b"other.example.com");
                w
            }
            3 => {
                let mut w = wire.clone();
                w.method = "PUT".into();
                w
            }
            4 if !(s3 && presign.is_some()) => {
                let mut w = wire.clone();
                match w.body.last_mut() {
                    Some(b) => *b = b.wrapping_add(1),
                    None => w.body.push(0),
                }
                w
            }
            _ => {
                prop_assert!(wire.verify_with("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEz", T + 30).is_err());
                return Ok(());
            }
        };
        let refused = changed.verify();
        prop_assert!(refused.is_err(), "mutation {} accepted: {:?}", mutation, changed);
    }
}
