//! Starts the real `kumo` binary on a free port with a temporary data dir and
//! hands out real clients for it.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use aws_sdk_lambda::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_lambda::primitives::Blob;

/// The execution role every test server has from the start (the README's own
/// walkthrough creates `lambda-role` itself, as a user does).
pub const ROLE: &str = "arn:aws:iam::000000000000:role/kumo-test-role";

/// The account root's key every test server is started with.
pub const ROOT_KEY_ID: &str = "AKIAKUMOTESTROOT0001";
pub const ROOT_SECRET: &str = "kumo-test-root-secret-0001";

pub struct Server {
    child: Option<Child>,
    pub endpoint: String,
    pub data_dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    pub output: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

/// The trust policy that lets Lambda assume a role.
pub const LAMBDA_TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;

/// Percent-encodes a form value.
pub fn form_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The SigV4 headers (`x-amz-date`, `authorization`) for a request signed with
/// the root key at `epoch_s`, as an SDK would sign it (host plus those).
pub fn root_signature(
    host: &str,
    method: &str,
    path: &str,
    extra_headers: &[(&str, &[u8])],
    body: &[u8],
    service: &str,
    epoch_s: i64,
) -> Vec<(String, String)> {
    let mut headers: Vec<(&str, &[u8])> = vec![("host", host.as_bytes())];
    headers.extend_from_slice(extra_headers);
    let payload = kumo_core::sigv4::sha256_hex(body);
    let parts = kumo_core::sigv4::RequestParts { method, path, query: "", headers: &headers, payload_sha256: &payload };
    let signer = kumo_core::sigv4::Signer {
        access_key_id: ROOT_KEY_ID,
        secret_access_key: ROOT_SECRET,
        session_token: None,
        region: "us-east-1",
        service,
    };
    signer.headers(&parts, &kumo_core::sigv4::format_amz_date(epoch_s)).expect("sign")
}

/// Creates `ROLE` (trusting Lambda) with a signed IAM CreateRole over a plain
/// socket (the harness starts servers outside any async runtime). A server
/// restarted on its data dir already has it (409); a server whose root key is
/// not the test key refuses (403): neither matters here.
fn create_lambda_role(endpoint: &str) {
    use std::io::Read;
    let host = endpoint.trim_start_matches("http://");
    let body = format!(
        "Action=CreateRole&Version=2010-05-08&RoleName=kumo-test-role&AssumeRolePolicyDocument={}",
        form_encode(LAMBDA_TRUST)
    );
    let content_type: &[u8] = b"application/x-www-form-urlencoded; charset=utf-8";
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs();
    let added =
        root_signature(host, "POST", "/", &[("content-type", content_type)], body.as_bytes(), "iam", now as i64);
    let mut request = format!(
        "POST / HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/x-www-form-urlencoded; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n",
        body.len()
    );
    for (k, v) in added {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(&body);
    let mut stream = std::net::TcpStream::connect(host).expect("connect to kumo");
    stream.write_all(request.as_bytes()).expect("send CreateRole");
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    let status = answer.split_whitespace().nth(1).unwrap_or("");
    assert!(matches!(status, "200" | "409" | "403"), "CreateRole for the test role failed: {answer}");
}

pub fn kumo_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_kumo"))
}

impl Server {
    pub fn start() -> Server {
        Self::start_with(&[])
    }

    pub fn start_with(args: &[&str]) -> Server {
        Self::start_with_env(args, &[])
    }

    pub fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> Server {
        let tmp = tempfile::tempdir().expect("temp dir");
        let data_dir = tmp.path().join("data");
        let mut server = Self::launch(&data_dir, args, env);
        server._tmp = Some(tmp);
        server
    }

    /// Starts a server on an existing data dir (restart tests).
    pub fn start_in(data_dir: &Path, args: &[&str]) -> Server {
        Self::launch(data_dir, args, &[])
    }

