//! Environments of one function version: reuse, scale-out and reaping.

use super::now_ms;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kumo_core::function::{FunctionVersion, VersionId};
use kumo_core::{logfmt, runtime};

use super::environment::{Environment, NewEnvironment};
use super::envlog::EnvLog;
use crate::sandbox::jail::{self, JailSpec};
use crate::sandbox::{SandboxSpec, Sandboxes};
use crate::store::Store;
use crate::store::code::CodeStore;

use super::runtimes::RuntimeCatalog;

/// Why an environment could not be started; the caller sees it as an init error.
#[derive(Debug)]
pub struct SpawnFailure {
    pub error_type: &'static str,
    pub message: String,
}

/// What the pool needs from the engine to start environments.
pub struct SpawnContext<'a> {
    pub sandboxes: &'a Sandboxes,
    pub runtimes: &'a RuntimeCatalog,
    pub code: &'a CodeStore,
    pub store: &'a Arc<dyn Store>,
    pub region: &'a str,
    pub runtime_version_arn: String,
    pub data_dir: &'a std::path::Path,
    pub api_endpoint: &'a str,
    pub freeze: bool,
    /// Serves Kumo's API on a listener inside an environment (outbound access allowed).
    pub kumo_api: Option<&'a ApiServer>,
    /// The function's outbound network setting (tag `kumo:outbound-network`).
    pub outbound_network: bool,
    /// What outbound connections may reach (`outbound` is overridden per function).
    pub egress: crate::egress::EgressPolicy,
    /// The execution role's session for this environment.
    pub credentials: Option<super::roles::RoleCredentials>,
}

/// Serves Kumo's own API on a listener (one per isolated environment).
pub type ApiServer = Arc<dyn Fn(tokio::net::TcpListener) -> tokio::task::AbortHandle + Send + Sync>;

/// Where the environment finds things, as its own processes see them.
struct EnvPaths {
    runtime_api: String,
    task_root: PathBuf,
    runtime_dir: PathBuf,
    /// A host directory for TMPDIR when there is no private /tmp.
    tmp: Option<PathBuf>,
    /// Kumo's API, for `AWS_ENDPOINT_URL`.
    endpoint: String,
}

pub struct Pool {
    pub version: Arc<FunctionVersion>,
    idle: Mutex<Vec<Arc<Environment>>>,
    live: AtomicUsize,
    retired: AtomicBool,
    /// How this pool last lost an environment: the cause of the next cold start.
    last_loss: std::sync::atomic::AtomicU8,
}

const LOST_NONE: u8 = 0;
const LOST_REAPED: u8 = 1;
const LOST_CRASHED: u8 = 2;

impl Pool {
    pub fn new(version: Arc<FunctionVersion>) -> Pool {
        Pool {
            version,
            idle: Mutex::new(Vec::new()),
            live: AtomicUsize::new(0),
            retired: AtomicBool::new(false),
            last_loss: std::sync::atomic::AtomicU8::new(LOST_NONE),
        }
    }

