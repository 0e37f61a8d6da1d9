//! Bad input gets Lambda's error, writes nothing, and the server keeps serving.
//!
//! Requests go out as raw HTTP (reqwest) where the exact status, the
//! `x-amzn-ErrorType` header and the JSON body matter. Where Lambda's message
//! is documented (recordings of real AWS responses), the test asserts that
//! text; otherwise it asserts the status and error type. No answer may be a
//! 5xx or a dropped connection.

use std::io::{Cursor, Write};

use aws_sdk_lambda::primitives::Blob;
use base64::Engine as _;
use serde_json::{Value, json};
use sha2::Digest as _;

use crate::cli::python_runtime;
use crate::harness::*;

const FUNCTIONS: &str = "/2015-03-31/functions";
const UNZIP_ERROR: &str = "Could not unzip uploaded file. Please check your file, then try to upload again.";
const UNZIPPED_TOO_LARGE: &str = "Unzipped size must be smaller than 262144000 bytes";
const MAX_SYNC_PAYLOAD: usize = 6_291_456;
const MAX_EVENT_PAYLOAD: usize = 1_048_576;

/// One HTTP answer, taken apart.
#[derive(Debug)]
struct Answer {
    status: u16,
    error_type: Option<String>,
    content_type: Option<String>,
    body: Value,
    text: String,
}

impl Answer {
    /// The message, under whichever casing the exception's shape uses (`Message` or `message`).
    fn message(&self) -> &str {
        self.body.get("message").or_else(|| self.body.get("Message")).and_then(Value::as_str).unwrap_or_default()
    }

    /// Asserts an AWS-shaped error (status, `x-amzn-ErrorType`, JSON object body) and returns its message.
    fn error(&self, status: u16, error_type: &str) -> &str {
        assert_eq!(
            (self.status, self.error_type.as_deref()),
            (status, Some(error_type)),
            "status and x-amzn-ErrorType; body: {}",
            self.text
        );
        self.assert_json_error();
        self.message()
    }

    /// Any error: a 4xx with an error type header and a JSON body carrying a message.
    fn assert_json_error(&self) {
        assert!((400..500).contains(&self.status), "a client error: {} {}", self.status, self.text);
        assert!(self.error_type.as_deref().is_some_and(|t| !t.is_empty()), "x-amzn-ErrorType is set: {self:?}");
        assert!(self.content_type.as_deref().is_some_and(|t| t.contains("json")), "JSON content type: {self:?}");
        assert!(self.body.is_object(), "the body is a JSON object: {}", self.text);
        assert!(!self.message().is_empty(), "the body carries a message: {}", self.text);
    }

    /// Lambda's modeled exceptions carry `"Type":"User"`; ValidationException has only `message`.
    fn assert_user_fault(&self) {
        assert_eq!(self.body.get("Type"), Some(&json!("User")), "{}", self.text);
    }

    fn assert_validation_body(&self) {
        let keys: Vec<&String> = self.body.as_object().map(|o| o.keys().collect()).unwrap_or_default();
        assert_eq!(keys, vec!["message"], "ValidationException's body is just {{\"message\": ...}}: {}", self.text);
    }
}

/// Sends a request; the server must answer (no dropped connection) and never with a 5xx.
async fn send(server: &Server, req: reqwest::RequestBuilder) -> Answer {
    let resp = server.send(req).await.expect("Kumo answered the request (the connection was not dropped)");
    let status = resp.status().as_u16();
    let header = |name: &str| resp.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    let error_type = header("x-amzn-errortype");
    let content_type = header("content-type");
    let text = resp.text().await.expect("Kumo sent the whole response body");
    assert!(status < 500, "bad input must never cause a server error: {status} {text}");
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Answer { status, error_type, content_type, body, text }
}

