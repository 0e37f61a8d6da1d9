//! Functions are untrusted: hostile functions in the python and provided
//! runtimes try to escape, and every attempt must fail while Kumo keeps serving.

use std::time::{Duration, Instant};

use aws_sdk_lambda::primitives::Blob;
use serde_json::{Value, json};

use crate::harness::*;

async fn create_hostile(lambda: &aws_sdk_lambda::Client, name: &str, memory: i32, timeout: i32, tags: &[(&str, &str)]) {
    let mut req = lambda
        .create_function()
        .function_name(name)
        .runtime(aws_sdk_lambda::types::Runtime::Python312)
        .handler("app.handler")
        .role(ROLE)
        .memory_size(memory)
        .timeout(timeout)
        .code(
            aws_sdk_lambda::types::FunctionCode::builder()
                .zip_file(Blob::new(fixture_zip("python/hostile.py", "app.py")))
                .build(),
        );
    for (k, v) in tags {
        req = req.tags(*k, *v);
    }
    req.send().await.expect("create hostile function");
}

async fn attempt(lambda: &aws_sdk_lambda::Client, name: &str, event: Value) -> Value {
    let (payload, err, tail) = invoke(lambda, name, event.clone()).await;
    assert_eq!(err, None, "{event}: {payload} {tail}");
    payload
}