    /// Why a cold start is needed now: other environments are busy (`scale-out`),
    /// or the last one was reaped or evicted (`after-reap`), or died with an
    /// error, timeout or crash (`after-crash`), or there never was one (`first`).
    pub fn cold_start_cause(&self) -> &'static str {
        if self.live() > 0 {
            return "scale-out";
        }
        match self.last_loss.load(Ordering::Relaxed) {
            LOST_REAPED => "after-reap",
            LOST_CRASHED => "after-crash",
            _ => "first",
        }
    }

    fn lost(&self, how: u8) {
        self.last_loss.store(how, Ordering::Relaxed);
    }

    pub fn live(&self) -> usize {
        self.live.load(Ordering::Relaxed)
    }

    pub fn idle_count(&self) -> usize {
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// The most recently used idle environment, if any (LIFO keeps the warmest busy
    /// and lets the rest age out).
    pub fn take_idle(&self) -> Option<Arc<Environment>> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let now = now_ms();
        while let Some(env) = idle.pop() {
            let credentials_fresh = env.credentials_expire_ms.is_none_or(|t| t - now > super::roles::REFRESH_MARGIN_MS);
            if !env.is_dead() && credentials_fresh {
                return Some(env);
            }
            self.lost(if env.is_dead() { LOST_CRASHED } else { LOST_REAPED });
            self.live.fetch_sub(1, Ordering::Relaxed);
            tokio::spawn(env.destroy());
        }
        None
    }

    /// Returns an environment after an invocation, or destroys it.
    pub fn release(&self, env: Arc<Environment>, reusable: bool) {
        if reusable && !self.retired.load(Ordering::Acquire) {
            env.touch();
            self.idle.lock().unwrap_or_else(|e| e.into_inner()).push(env);
        } else {
            if !self.retired.load(Ordering::Acquire) {
                self.lost(LOST_CRASHED);
            }
            self.live.fetch_sub(1, Ordering::Relaxed);
            tokio::spawn(env.destroy());
        }
    }

    /// Stops reuse (after an update or delete); idle environments go now, busy ones after their invocation.
    pub fn retire(&self) {
        self.retired.store(true, Ordering::Release);
        for env in std::mem::take(&mut *self.idle.lock().unwrap_or_else(|e| e.into_inner())) {
            self.live.fetch_sub(1, Ordering::Relaxed);
            tokio::spawn(env.destroy());
        }
    }

    /// Destroys environments idle for longer than `max_idle`.
    pub fn reap(&self, now: Instant, max_idle: Duration) -> usize {
        let expired: Vec<Arc<Environment>> = {
            let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
            let (old, keep): (Vec<_>, Vec<_>) =
                idle.drain(..).partition(|e| e.idle_for(now) >= max_idle || e.is_dead());
            *idle = keep;
            old
        };
        let n = expired.len();
        if n > 0 {
            self.lost(LOST_REAPED);
        }
        for env in expired {
            self.live.fetch_sub(1, Ordering::Relaxed);
            tokio::spawn(env.destroy());
        }
        n
    }

    /// How long the least recently used idle environment has been idle.
    pub fn oldest_idle(&self, now: Instant) -> Option<Duration> {
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        idle.first().map(|e| e.idle_for(now))
    }

    /// Destroys the least recently used idle environment (to make room for another).
    pub fn evict_oldest(&self) -> bool {
        let env = {
            let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
            if idle.is_empty() { None } else { Some(idle.remove(0)) }
        };
        match env {
            Some(env) => {
                self.lost(LOST_REAPED);
                self.live.fetch_sub(1, Ordering::Relaxed);
                tokio::spawn(env.destroy());
                true
            }
            None => false,
        }
    }

    /// Starts a new environment (a cold start).
    pub async fn spawn(&self, ctx: &SpawnContext<'_>) -> Result<Arc<Environment>, SpawnFailure> {
        let spawned_at = Instant::now();
        let v = &self.version;
        let id = uuid::Uuid::new_v4().simple().to_string();
        let task_root = ctx.code.task_root(&v.code.sha256_hex);
        let launch = ctx.runtimes.launch(&v.config.runtime, &task_root).ok_or_else(|| SpawnFailure {
            error_type: "Runtime.InvalidRuntime",
            message: ctx
                .runtimes
                .unavailable_reason(&v.config.runtime)
                .unwrap_or_else(|| format!("The runtime {} cannot run on this Kumo server.", v.config.runtime)),
        })?;
        if v.config.runtime.starts_with("provided") && !launch.program.is_file() {
            return Err(SpawnFailure {
                error_type: "Runtime.InvalidEntrypoint",
                message: format!("Couldn't find valid bootstrap(s): [{}]", launch.program.display()),
            });
        }

        let isolated = ctx.sandboxes.isolation().is_isolated();
        let host_listener = if isolated {
            None
        } else {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| SpawnFailure {
                error_type: "Sandbox.Failure",
                message: format!("could not open the Runtime API listener: {e}"),
            })?;
            Some(listener)
        };
        let tmp_dir = (!isolated).then(|| ctx.data_dir.join("envs").join(&id));
        if let Some(dir) = &tmp_dir {
            let _ = std::fs::create_dir_all(dir.join("tmp"));
        }
        let paths = match &host_listener {
            Some(l) => EnvPaths {
                runtime_api: format!("127.0.0.1:{}", l.local_addr().map(|a| a.port()).unwrap_or(0)),
                task_root: task_root.clone(),
                runtime_dir: ctx.runtimes.runtime_dir().to_path_buf(),
                tmp: tmp_dir.as_ref().map(|d| d.join("tmp")),
                endpoint: ctx.api_endpoint.to_string(),
            },
            None => EnvPaths {
                runtime_api: format!("127.0.0.1:{}", jail::RUNTIME_API_PORT),
                task_root: PathBuf::from(jail::TASK_ROOT),
                runtime_dir: PathBuf::from(jail::RUNTIME_DIR),
                tmp: None,
                // Served inside the environment's own network namespace, whatever Kumo listens on.
                endpoint: format!("http://127.0.0.1:{}", super::api_port(ctx.api_endpoint)),
            },
        };
        let stream: Arc<str> = Arc::from(logfmt::log_stream_name(now_ms(), v.version, &id));
        let group: Arc<str> = Arc::from(v.config.logging.log_group.as_str());
        let log = EnvLog::new(group.clone(), stream.clone(), ctx.store.clone(), None);
        log.platform_line(&logfmt::init_start_line(&launch.runtime_version, &ctx.runtime_version_arn));

        let seen = |p: &std::path::Path| inside_view(p, &task_root, ctx.runtimes.runtime_dir(), &paths);
        let env = environment_variables(v, ctx, &paths, &stream, &launch.path_prefix);
        let spec = SandboxSpec {
            id: format!("env-{id}"),
            program: seen(&launch.program),
            args: launch.args.iter().map(|a| seen(std::path::Path::new(a)).display().to_string()).collect(),
            env,
            cwd: paths.task_root.clone(),
            memory_limit_bytes: u64::from(v.config.memory_mb) * 1024 * 1024,
            jail: isolated.then(|| JailSpec {
                task_root: task_root.clone(),
                runtime_dir: ctx.runtimes.runtime_dir().to_path_buf(),
                read_only: launch.path_prefix.as_deref().map(interpreter_prefixes).unwrap_or_default(),
                tmp_mb: v.config.ephemeral_storage_mb,
                landlock: ctx.sandboxes.isolation().landlock_abi > 0,
            }),
        };
        let mut sandbox = ctx.sandboxes.spawn(&spec).await.map_err(|e| {
            if let Some(dir) = &tmp_dir {
                let _ = std::fs::remove_dir_all(dir);
            }
            let message = match &e {
                crate::sandbox::SandboxError::Spawn { source, .. } => {
                    format!("fork/exec {}: {}", launch.program.display(), source)
                }
                other => other.to_string(),
            };
            log.platform_line(&format!("Error: {message}"));
            SpawnFailure { error_type: "Runtime.InvalidEntrypoint", message }
        })?;
        if let Some(output) = sandbox.take_output() {
            log.attach(output.fd);
            log.spawn_reader();
        }
        let (runtime_listener, outbound) = match (host_listener, sandbox.take_listeners()) {
            (Some(l), _) => (Some(l), None),
            (None, Some(l)) => (Some(l.runtime_api), Some((l.kumo_api, l.connect_notifier))),
            (None, None) => (None, None),
        };
        let to_tokio =
            |l: std::net::TcpListener| l.set_nonblocking(true).and_then(|()| tokio::net::TcpListener::from_std(l));
        let runtime_listener = runtime_listener.map(to_tokio).transpose().ok().flatten().ok_or_else(|| {
            sandbox.kill();
            SpawnFailure {
                error_type: "Sandbox.Failure",
                message: "could not register the Runtime API listener".into(),
            }
        })?;
        // Every connect goes through Kumo's egress supervisor, which routes it
        // by the function's setting. Kumo's API inside the environment exists
        // only with outbound access; without it connections there are refused.
        let mut outbound_tasks = Vec::new();
        if let Some((kumo_api, notifier)) = outbound {
            let policy = crate::egress::EgressPolicy { outbound: ctx.outbound_network, ..ctx.egress };
            outbound_tasks.push(crate::egress::supervise(notifier, policy));
            if ctx.outbound_network
                && let (Ok(l), Some(serve)) = (to_tokio(kumo_api), ctx.kumo_api)
            {
                outbound_tasks.push(serve(l));
            }
        }
        tracing::debug!(function = %v.name, spawn_us = spawned_at.elapsed().as_micros() as u64, "environment spawned");
        self.live.fetch_add(1, Ordering::Relaxed);
        Ok(Environment::new(
            NewEnvironment {
                id,
                version: self.version.clone(),
                sandbox: Arc::new(sandbox),
                log,
                freeze_between_invocations: ctx.freeze,
                spawned_at,
                tmp_dir,
                credentials_expire_ms: ctx.credentials.as_ref().map(|c| c.expiration_ms),
            },
            |shared| {
                std::iter::once(crate::runtime_api::serve(runtime_listener, shared)).chain(outbound_tasks).collect()
            },
        ))
    }
}