/// Percent-encodes a path segment or query value (names and qualifiers may hold `:`, `$`, `!`).
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn create_raw(server: &Server, body: impl Into<reqwest::Body>) -> Answer {
    send(
        server,
        server
            .http()
            .post(format!("{}{FUNCTIONS}", server.endpoint))
            .header("content-type", "application/json")
            .body(body),
    )
    .await
}

async fn create(server: &Server, body: &Value) -> Answer {
    create_raw(server, body.to_string()).await
}

/// A valid CreateFunction body for `zip`; cases then spoil one member.
fn create_body(name: &str, runtime: &str, zip: &[u8]) -> Value {
    json!({
        "FunctionName": name,
        "Runtime": runtime,
        "Handler": "app.handler",
        "Role": ROLE,
        "Code": {"ZipFile": base64::engine::general_purpose::STANDARD.encode(zip)},
    })
}

/// Invoke through raw HTTP: `headers` are extra request headers, `qualifier` the query parameter.
async fn invoke_raw(
    server: &Server,
    name: &str,
    qualifier: Option<&str>,
    headers: &[(&str, &str)],
    payload: impl Into<reqwest::Body>,
) -> Answer {
    let mut url = format!("{}{FUNCTIONS}/{}/invocations", server.endpoint, encode(name));
    if let Some(q) = qualifier {
        url.push_str(&format!("?Qualifier={}", encode(q)));
    }
    let mut req = server.http().post(url).body(payload);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    send(server, req).await
}

/// A tiny handler package.
fn small_zip() -> Vec<u8> {
    zip_of(&[("app.py", b"def handler(event, context):\n    return {\"ok\": True}\n", 0o644)])
}

