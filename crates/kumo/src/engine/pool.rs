//! Environments of one function version: reuse, scale-out and reaping.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kumo_core::function::{FunctionVersion, VersionId};
use kumo_core::{logfmt, runtime};

use super::environment::{Environment, NewEnvironment};
use super::envlog::EnvLog;
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
}

pub struct Pool {
    pub version: Arc<FunctionVersion>,
    idle: Mutex<Vec<Arc<Environment>>>,
    live: AtomicUsize,
    retired: AtomicBool,
}

impl Pool {
    pub fn new(version: Arc<FunctionVersion>) -> Pool {
        Pool { version, idle: Mutex::new(Vec::new()), live: AtomicUsize::new(0), retired: AtomicBool::new(false) }
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
        while let Some(env) = idle.pop() {
            if !env.is_dead() {
                return Some(env);
            }
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

        let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| SpawnFailure {
            error_type: "Sandbox.Failure",
            message: format!("could not open the Runtime API listener: {e}"),
        })?;
        let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
        let _ = listener.set_nonblocking(true);
        let listener = tokio::net::TcpListener::from_std(listener).map_err(|e| SpawnFailure {
            error_type: "Sandbox.Failure",
            message: format!("could not register the Runtime API listener: {e}"),
        })?;

        let tmp_dir = ctx.data_dir.join("envs").join(&id);
        let _ = std::fs::create_dir_all(tmp_dir.join("tmp"));
        let stream: Arc<str> = Arc::from(logfmt::log_stream_name(now_ms(), v.version, &id));
        let group: Arc<str> = Arc::from(v.config.logging.log_group.as_str());
        let log = EnvLog::new(group.clone(), stream.clone(), ctx.store.clone(), None);
        log.platform_line(&logfmt::init_start_line(&launch.runtime_version, &ctx.runtime_version_arn));

        let env = environment_variables(v, ctx, port, &task_root, &tmp_dir, &stream, &launch.path_prefix);
        let spec = SandboxSpec {
            id: format!("env-{id}"),
            program: launch.program.clone(),
            args: launch.args.iter().map(Into::into).collect(),
            env,
            cwd: task_root.clone(),
            memory_limit_bytes: u64::from(v.config.memory_mb) * 1024 * 1024,
        };
        let mut sandbox = ctx.sandboxes.spawn(&spec).await.map_err(|e| {
            let _ = std::fs::remove_dir_all(&tmp_dir);
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
                tmp_dir: Some(tmp_dir),
            },
            |shared| crate::runtime_api::serve(listener, shared),
        ))
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// The variables Lambda sets, then the function's own (which may override the unreserved ones).
fn environment_variables(
    v: &FunctionVersion,
    ctx: &SpawnContext<'_>,
    port: u16,
    task_root: &std::path::Path,
    tmp_dir: &std::path::Path,
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
        ("AWS_LAMBDA_RUNTIME_API".into(), format!("127.0.0.1:{port}")),
        ("_HANDLER".into(), c.handler.clone()),
        ("LAMBDA_TASK_ROOT".into(), task_root.display().to_string()),
        ("LAMBDA_RUNTIME_DIR".into(), ctx.runtimes.runtime_dir().display().to_string()),
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
        ("AWS_ENDPOINT_URL".into(), ctx.api_endpoint.to_string()),
        ("TZ".into(), ":UTC".into()),
        ("LANG".into(), "en_US.UTF-8".into()),
        ("PATH".into(), path),
        ("LD_LIBRARY_PATH".into(), format!("{0}:{0}/lib", task_root.display())),
        ("TMPDIR".into(), tmp_dir.join("tmp").display().to_string()),
        ("PWD".into(), task_root.display().to_string()),
    ];
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