async fn assert_blocked(lambda: &aws_sdk_lambda::Client, name: &str, event: Value) {
    let out = attempt(lambda, name, event.clone()).await;
    assert_eq!(out["blocked"], true, "the sandbox let this through: {event} -> {out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_environment_sees_what_lambda_gives_it_and_nothing_more() {
    let server = Server::start();
    if !isolation_available(&server) {
        return;
    }
    let lambda = server.lambda();
    create_hostile(&lambda, "view", 128, 10, &[]).await;
    let me = attempt(&lambda, "view", json!({"attempt": "whoami"})).await;
    assert_eq!((me["uid"].as_u64(), me["gid"].as_u64()), (Some(993), Some(990)), "{me}");
    assert_eq!(me["pid"], 1, "the runtime is PID 1 of its own PID namespace: {me}");
    assert_eq!(me["procs"], json!([1]), "no host process is visible: {me}");
    assert_eq!(me["nofile"], json!([1024, 1024]));
    assert_eq!(me["nproc"], json!([1024, 1024]));
    assert_eq!(me["task_files"], json!(["app.py"]));
    assert_eq!(me["runtime_api"], "127.0.0.1:9001", "the same Runtime API address as every Lambda environment");
    assert_eq!(me["no_new_privs"], "1");
    assert_eq!(me["seccomp"], "2", "a seccomp filter is installed");
    assert_eq!(me["cap_eff"], "0000000000000000", "no capabilities at all");
    let port = server.endpoint.rsplit(':').next().unwrap_or_default();
    assert_eq!(me["endpoint"], format!("http://127.0.0.1:{port}"));

    // /tmp has the function's EphemeralStorage size: 512 MB by default, or as configured.
    let tmp = attempt(&lambda, "view", json!({"attempt": "tmp_size"})).await;
    assert_eq!(tmp["mb"], 512, "{tmp}");
    lambda
        .create_function()
        .function_name("roomy")
        .runtime(aws_sdk_lambda::types::Runtime::Python312)
        .handler("app.handler")
        .role(ROLE)
        .ephemeral_storage(aws_sdk_lambda::types::EphemeralStorage::builder().size(2048).build().expect("size"))
        .code(
            aws_sdk_lambda::types::FunctionCode::builder()
                .zip_file(Blob::new(fixture_zip("python/hostile.py", "app.py")))
                .build(),
        )
        .send()
        .await
        .expect("create with EphemeralStorage");
    let roomy = attempt(&lambda, "roomy", json!({"attempt": "tmp_size"})).await;
    assert_eq!(roomy["mb"], 2048, "{roomy}");

    // /tmp is writable and persists across warm invocations of one environment.
    attempt(&lambda, "view", json!({"attempt": "write_tmp", "name": "keep", "value": "still here"})).await;
    let again = attempt(&lambda, "view", json!({"attempt": "read_tmp", "name": "keep"})).await;
    assert_eq!(again["value"], "still here");
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_python_function_is_contained_and_kumo_keeps_serving() {
    let server = Server::start();
    if !isolation_available(&server) {
        return;
    }
    let lambda = server.lambda();
    create_hostile(&lambda, "victim", 128, 10, &[]).await;
    create_hostile(&lambda, "hostile", 1024, 20, &[]).await;
    attempt(&lambda, "victim", json!({"attempt": "write_tmp", "name": "secret", "value": "victim's"})).await;

    // A host file outside the view, Kumo's data dir, another function's code and /tmp.
    let host_secret = server.data_dir.parent().expect("tmp dir").join("host-secret.txt");
    std::fs::write(&host_secret, "host only").expect("write host secret");
    let code_dir = server.data_dir.join("code");
    let other_code = std::fs::read_dir(&code_dir).expect("code dir").flatten().next().expect("a code dir").path();
    for (what, event) in [
        ("shadow", json!({"attempt": "read", "path": "/etc/shadow"})),
        ("host file", json!({"attempt": "read", "path": host_secret})),
        ("data dir", json!({"attempt": "listdir", "path": server.data_dir})),
        ("code dir", json!({"attempt": "listdir", "path": code_dir})),
        ("other code", json!({"attempt": "read", "path": other_code.join("app.py")})),
        ("host etc", json!({"attempt": "read", "path": "/etc/hostname"})),
        ("host home", json!({"attempt": "listdir", "path": "/home"})),
        ("write task", json!({"attempt": "write", "path": "/var/task/x.py"})),
        ("write etc", json!({"attempt": "write", "path": "/etc/passwd"})),
        ("write root", json!({"attempt": "write", "path": "/pwned"})),
        ("write usr", json!({"attempt": "write", "path": "/usr/bin/pwned"})),
        ("write runtime", json!({"attempt": "write", "path": "/var/runtime/python/bootstrap.py"})),
        ("signal kumo", json!({"attempt": "signal", "pid": server.pid()})),
        ("ptrace", json!({"attempt": "ptrace"})),
        ("mount", json!({"attempt": "mount"})),
        ("unshare user", json!({"attempt": "unshare"})),
        ("unshare net", json!({"attempt": "unshare_net"})),
        ("setuid", json!({"attempt": "setuid"})),
        ("raise rlimit", json!({"attempt": "raise_rlimit"})),
    ] {
        let out = attempt(&lambda, "hostile", event.clone()).await;
        assert_eq!(out["blocked"], true, "{what}: the sandbox let this through: {event} -> {out}");
    }
    let stolen = attempt(&lambda, "hostile", json!({"attempt": "read_tmp", "name": "secret"})).await;
    assert_eq!(stolen["value"], Value::Null, "another environment's /tmp is not visible");

    // Nothing on the host's loopback is reachable, so no other environment's Runtime API either.
    let host_listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let host_port = host_listener.local_addr().expect("addr").port();
    assert_blocked(&lambda, "hostile", json!({"attempt": "connect", "port": host_port})).await;

    // Resources: /tmp has its EphemeralStorage size, processes their limit.
    let fill = attempt(&lambda, "hostile", json!({"attempt": "fill_tmp"})).await;
    assert_eq!(fill["enospc"], true, "{fill}");
    let mb = fill["mb"].as_u64().unwrap_or(0);
    assert!((500..=512).contains(&mb), "/tmp holds the default 512 MB: {fill}");
    let bomb = attempt(&lambda, "hostile", json!({"attempt": "fork_bomb"})).await;
    let forked = bomb["forked"].as_u64().unwrap_or(u64::MAX);
    assert!(forked < 1024 && bomb["error"].is_string(), "the process limit stops a fork bomb: {bomb}");

    // Kumo is alive and the victim untouched.
    assert!(server.lambda().list_functions().send().await.is_ok());
    let victim = attempt(&lambda, "victim", json!({"attempt": "read_tmp", "name": "secret"})).await;
    assert_eq!(victim["value"], "victim's");
    assert_eq!(std::fs::read_to_string(&host_secret).unwrap_or_default(), "host only");
}

#[tokio::test(flavor = "multi_thread")]
async fn memory_cpu_and_process_lifetime_are_enforced() {
    let server = Server::start();
    if !isolation_available(&server) {
        return;
    }
    let lambda = server.lambda();
    // Allocating past MemorySize is an OOM kill, reported as Lambda reports it.
    create_hostile(&lambda, "hog", 128, 30, &[]).await;
    let (payload, err, tail) = invoke(&lambda, "hog", json!({"attempt": "alloc", "mb": 300})).await;
    assert_eq!(err.as_deref(), Some("Unhandled"), "{payload}");
    assert_eq!(payload["errorType"], "Runtime.OutOfMemory", "{payload} {tail}");

    // CPU in proportion to memory: 128 MB gets ~7% of a CPU, 1,769 MB a whole one.
    create_hostile(&lambda, "small-cpu", 128, 10, &[]).await;
    create_hostile(&lambda, "full-cpu", 1769, 10, &[]).await;
    let small = attempt(&lambda, "small-cpu", json!({"attempt": "burn", "ms": 1000})).await;
    let full = attempt(&lambda, "full-cpu", json!({"attempt": "burn", "ms": 1000})).await;
    let (small, full) = (small["cpu_s"].as_f64().unwrap_or(9.0), full["cpu_s"].as_f64().unwrap_or(0.0));
    assert!(small < 0.2, "128 MB used {small} s of CPU in 1 s");
    assert!(full > 2.0 * small && full > 0.3, "1769 MB used {full} s of CPU in 1 s (128 MB: {small} s)");

    // Work after returning a response is frozen: it gets no CPU between invocations.
    create_hostile(&lambda, "spinner", 1769, 10, &[]).await;
    attempt(&lambda, "spinner", json!({"attempt": "spin_after_return"})).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let cpu = attempt(&lambda, "spinner", json!({"attempt": "cpu_since_return"})).await;
    let secs = cpu["cpu_s_between_invocations"].as_f64().unwrap_or(f64::MAX);
    assert!(secs < 0.25, "a frozen environment used {secs} s of CPU in 1 s of idleness");

    // After a timeout the whole tree dies, daemons included.
    create_hostile(&lambda, "leaver", 128, 2, &[]).await;
    let marker = format!("{}", 900_000 + std::process::id() % 90_000);
    let (payload, _, _) =
        invoke(&lambda, "leaver", json!({"attempt": "leave_child_and_time_out", "marker": marker})).await;
    assert_eq!(payload["errorType"], "Sandbox.Timedout", "{payload}");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left = host_processes_with_cmdline(&["sleep", &marker]);
        if left.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "processes survived the timeout: {left:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn host_processes_with_cmdline(args: &[&str]) -> Vec<u32> {
    let want: Vec<u8> = args.iter().flat_map(|a| a.bytes().chain([0])).collect();
    std::fs::read_dir("/proc")
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()))
                .filter(|pid| std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c == want))
                .collect()
        })
        .unwrap_or_default()
}