/// The tag that turns a function's outbound network access off (`none`); allowed otherwise.
pub const OUTBOUND_TAG: &str = "kumo:outbound-network";

/// A host path as the environment sees it: the code at /var/task, Kumo's
/// bootstraps at /var/runtime, everything else (the interpreter) at the same place.
fn inside_view(
    path: &std::path::Path,
    task_root: &std::path::Path,
    runtime_dir: &std::path::Path,
    paths: &EnvPaths,
) -> PathBuf {
    if let Ok(rest) = path.strip_prefix(task_root) {
        return paths.task_root.join(rest);
    }
    if let Ok(rest) = path.strip_prefix(runtime_dir) {
        return paths.runtime_dir.join(rest);
    }
    path.to_path_buf()
}

/// What of an interpreter installed outside the system directories (e.g.
/// pyenv's `~/.pyenv/versions/3.12.1/bin`) the view must include: its `bin`
/// and `lib` (standard library, site-packages, node_modules), and nothing
/// else of wherever it lives.
fn interpreter_prefixes(bin_dir: &std::path::Path) -> Vec<PathBuf> {
    let system = ["/usr", "/bin", "/sbin", "/lib", "/lib64"];
    let mut out = Vec::new();
    for bin in [bin_dir.to_path_buf(), std::fs::canonicalize(bin_dir).unwrap_or_default()] {
        let Some(prefix) = bin.parent() else { continue };
        if prefix.parent().is_none() || system.iter().any(|s| prefix.starts_with(s)) {
            continue;
        }
        for dir in [prefix.join("bin"), prefix.join("lib")] {
            if dir.is_dir() && !out.contains(&dir) {
                out.push(dir);
            }
        }
    }
    out
}