    pub fn start_in_with_env(data_dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Server {
        Self::launch(data_dir, args, env)
    }

    /// Starts the server through a wrapper command (e.g. `setpriv` to run it as another user).
    pub fn start_wrapped(wrapper: &[&str], tmp: tempfile::TempDir, args: &[&str]) -> Server {
        let data_dir = tmp.path().join("data");
        let mut server = Self::launch_with(wrapper, &data_dir, args, &[]);
        server._tmp = Some(tmp);
        server
    }

    fn launch(data_dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Server {
        Self::launch_with(&[], data_dir, args, env)
    }

    fn launch_with(wrapper: &[&str], data_dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Server {
        let mut command = match wrapper.split_first() {
            Some((program, rest)) => {
                let mut c = Command::new(program);
                c.args(rest).arg(kumo_bin());
                c
            }
            None => Command::new(kumo_bin()),
        };
        let mut child = command
            .arg("serve")
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(data_dir)
            .args(args)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("KUMO_ROOT_ACCESS_KEY_ID", ROOT_KEY_ID)
            .env("KUMO_ROOT_SECRET_ACCESS_KEY", ROOT_SECRET)
            .env("RUST_LOG", "kumo=warn")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start kumo");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        let output = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = output.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(rest) = line.strip_prefix("Kumo listening on ") {
                    let url = rest.split_whitespace().next().unwrap_or_default().to_string();
                    let _ = tx.send(url);
                }
                sink.lock().expect("output lock").push(line);
            }
        });
        let endpoint = rx.recv_timeout(Duration::from_secs(30)).expect("kumo did not start within 30 s");
        // Lambda must be able to assume a function's role: every test server has `ROLE`.
        create_lambda_role(&endpoint);
        Server { child: Some(child), endpoint, data_dir: data_dir.to_path_buf(), _tmp: None, output }
    }

    pub fn lambda(&self) -> aws_sdk_lambda::Client {
        self.lambda_as(Credentials::new(ROOT_KEY_ID, ROOT_SECRET, None, None, "test"))
    }

    /// A Lambda client signed with other credentials (a user's key, a wrong secret).
    pub fn lambda_as(&self, credentials: Credentials) -> aws_sdk_lambda::Client {
        let conf = aws_sdk_lambda::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(&self.endpoint)
            .credentials_provider(credentials)
            .http_client(aws_smithy_http_client::Builder::new().build_http())
            .retry_config(aws_sdk_lambda::config::retry::RetryConfig::disabled())
            .timeout_config(
                aws_sdk_lambda::config::timeout::TimeoutConfig::builder()
                    .operation_timeout(Duration::from_secs(120))
                    .build(),
            )
            .build();
        aws_sdk_lambda::Client::from_conf(conf)
    }

    /// An IAM client signed with the root key.
    pub fn iam(&self) -> aws_sdk_iam::Client {
        self.iam_as(Credentials::new(ROOT_KEY_ID, ROOT_SECRET, None, None, "test"))
    }

    /// An IAM client signed with other credentials (a user's key, a session's).
    pub fn iam_as(&self, credentials: Credentials) -> aws_sdk_iam::Client {
        let conf = aws_sdk_iam::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(&self.endpoint)
            .credentials_provider(credentials)
            .http_client(aws_smithy_http_client::Builder::new().build_http())
            .retry_config(aws_sdk_iam::config::retry::RetryConfig::disabled())
            .build();
        aws_sdk_iam::Client::from_conf(conf)
    }

    /// An STS client signed with the root key.
    pub fn sts(&self) -> aws_sdk_sts::Client {
        self.sts_as(Credentials::new(ROOT_KEY_ID, ROOT_SECRET, None, None, "test"))
    }

    /// An STS client signed with other credentials.
    pub fn sts_as(&self, credentials: Credentials) -> aws_sdk_sts::Client {
        let conf = aws_sdk_sts::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(&self.endpoint)
            .credentials_provider(credentials)
            .http_client(aws_smithy_http_client::Builder::new().build_http())
            .retry_config(aws_sdk_sts::config::retry::RetryConfig::disabled())
            .build();
        aws_sdk_sts::Client::from_conf(conf)
    }

    /// An S3 client signed with the root key.
    pub fn s3(&self) -> aws_sdk_s3::Client {
        self.s3_as(Credentials::new(ROOT_KEY_ID, ROOT_SECRET, None, None, "test"))
    }