/// An HTTP server on the host's loopback standing in for "the outside network"
/// (tests may only use loopback): functions reach it as host.kumo.internal,
/// through the same host-side connect as any other destination.
fn outside_server() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            use std::io::{Read, Write};
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\nConnection: close\r\n\r\noutside");
        }
    });
    port
}

#[tokio::test(flavor = "multi_thread")]
async fn outbound_network_is_a_per_function_setting() {
    let server = Server::start_with(&["--egress-host-loopback"]);
    if !isolation_available(&server) {
        return;
    }
    let lambda = server.lambda();
    let port: u16 = server.endpoint.rsplit(':').next().and_then(|p| p.parse().ok()).expect("port");
    let outside = outside_server();
    let url = format!("http://host.kumo.internal:{outside}/hello");
    // About the network, not the CPU share: a whole CPU keeps urllib's imports quick.
    create_hostile(&lambda, "open", 1769, 30, &[]).await;
    create_hostile(&lambda, "closed", 1769, 30, &[("kumo:outbound-network", "none")]).await;
    // Allowed: Kumo's own API at its usual address, and the network beyond, for any client.
    let open = attempt(&lambda, "open", json!({"attempt": "connect", "port": port})).await;
    assert_eq!(open["blocked"], false, "{open}");
    assert!(open["detail"].as_str().unwrap_or_default().contains("HTTP/1.1 200"), "Kumo's API answered: {open}");
    let fetched = attempt(&lambda, "open", json!({"attempt": "fetch", "url": url})).await;
    assert_eq!(fetched["detail"], "'outside'", "{fetched}");
    let raw =
        attempt(&lambda, "open", json!({"attempt": "connect", "host": "host.kumo.internal", "port": outside})).await;
    assert!(raw["detail"].as_str().unwrap_or_default().contains("outside"), "a raw socket gets through: {raw}");
    // None: neither.
    assert_blocked(&lambda, "closed", json!({"attempt": "connect", "port": port})).await;
    assert_blocked(&lambda, "closed", json!({"attempt": "fetch", "url": url})).await;

    // Without --egress-host-loopback the host's own services stay out of reach.
    let strict = Server::start();
    let lambda = strict.lambda();
    // A whole CPU and a generous timeout: the point is the refusal, not how fast 128 MB imports urllib.
    create_hostile(&lambda, "open", 1769, 30, &[]).await;
    assert_blocked(&lambda, "open", json!({"attempt": "fetch", "url": url})).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_provided_runtime_is_contained() {
    let server = Server::start();
    if !isolation_available(&server) {
        return;
    }
    let lambda = server.lambda();
    create_echo(&lambda, "rusty", 128, 5).await;
    let probe = |event: Value| {
        let lambda = lambda.clone();
        async move {
            let (payload, err, tail) = invoke(&lambda, "rusty", event).await;
            assert_eq!(err, None, "{payload} {tail}");
            payload["probe"].clone()
        }
    };
    for event in [
        json!({"read_file": "/etc/shadow"}),
        json!({"list_dir": server.data_dir}),
        json!({"write_file": "/var/task/bootstrap"}),
        json!({"write_file": "/etc/hosts"}),
        json!({"write_file": "/dev/shm-pwned"}),
    ] {
        let out = probe(event.clone()).await;
        assert!(out["error"].is_string(), "the sandbox let this through: {event} -> {out}");
    }
    let ok = probe(json!({"write_file": "/tmp/fine"})).await;
    assert_eq!(ok["ok"], "written");
    let ok = probe(json!({"read_file": "/var/task/bootstrap"})).await;
    assert!(ok["ok"].is_string(), "{ok}");
}

/// A developer's laptop: Kumo as an ordinary user. Unprivileged user
/// namespaces still give every environment its namespaces, seccomp and
/// landlock; what needs root (cgroups) is reported as missing.
#[tokio::test(flavor = "multi_thread")]
async fn as_an_ordinary_user_functions_are_still_isolated() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("!!! SKIPPING: becoming an ordinary user needs root (this run already is one) !!!");
        return;
    }
    let zip = echo_function_zip();
    let tmp = tempfile::tempdir().expect("tmp");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let server =
        Server::start_wrapped(&["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"], tmp, &[]);
    let banner = server.output.lock().expect("output").join("\n");
    if !isolation_available(&server) {
        return;
    }
    assert!(banner.contains("WARNING, not available here"), "{banner}");
    let lambda = server.lambda();
    lambda
        .create_function()
        .function_name("user-mode")
        .runtime(aws_sdk_lambda::types::Runtime::Providedal2023)
        .handler("bootstrap")
        .role(ROLE)
        .code(aws_sdk_lambda::types::FunctionCode::builder().zip_file(Blob::new(zip)).build())
        .send()
        .await
        .expect("create");
    let (payload, err, tail) = invoke(&lambda, "user-mode", json!({"read_file": "/etc/shadow"})).await;
    assert_eq!(err, None, "{payload} {tail}");
    assert_eq!(payload["pid"], 1, "{payload}");
    assert!(payload["probe"]["error"].is_string(), "{payload}");
    let (payload, _, _) = invoke(&lambda, "user-mode", json!({"write_file": "/tmp/ok"})).await;
    assert_eq!(payload["probe"]["ok"], "written", "{payload}");
}

#[tokio::test(flavor = "multi_thread")]
async fn isolation_modes_say_what_is_in_force() {
    let strict = Server::start_with(&["--isolation", "strict"]);
    let banner = strict.output.lock().expect("output").join("\n");
    if !isolation_available(&strict) {
        return;
    }
    assert!(banner.contains("isolation (strict, Kumo runs as root)"), "{banner}");
    drop(strict);

    let none = Server::start_with(&["--isolation", "none"]);
    let banner = none.output.lock().expect("output").join("\n");
    assert!(banner.contains("isolation: NONE"), "{banner}");
    let lambda = none.lambda();
    create_hostile(&lambda, "plain", 128, 10, &[]).await;
    let me = attempt(&lambda, "plain", json!({"attempt": "whoami"})).await;
    assert_ne!(me["pid"], 1, "plain processes share the host's PID namespace: {me}");
}