/// The variables Lambda sets, then the function's own (which may override the unreserved ones).
fn environment_variables(
    v: &FunctionVersion,
    ctx: &SpawnContext<'_>,
    paths: &EnvPaths,
    stream: &str,
    path_prefix: &Option<PathBuf>,
) -> Vec<(String, String)> {
    let c = &v.config;
    let mut path = String::new();
    if let Some(prefix) = path_prefix {
        path.push_str(&prefix.display().to_string());
        path.push(':');
    }
    path.push_str("/usr/local/bin:/usr/bin:/bin");
    let version = match v.version {
        VersionId::Latest => "$LATEST".to_string(),
        VersionId::Number(n) => n.to_string(),
    };
    let mut env: Vec<(String, String)> = vec![
        ("AWS_LAMBDA_RUNTIME_API".into(), paths.runtime_api.clone()),
        ("_HANDLER".into(), c.handler.clone()),
        ("LAMBDA_TASK_ROOT".into(), paths.task_root.display().to_string()),
        ("LAMBDA_RUNTIME_DIR".into(), paths.runtime_dir.display().to_string()),
        ("AWS_LAMBDA_FUNCTION_NAME".into(), v.name.clone()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE".into(), c.memory_mb.to_string()),
        ("AWS_LAMBDA_FUNCTION_VERSION".into(), version),
        ("AWS_LAMBDA_INITIALIZATION_TYPE".into(), "on-demand".into()),
        ("AWS_LAMBDA_LOG_GROUP_NAME".into(), c.logging.log_group.clone()),
        ("AWS_LAMBDA_LOG_STREAM_NAME".into(), stream.to_string()),
        ("AWS_REGION".into(), ctx.region.to_string()),
        ("AWS_DEFAULT_REGION".into(), ctx.region.to_string()),
        ("AWS_XRAY_CONTEXT_MISSING".into(), "LOG_ERROR".into()),
        // Lambda has no instance metadata service; SDKs must not probe 169.254.169.254.
        ("AWS_EC2_METADATA_DISABLED".into(), "true".into()),
        ("AWS_ENDPOINT_URL".into(), paths.endpoint.clone()),
        ("TZ".into(), ":UTC".into()),
        ("LANG".into(), "en_US.UTF-8".into()),
        ("PATH".into(), path),
        ("LD_LIBRARY_PATH".into(), format!("{0}:{0}/lib", paths.task_root.display())),
        ("PWD".into(), paths.task_root.display().to_string()),
    ];
    if let Some(tmp) = &paths.tmp {
        env.push(("TMPDIR".into(), tmp.display().to_string()));
    }
    // The execution role's session: an unmodified SDK in the function signs with it.
    if let Some(c) = &ctx.credentials {
        env.push(("AWS_ACCESS_KEY_ID".into(), c.access_key_id.clone()));
        env.push(("AWS_SECRET_ACCESS_KEY".into(), c.secret_access_key.clone()));
        env.push(("AWS_SESSION_TOKEN".into(), c.session_token.clone()));
    }

    if let Some(exec_env) = runtime::execution_env(&c.runtime) {
        env.push(("AWS_EXECUTION_ENV".into(), exec_env));
    }
    if c.logging.log_format == "JSON" {
        env.push(("AWS_LAMBDA_LOG_FORMAT".into(), "JSON".into()));
        if let Some(level) = &c.logging.application_log_level {
            env.push(("AWS_LAMBDA_LOG_LEVEL".into(), level.clone()));
        }
    }
    if let Some(vars) = &c.environment {
        for (k, val) in vars {
            env.retain(|(existing, _)| existing != k);
            env.push((k.clone(), val.clone()));
        }
    }
    env
}