    /// An S3 client signed with other credentials.
    pub fn s3_as(&self, credentials: Credentials) -> aws_sdk_s3::Client {
        let conf = aws_sdk_s3::Config::builder()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new("us-east-1"))
            .endpoint_url(&self.endpoint)
            .force_path_style(true)
            .credentials_provider(credentials)
            .http_client(aws_smithy_http_client::Builder::new().build_http())
            .retry_config(aws_sdk_s3::config::retry::RetryConfig::disabled())
            .build();
        aws_sdk_s3::Client::from_conf(conf)
    }

    pub fn http(&self) -> reqwest::Client {
        reqwest::Client::builder().no_proxy().build().expect("http client")
    }

    /// Sends a raw HTTP request signed (SigV4) with the root key.
    pub async fn send(&self, req: reqwest::RequestBuilder) -> reqwest::Result<reqwest::Response> {
        let (client, request) = req.build_split();
        let mut request = request?;
        let root = kumo::cli::client::ClientCredentials {
            access_key_id: ROOT_KEY_ID.to_string(),
            secret_access_key: ROOT_SECRET.to_string(),
            session_token: None,
        };
        kumo::cli::client::sign_request(&mut request, &root, "us-east-1").expect("sign");
        client.execute(request).await
    }

    /// The `kumo` command, pointed at this server with the root key.
    pub fn cli(&self) -> Command {
        let mut cmd = Command::new(kumo_bin());
        cmd.env("KUMO_ENDPOINT", &self.endpoint)
            .env("KUMO_ROOT_ACCESS_KEY_ID", ROOT_KEY_ID)
            .env("KUMO_ROOT_SECRET_ACCESS_KEY", ROOT_SECRET)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("NO_PROXY", "127.0.0.1");
        cmd
    }

    /// Sends SIGTERM and waits for a clean exit.
    /// The server process's pid.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    pub fn stop(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running server");
        // SAFETY: signalling our own child process.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "kumo did not stop within 60 s of SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the server without letting it clean up (crash tests).
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.child.is_some() {
            self.stop();
        }
    }
}

/// A zip of the given (name, contents, mode) entries.
pub fn zip_of(entries: &[(&str, &[u8], u32)]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, data, mode) in entries {
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .unix_permissions(*mode);
        w.start_file(*name, opts).expect("zip entry");
        w.write_all(data).expect("zip write");
    }
    w.finish().expect("zip finish").into_inner()
}

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// A zip holding one fixture file under the given name.
pub fn fixture_zip(fixture: &str, name_in_zip: &str) -> Vec<u8> {
    let data = std::fs::read(fixtures().join(fixture)).expect("fixture");
    zip_of(&[(name_in_zip, &data, 0o644)])
}

/// The `lambda_runtime` echo function (examples/echo_function.rs), built on first use.
pub fn echo_function_binary() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| example_binary("echo_function"))
}

/// One of the crate's examples (a `lambda_runtime` function), built if need be.
pub fn example_binary(name: &str) -> PathBuf {
    let profile_dir = kumo_bin().parent().expect("target dir").to_path_buf();
    if let Some(built) = example_built_with_the_tests(&profile_dir.join("examples"), name) {
        return built;
    }
    let path = profile_dir.join("examples").join(name);
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
    // Cargo is a no-op when the example is fresh; it serialises concurrent builds itself.
    let mut cmd = Command::new(env!("CARGO"));
    cmd.args(["build", "--quiet", "--example", name, "--manifest-path"]).arg(&manifest);
    if profile_dir.ends_with("release") {
        cmd.arg("--release");
    }
    let status = cmd.status().unwrap_or_else(|e| panic!("cargo build --example {name}: {e}"));
    assert!(status.success(), "building the lambda_runtime example {name} failed");
    path
}

/// The example binary `cargo test`/`cargo nextest` already built beside the tests
/// (`examples/NAME-<hash>`), when one is newer than its source. `cargo build
/// --example` from inside a test resolves features for this package alone, not
/// the workspace, so it would rebuild the whole dependency tree (minutes on CI).
fn example_built_with_the_tests(dir: &Path, name: &str) -> Option<PathBuf> {
    let source = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples").join(format!("{name}.rs"));
    let source_time = std::fs::metadata(source).and_then(|m| m.modified()).ok()?;
    let prefix = format!("{name}-");
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .filter(|e| {
            let file = e.file_name().to_string_lossy().into_owned();
            file.strip_prefix(&prefix).is_some_and(|hash| hash.chars().all(|c| c.is_ascii_hexdigit()))
        })
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .filter(|(built, _)| *built >= source_time)
        .max_by_key(|(built, _)| *built)
        .map(|(_, path)| path)
}

/// The echo function packaged as a `provided` runtime (its binary is `bootstrap`).
pub fn echo_function_zip() -> Vec<u8> {
    static ZIP: OnceLock<Vec<u8>> = OnceLock::new();
    ZIP.get_or_init(|| {
        let binary = std::fs::read(echo_function_binary()).expect("read example binary");
        zip_of(&[("bootstrap", &binary, 0o755)])
    })
    .clone()
}