/// Every entry of the data dir's `code/` folder (packages are `<sha>.zip` plus an extracted `<sha>/`).
fn code_dir(server: &Server) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(server.data_dir.join("code"))
        .expect("the code dir exists")
        .map(|e| e.expect("dir entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn sha256_hex(bytes: &[u8]) -> String {
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Nothing was created: no function listed, no package on disk.
async fn assert_nothing_written(server: &Server) {
    let list = server.lambda().list_functions().send().await.expect("list functions");
    assert!(list.functions().is_empty(), "no function was created: {:?}", list.functions());
    assert_eq!(code_dir(server), Vec::<String>::new(), "no package (or temporary file) was left in code/");
}

/// After whatever came before, the server still creates and runs a good function.
async fn assert_still_serves(server: &Server, runtime: &str) {
    let lambda = server.lambda();
    create_python(&lambda, "still-serving", runtime, "python/echo.py").await;
    let (payload, err, _) = invoke(&lambda, "still-serving", json!({"alive": true})).await;
    assert_eq!(err, None, "{payload}");
    assert_eq!(payload["event"], json!({"alive": true}));
}

// ----- malformed requests -----

#[tokio::test(flavor = "multi_thread")]
async fn malformed_create_function_bodies_are_400s() {
    let server = Server::start();
    let runtime = python_runtime(&server);
    let good = create_body("typed", &runtime, &small_zip());
    let with = |key: &str, value: Value| {
        let mut body = good.clone();
        body[key] = value;
        body.to_string()
    };
    let bodies: Vec<(&str, String)> = vec![
        ("truncated JSON", r#"{"FunctionName": "broken", "Runtime": "#.to_string()),
        ("not JSON at all", "this is not json".to_string()),
        ("a JSON array", "[1, 2, 3]".to_string()),
        ("MemorySize as a string", with("MemorySize", json!("big"))),
        ("Timeout as an object", with("Timeout", json!({"seconds": 3}))),
        ("FunctionName as a number", with("FunctionName", json!(42))),
        ("Code as a string", with("Code", json!("UEsDBA=="))),
        ("an environment value that is a number", with("Environment", json!({"Variables": {"A": 1}}))),
    ];
    for (what, body) in bodies {
        let answer = create_raw(&server, body).await;
        assert_eq!(answer.status, 400, "{what}: {}", answer.text);
        answer.assert_json_error();
    }
    assert_nothing_written(&server).await;
    assert_still_serves(&server, &runtime).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn invoking_an_unknown_function_is_a_404_with_lambdas_body() {
    let server = Server::start();
    let runtime = python_runtime(&server);
    let answer = invoke_raw(&server, "does-not-exist", None, &[], "{}").await;
    answer.error(404, "ResourceNotFoundException");
    assert_eq!(
        answer.body,
        json!({"Type": "User", "Message": "Function not found: arn:aws:lambda:us-east-1:000000000000:function:does-not-exist"})
    );
    // The SDK recognises it as the modeled exception.
    let err = server.lambda().invoke().function_name("nope").payload(Blob::new("{}")).send().await;
    let svc = err.expect_err("unknown function").into_service_error();
    assert!(svc.is_resource_not_found_exception(), "{svc:?}");
    assert_eq!(svc.meta().message(), Some("Function not found: arn:aws:lambda:us-east-1:000000000000:function:nope"));
    assert_still_serves(&server, &runtime).await;
}

// ----- deployment packages -----

#[tokio::test(flavor = "multi_thread")]
async fn corrupt_zip_is_refused_and_nothing_is_written() {
    let server = Server::start();
    let runtime = python_runtime(&server);
    // Deterministic noise (xorshift), not starting with a zip signature.
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let noise: Vec<u8> = (0..64 * 1024)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect();
    assert_ne!(&noise[..2], b"PK");
    // A real zip cut in half is corrupt too.
    let good = small_zip();
    let truncated = good[..good.len() / 2].to_vec();
    for (what, package) in [("random bytes", noise), ("a truncated zip", truncated)] {
        let answer = create(&server, &create_body("corrupt", &runtime, &package)).await;
        let message = answer.error(400, "InvalidParameterValueException");
        assert_eq!(message, UNZIP_ERROR, "{what}");
        answer.assert_user_fault();
    }
    assert_nothing_written(&server).await;
    assert_still_serves(&server, &runtime).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn zip_entries_escaping_the_package_are_refused_and_nothing_is_written() {
    let server = Server::start();
    let runtime = python_runtime(&server);
    let root = server.data_dir.parent().expect("the data dir has a parent").to_path_buf();
    let absolute = root.join("absolute-escape.py");
    let absolute_name = absolute.to_str().expect("utf-8 temp path").to_string();
    // Each package starts with a good file, so an implementation that extracts
    // before checking every name would leave something behind.
    let ok: &[u8] = b"def handler(event, context):\n    return 1\n";
    let evil: &[u8] = b"print('escaped')\n";
    let names = ["../escape1.py", "../../escape2.py", "lib/../../../escape3.py", absolute_name.as_str()];
    for name in names {
        let package = zip_of(&[("app.py", ok, 0o644), (name, evil, 0o644)]);
        // The test means something only if the zip writer kept the name as given.
        let kept = package.windows(name.len()).any(|w| w == name.as_bytes());
        assert!(kept, "{name} is in the zip as written");
        let answer = create(&server, &create_body("escape", &runtime, &package)).await;
        let message = answer.error(400, "InvalidParameterValueException");
        assert_eq!(message, UNZIP_ERROR, "entry {name}");
        answer.assert_user_fault();
        assert_nothing_written(&server).await;
    }
    // Nothing landed where the names pointed.
    for escaped in [
        server.data_dir.join("code").join("escape1.py"),
        server.data_dir.join("escape1.py"),
        server.data_dir.join("escape2.py"),
        root.join("escape2.py"),
        root.join("escape3.py"),
        server.data_dir.join("escape3.py"),
        absolute,
    ] {
        assert!(!escaped.exists(), "{} was written", escaped.display());
    }
    assert_still_serves(&server, &runtime).await;
}

/// `n` entries of 90 MiB of zeros each, deflated: a few hundred KB that inflate to n × 90 MiB.
fn zeros_zip(entries: usize) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    w.start_file("app.py", opts).expect("zip entry");
    w.write_all(b"def handler(event, context):\n    return 1\n").expect("zip write");
    let chunk = vec![0u8; 1 << 20];
    for i in 0..entries {
        w.start_file(format!("zeros{i}.bin"), opts).expect("zip entry");
        for _ in 0..90 {
            w.write_all(&chunk).expect("zip write");
        }
    }
    w.finish().expect("zip finish").into_inner()
}

/// Rewrites every entry's declared uncompressed size (central directory and
/// local header) to `size`: a bomb whose headers lie.
fn lie_about_sizes(zip: &mut [u8], size: u32) {
    let u16_at = |z: &[u8], at: usize| u16::from_le_bytes([z[at], z[at + 1]]) as usize;
    let u32_at = |z: &[u8], at: usize| u32::from_le_bytes([z[at], z[at + 1], z[at + 2], z[at + 3]]) as usize;
    let eocd = (0..=zip.len() - 22).rev().find(|&i| zip[i..i + 4] == [0x50, 0x4b, 0x05, 0x06]).expect("end record");
    let count = u16_at(zip, eocd + 10);
    let mut at = u32_at(zip, eocd + 16);
    for _ in 0..count {
        assert_eq!(zip[at..at + 4], [0x50, 0x4b, 0x01, 0x02], "central directory entry");
        let local = u32_at(zip, at + 42);
        assert_eq!(zip[local..local + 4], [0x50, 0x4b, 0x03, 0x04], "local header");
        zip[at + 24..at + 28].copy_from_slice(&size.to_le_bytes());
        zip[local + 22..local + 26].copy_from_slice(&size.to_le_bytes());
        at += 46 + u16_at(zip, at + 28) + u16_at(zip, at + 30) + u16_at(zip, at + 32);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn zip_bombs_are_refused_and_nothing_is_written() {
    let server = Server::start();
    let runtime = python_runtime(&server);
    // 3 × 90 MiB = 283,115,520 bytes unzipped, past Lambda's 262,144,000.
    let bomb = tokio::task::spawn_blocking(|| zeros_zip(3)).await.expect("build bomb");
    assert!(bomb.len() < 1 << 20, "the bomb is small when zipped: {} bytes", bomb.len());
    let answer = create(&server, &create_body("bomb", &runtime, &bomb)).await;
    assert_eq!(answer.error(400, "InvalidParameterValueException"), UNZIPPED_TOO_LARGE);
    answer.assert_user_fault();
    assert_nothing_written(&server).await;

    // The same bomb with headers claiming 1 MiB per entry: the sizes must be
    // counted while inflating, not trusted.
    let mut liar = bomb.clone();
    lie_about_sizes(&mut liar, 1 << 20);
    let answer = create(&server, &create_body("liar", &runtime, &liar)).await;
    let message = answer.error(400, "InvalidParameterValueException");
    assert!(message == UNZIPPED_TOO_LARGE || message == UNZIP_ERROR, "{message}");
    assert_nothing_written(&server).await;

    // Just under the limit is fine: 2 × 90 MiB.
    let big = tokio::task::spawn_blocking(|| zeros_zip(2)).await.expect("build big zip");
    let answer = create(&server, &create_body("big-but-ok", &runtime, &big)).await;
    assert_eq!(answer.status, 201, "{}", answer.text);
    server.lambda().delete_function().function_name("big-but-ok").send().await.expect("delete big-but-ok");
    assert_still_serves(&server, &runtime).await;
}

// ----- invoke payloads -----

/// A JSON string document of exactly `len` bytes.
fn json_string_of_len(len: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(len);
    v.push(b'"');
    v.resize(len - 1, b'a');
    v.push(b'"');
    v
}

#[tokio::test(flavor = "multi_thread")]
async fn invoke_payload_limits_and_bad_payloads() {
    let server = Server::start();
    let runtime = python_runtime(&server);
    let package = zip_of(&[("app.py", b"def handler(event, context):\n    return {\"len\": len(event)}\n", 0o644)]);
    // Parsing a 6 MB event at 128 MB's CPU share can overrun the default 3 s
    // on a busy 2-core machine; this test is about sizes, not time.
    let mut body = create_body("sized", &runtime, &package);
    body["Timeout"] = json!(60);
    let created = create(&server, &body).await;
    assert_eq!(created.status, 201, "{}", created.text);

    // Under the limits: accepted.
    let under = MAX_SYNC_PAYLOAD - 1024;
    let answer = invoke_raw(&server, "sized", None, &[], json_string_of_len(under)).await;
    assert_eq!((answer.status, answer.body.clone()), (200, json!({"len": under - 2})), "{}", answer.text);
    let event = [("x-amz-invocation-type", "Event")];
    let answer = invoke_raw(&server, "sized", None, &event, json_string_of_len(MAX_EVENT_PAYLOAD - 1024)).await;
    assert_eq!(answer.status, 202, "{}", answer.text);

    // Over the sync limit, by one byte and by a lot: 413, answered (not a reset connection).
    for size in [MAX_SYNC_PAYLOAD + 1, 8 << 20] {
        let answer = invoke_raw(&server, "sized", None, &[], json_string_of_len(size)).await;
        let message = answer.error(413, "RequestEntityTooLargeException");
        assert_eq!(message, "Request must be smaller than 6291456 bytes for the InvokeFunction operation", "{size}");
    }
    // Over the Event limit.
    for size in [MAX_EVENT_PAYLOAD + 1, 2 << 20] {
        let answer = invoke_raw(&server, "sized", None, &event, json_string_of_len(size)).await;
        answer.error(413, "RequestEntityTooLargeException");
    }

    // Not JSON, and not even UTF-8.
    for payload in [b"Hello World".to_vec(), vec![0x87, 0x6e, 0xff, 0x72, 0x00]] {
        let answer = invoke_raw(&server, "sized", None, &[], payload).await;
        let message = answer.error(400, "InvalidRequestContentException");
        assert!(
            message.starts_with("Could not parse request body into json: Could not parse payload into json: "),
            "{message}"
        );
        answer.assert_user_fault();
    }

    // An invocation type outside the enum.
    let answer = invoke_raw(&server, "sized", None, &[("x-amz-invocation-type", "dry_run")], "{}").await;
    let message = answer.error(400, "ValidationException");
    assert!(
        message.starts_with("1 validation error detected: Value 'dry_run' at 'invocationType' failed to satisfy constraint: Member must satisfy enum value set: ["),
        "{message}"
    );
    answer.assert_validation_body();

    // The function itself is fine.
    let answer = invoke_raw(&server, "sized", None, &[], "\"abc\"").await;
    assert_eq!((answer.status, answer.body.clone()), (200, json!({"len": 3})), "{}", answer.text);
    assert_still_serves(&server, &runtime).await;
}

// ----- validation -----

/// What Lambda's message is expected to be.
enum Expect {
    /// Lambda's documented text.
    Exact(String),
    /// Lambda's documented beginning (the rest varies).
    Prefix(String),
    /// Undocumented text: only the member it names, in Lambda's `at '<member>'` form.
    Names(&'static str),
}

fn validation(value: &str, member: &str, constraint: &str) -> String {
    format!("1 validation error detected: Value '{value}' at '{member}' failed to satisfy constraint: {constraint}")
}

/// Differences from Lambda, collected so that one run lists every case that differs.
#[derive(Default)]
struct Mismatches(Vec<String>);

impl Mismatches {
    /// Checks status, error type, message and body shape of an error answer.
    fn check(&mut self, what: &str, answer: &Answer, status: u16, error_type: &str, expect: Expect) {
        let got = (answer.status, answer.error_type.as_deref().unwrap_or_default());
        if got != (status, error_type) {
            self.0.push(format!("{what}: expected {status} {error_type}, got {} {:?}: {}", got.0, got.1, answer.text));
            return;
        }
        answer.assert_json_error();
        let message = answer.message();
        let (ok, wanted) = match &expect {
            Expect::Exact(m) => (message == m, format!("exactly {m:?}")),
            Expect::Prefix(p) => (message.starts_with(p.as_str()), format!("starting {p:?}")),
            Expect::Names(member) => (message.contains(&format!("at {member}")), format!("naming {member}")),
        };
        if !ok {
            self.0.push(format!("{what}: message {message:?}, expected {wanted}"));
        }
        // Body shape: ValidationException is a bare {"message"}; Lambda's modeled exceptions add "Type":"User".
        if error_type == "ValidationException" {
            let keys: Vec<&String> = answer.body.as_object().map(|o| o.keys().collect()).unwrap_or_default();
            if keys != vec!["message"] {
                self.0.push(format!("{what}: ValidationException body is not {{\"message\"}}: {}", answer.text));
            }
        } else if answer.body.get("Type") != Some(&json!("User")) {
            self.0.push(format!("{what}: {error_type} body lacks \"Type\":\"User\": {}", answer.text));
        }
    }

    fn assert_none(self) {
        assert!(self.0.is_empty(), "answers that differ from Lambda's:\n{}", self.0.join("\n"));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn create_function_validation_errors_match_lambda() {
    let server = Server::start();
    let runtime = python_runtime(&server);
    let good = create_body("valid-name", &runtime, &small_zip());
    // The good body with one member (at a path) replaced.
    let set = |path: &[&str], value: Value| {
        let mut body = good.clone();
        let (last, parents) = path.split_last().expect("a member path");
        let mut at = &mut body;
        for p in parents {
            at = &mut at[*p];
        }
        at[*last] = value;
        body
    };
    let long_name = "a".repeat(65);
    // CreateFunction's name pattern has no `.` in the name part (Get and Invoke allow it).
    let create_name_pattern = r"(arn:(aws[a-zA-Z-]*)?:lambda:)?([a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}:)?(\d{12}:)?(function:)?([a-zA-Z0-9-_]+)(:(\$LATEST|[a-zA-Z0-9-_]+))?";
    let ipve = "InvalidParameterValueException";
    let ve = "ValidationException";
    let cases: Vec<(&str, Value, &str, Expect)> = vec![
        (
            "function name longer than 64",
            set(&["FunctionName"], json!(long_name)),
            ipve,
            Expect::Exact(validation(&long_name, "functionName", "Member must have length less than or equal to 64")),
        ),
        (
            "function name with invalid characters",
            set(&["FunctionName"], json!("my-function!")),
            ve,
            Expect::Exact(validation(
                "my-function!",
                "functionName",
                &format!("Member must satisfy regular expression pattern: {create_name_pattern}"),
            )),
        ),
        ("MemorySize 127", set(&["MemorySize"], json!(127)), ve, Expect::Names("'memorySize'")),
        (
            "MemorySize 10241",
            set(&["MemorySize"], json!(10241)),
            ve,
            Expect::Exact(validation("10241", "memorySize", "Member must have value less than or equal to 10240")),
        ),
        ("Timeout 0", set(&["Timeout"], json!(0)), ve, Expect::Names("'timeout'")),
        (
            "Timeout 901",
            set(&["Timeout"], json!(901)),
            ve,
            Expect::Exact(validation("901", "timeout", "Member must have value less than or equal to 900")),
        ),
        (
            "Role that is not an ARN",
            set(&["Role"], json!("r1")),
            ve,
            Expect::Exact(validation(
                "r1",
                "role",
                r"Member must satisfy regular expression pattern: arn:(aws[a-zA-Z-]*)?:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+",
            )),
        ),
        ("Description of 257 characters", set(&["Description"], json!("d".repeat(257))), ve, Expect::Names("'description'")),
        (
            "environment over 4 KB",
            set(&["Environment"], json!({"Variables": {"LARGE_VAR": "x".repeat(4096)}})),
            ipve,
            Expect::Prefix(
                "Lambda was unable to configure your environment variables because the environment variables you have provided exceeded the 4KB limit. String measured: {\"LARGE_VAR\":\"xxxx".to_string(),
            ),
        ),
        (
            "reserved environment key",
            set(&["Environment"], json!({"Variables": {"AWS_REGION": "eu-west-1"}})),
            ipve,
            Expect::Exact("Lambda was unable to configure your environment variables because the environment variables you have provided contains reserved keys that are currently not supported for modification. Reserved keys used in this request: AWS_REGION".to_string()),
        ),
        (
            "invalid environment key",
            set(&["Environment"], json!({"Variables": {"fs-cloud_bucket_name": "b"}})),
            ve,
            // Environment is a sensitive member: Lambda leaves the value out ("Value at").
            Expect::Exact("1 validation error detected: Value at 'environment.variables' failed to satisfy constraint: Map keys must satisfy constraint: [Member must satisfy regular expression pattern: [a-zA-Z]([a-zA-Z0-9_])+]".to_string()),
        ),
        ("EphemeralStorage 100", set(&["EphemeralStorage", "Size"], json!(100)), ve, Expect::Names("'ephemeralStorage.size'")),
        (
            "unknown architecture",
            set(&["Architectures"], json!(["sparc"])),
            ve,
            Expect::Exact(validation(
                "[sparc]",
                "architectures",
                "Member must satisfy constraint: [Member must satisfy enum value set: [x86_64, arm64], Member must not be null]",
            )),
        ),
    ];
    let mut mismatches = Mismatches::default();
    for (what, body, error_type, expect) in cases {
        let answer = create(&server, &body).await;
        mismatches.check(what, &answer, 400, error_type, expect);
    }
    // None of the refused requests created anything.
    assert_nothing_written(&server).await;
    assert_still_serves(&server, &runtime).await;
    mismatches.assert_none();
}

#[tokio::test(flavor = "multi_thread")]
async fn duplicate_names_and_stale_revisions_change_nothing() {
    let server = Server::start();
    let runtime = python_runtime(&server);
    let zip = small_zip();
    let created = create(&server, &create_body("dup", &runtime, &zip)).await;
    assert_eq!(created.status, 201, "{}", created.text);
    let sha = sha256_hex(&zip);
    let package = vec![sha.clone(), format!("{sha}.zip")];
    assert_eq!(code_dir(&server), package, "one package: the zip and its extracted tree");

    // The same name again (with other code): 409, and the original is untouched.
    let other = zip_of(&[("app.py", b"def handler(event, context):\n    return 2\n", 0o644)]);
    let answer = create(&server, &create_body("dup", &runtime, &other)).await;
    assert_eq!(answer.error(409, "ResourceConflictException"), "Function already exist: dup");
    answer.assert_user_fault();
    assert_eq!(code_dir(&server), package, "the refused package was not stored");
    let lambda = server.lambda();
    let got = lambda.get_function().function_name("dup").send().await.expect("get dup");
    let conf = got.configuration().expect("configuration");
    assert_eq!(conf.code_sha256(), created.body["CodeSha256"].as_str());
    assert_eq!(conf.revision_id(), created.body["RevisionId"].as_str());

    // A stale RevisionId: 412, and the configuration is unchanged.
    let answer = send(
        &server,
        server
            .http()
            .put(format!("{}{FUNCTIONS}/dup/configuration", server.endpoint))
            .header("content-type", "application/json")
            .body(json!({"MemorySize": 256, "RevisionId": "00000000-0000-0000-0000-000000000000"}).to_string()),
    )
    .await;
    assert_eq!(
        answer.error(412, "PreconditionFailedException"),
        "The Revision Id provided does not match the latest Revision Id. Call the GetFunction/GetAlias API to retrieve the latest Revision Id"
    );
    answer.assert_user_fault();
    // The SDK maps it to its modeled exception.
    let svc = lambda
        .update_function_configuration()
        .function_name("dup")
        .memory_size(256)
        .revision_id("stale")
        .send()
        .await
        .expect_err("stale revision")
        .into_service_error();
    assert!(svc.is_precondition_failed_exception(), "{svc:?}");
    let conf = lambda.get_function_configuration().function_name("dup").send().await.expect("get configuration");
    assert_eq!(conf.memory_size(), Some(128), "a refused update changes nothing");
    assert_eq!(conf.revision_id(), created.body["RevisionId"].as_str());

    // The function still runs its original code.
    let (payload, err, _) = invoke(&lambda, "dup", json!({})).await;
    assert_eq!((payload, err), (json!({"ok": true}), None));
    assert_still_serves(&server, &runtime).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn qualifier_errors_match_lambda() {
    let server = Server::start();
    let runtime = python_runtime(&server);
    let created = create(&server, &create_body("qual", &runtime, &small_zip())).await;
    assert_eq!(created.status, 201, "{}", created.text);
    let get = |name: &str, qualifier: &str| {
        server.http().get(format!("{}{FUNCTIONS}/{}?Qualifier={}", server.endpoint, encode(name), encode(qualifier)))
    };
    let mut mismatches = Mismatches::default();

    // Outside the qualifier pattern, or too long: ValidationException.
    let pattern = "Member must satisfy regular expression pattern: (|[a-zA-Z0-9$_-]+)";
    let answer = invoke_raw(&server, "qual", Some("invalid!"), &[], "{}").await;
    mismatches.check(
        "Invoke, Qualifier invalid!",
        &answer,
        400,
        "ValidationException",
        Expect::Exact(validation("invalid!", "qualifier", pattern)),
    );
    let answer = send(&server, get("qual", "invalid!")).await;
    mismatches.check(
        "GetFunction, Qualifier invalid!",
        &answer,
        400,
        "ValidationException",
        Expect::Exact(validation("invalid!", "qualifier", pattern)),
    );
    let long = "a".repeat(129);
    let answer = invoke_raw(&server, "qual", Some(&long), &[], "{}").await;
    mismatches.check(
        "Invoke, Qualifier of 129 characters",
        &answer,
        400,
        "ValidationException",
        Expect::Exact(validation(&long, "qualifier", "Member must have length less than or equal to 128")),
    );

    // Within the pattern but naming nothing: not found, with the qualifier in the ARN.
    for q in ["$latest", "-1", "no-such-alias", "99"] {
        let answer = invoke_raw(&server, "qual", Some(q), &[], "{}").await;
        mismatches.check(
            &format!("Invoke, Qualifier {q}"),
            &answer,
            404,
            "ResourceNotFoundException",
            Expect::Exact(format!("Function not found: arn:aws:lambda:us-east-1:000000000000:function:qual:{q}")),
        );
    }

    // A qualifier in the ARN that disagrees with the Qualifier parameter.
    let mismatch = "The derived qualifier from the function name does not match the specified qualifier.";
    let arn = "arn:aws:lambda:us-east-1:000000000000:function:qual:$LATEST";
    let answer = invoke_raw(&server, arn, Some("1"), &[], "{}").await;
    let ipve = "InvalidParameterValueException";
    mismatches.check("Invoke, ARN :$LATEST with Qualifier 1", &answer, 400, ipve, Expect::Exact(mismatch.into()));
    let answer = send(&server, get(arn, "1")).await;
    mismatches.check("GetFunction, ARN :$LATEST with Qualifier 1", &answer, 400, ipve, Expect::Exact(mismatch.into()));

    // None of it disturbed the function.
    let (payload, err, _) = invoke(&server.lambda(), "qual", json!({})).await;
    assert_eq!((payload, err), (json!({"ok": true}), None));
    assert_still_serves(&server, &runtime).await;
    mismatches.assert_none();
}