pub async fn create_python(client: &aws_sdk_lambda::Client, name: &str, runtime: &str, fixture: &str) {
    client
        .create_function()
        .function_name(name)
        .runtime(runtime.into())
        .handler("app.handler")
        .role(ROLE)
        // Generous: at 128 MB's CPU share a busy CI machine can take seconds over a
        // first import; tests of timeouts set their own.
        .timeout(30)
        .code(
            aws_sdk_lambda::types::FunctionCode::builder().zip_file(Blob::new(fixture_zip(fixture, "app.py"))).build(),
        )
        .send()
        .await
        .expect("create python function");
}

pub async fn create_echo(client: &aws_sdk_lambda::Client, name: &str, memory: i32, timeout: i32) {
    client
        .create_function()
        .function_name(name)
        .runtime(aws_sdk_lambda::types::Runtime::Providedal2023)
        .handler("bootstrap")
        .role(ROLE)
        .memory_size(memory)
        .timeout(timeout)
        .code(aws_sdk_lambda::types::FunctionCode::builder().zip_file(Blob::new(echo_function_zip())).build())
        .send()
        .await
        .expect("create echo function");
}

/// Invokes synchronously with the log tail; returns (payload JSON, function error, decoded log tail).
pub async fn invoke(
    client: &aws_sdk_lambda::Client,
    name: &str,
    payload: serde_json::Value,
) -> (serde_json::Value, Option<String>, String) {
    let out = client
        .invoke()
        .function_name(name)
        .payload(Blob::new(payload.to_string()))
        .log_type(aws_sdk_lambda::types::LogType::Tail)
        .send()
        .await
        .expect("invoke");
    let body = out.payload().map(|b| b.as_ref().to_vec()).unwrap_or_default();
    let value = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    use base64::Engine as _;
    let tail = out
        .log_result()
        .and_then(|t| base64::engine::general_purpose::STANDARD.decode(t).ok())
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    (value, out.function_error().map(str::to_string), tail)
}

/// The REPORT line of a log tail.
pub fn report_line(tail: &str) -> String {
    tail.lines().rev().find(|l| l.starts_with("REPORT ")).unwrap_or_default().to_string()
}

/// A numeric field of a REPORT line, e.g. `Max Memory Used` → 36.
pub fn report_field(report: &str, field: &str) -> Option<f64> {
    report.split('\t').find_map(|part| {
        part.strip_prefix(&format!("{field}: ")).and_then(|v| v.split_whitespace().next()).and_then(|v| v.parse().ok())
    })
}

/// Whether this machine lets Kumo make memory cgroups; tests that need them say so loudly.
pub fn cgroups_available(server: &Server) -> bool {
    let ok = server.output.lock().expect("output").iter().any(|l| l.contains("memory limit+peak yes"));
    if !ok {
        eprintln!("!!! SKIPPING cgroup-dependent assertions: this machine has no writable memory cgroup !!!");
    }
    ok
}

/// Live (non-zombie) host processes whose environment holds `needle` (e.g. an
/// environment's log stream name): how tests find a sandbox's processes from
/// outside, where its own pids (1, 2, …) mean nothing.
pub fn host_processes_of(needle: &str) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()))
        .filter(|pid| {
            let alive = std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z "));
            let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
            alive && environ.windows(needle.len()).any(|w| w == needle.as_bytes())
        })
        .collect()
}

/// Whether the server isolates environments (namespaces etc.). In CI (`CI`
/// set) isolation is required and its absence fails the test.
pub fn isolation_available(server: &Server) -> bool {
    let ok = server.output.lock().expect("output").iter().any(|l| l.contains("namespaces, uid 993"));
    if !ok {
        assert!(std::env::var_os("CI").is_none(), "CI must run the isolation tests, but this machine cannot isolate");
        eprintln!("!!! SKIPPING isolation assertions: this machine cannot create sandbox namespaces !!!");
    }
    ok
}

/// The python3.x whose interpreter has boto3 (CI installs it for `python3`).
pub fn python_with_boto3() -> String {
    let out = Command::new("python3")
        .args(["-c", "import boto3, sys; print(f'python{sys.version_info[0]}.{sys.version_info[1]}')"])
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "python3 with boto3 is needed (CI installs it): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}
