//! The engine: functions, environments and invocations.
//!
//! HTTP handlers call the engine with plain Rust values and get plain values
//! or [`ApiError`]s back; the engine never sees HTTP. It keeps every function's
//! metadata in memory (loaded from the [`Store`] at start, written through on
//! every change), so the invoke path never touches the database.

mod async_queue;
mod control;
pub mod costs;
pub mod environment;
mod envlog;
mod event_config;
mod function_urls;
mod invoke;
mod metrics;
mod permissions;
mod pool;
mod recursion;
pub mod roles;
pub mod runtimes;
pub mod stream;
mod tags;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::Duration;

use kumo_core::concurrency::Concurrency;
use kumo_core::function::{Alias, FunctionMeta, FunctionVersion, VersionId};
use kumo_core::names::Scope;
use kumo_core::{ApiError, ErrorCode};
use tokio::sync::Notify;

pub use async_queue::EventSummary;
pub use control::{CreateFunction, FunctionView, ListPage, UpdateCode};
pub use event_config::EventConfigView;
pub use function_urls::{FunctionUrlView, UrlTarget};
pub use invoke::{InvokeRequest, InvokeResponse};
pub use permissions::PolicyView;
pub use pool::{ApiServer, OUTBOUND_TAG};
pub use recursion::Caller;

use crate::sandbox::{IsolationMode, IsolationPlan, Sandboxes};
use crate::store::code::CodeStore;
use crate::store::{Store, StoreError};
use pool::Pool;
use runtimes::RuntimeCatalog;

/// Server-wide settings the engine runs with.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub scope: Scope,
    pub data_dir: PathBuf,
    /// Idle environments are destroyed after this long.
    pub idle_timeout: Duration,
    /// 1 ms today; 100 ms reproduces pre-2021 billing.
    pub billing_granularity_ms: u64,
    /// Bill the init phase of cold starts (Lambda's rule since August 2025).
    pub bill_init: bool,
    pub account_concurrency: u32,
    /// Freeze environments between invocations.
    pub freeze: bool,
    /// Kumo's own API endpoint, handed to functions as `AWS_ENDPOINT_URL`.
    pub api_endpoint: String,
    pub runtime_overrides: Vec<(String, PathBuf)>,
    /// Sandbox shells kept started (cgroups joined) ahead of cold starts.
    pub prewarm_sandboxes: usize,
    /// Above this many environments, idle ones are evicted before a cold start.
    pub max_environments: usize,
    /// `--isolation`.
    pub isolation: IsolationMode,
    /// CPU quota proportional to memory.
    pub cpu_limits: bool,
    /// Let functions reach the host's own loopback services at host.kumo.internal.
    pub egress_host_loopback: bool,
    /// Waits before the retries of a failed asynchronous invocation (Lambda: 1 and 2 minutes).
    pub async_retry_delays: Vec<Duration>,
    /// The rates costs are computed with (Lambda's list prices unless configured).
    pub price_book: kumo_core::pricing::PriceBook,
}

/// One function in memory.
#[derive(Debug, Clone)]
struct FunctionState {
    latest: Arc<FunctionVersion>,
    versions: BTreeMap<u64, Arc<FunctionVersion>>,
    aliases: BTreeMap<String, Alias>,
    meta: FunctionMeta,
}

/// Which pool an invocation uses: a version's environments are replaced when
/// its revision changes (code or configuration update).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct PoolKey {
    name: String,
    version: VersionId,
    revision: String,
}

/// What failed while starting the engine.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("preparing the code store: {0}")]
    Code(std::io::Error),
    #[error(transparent)]
    Runtimes(#[from] runtimes::RuntimeError),
    #[error(transparent)]
    Sandbox(#[from] crate::sandbox::SandboxError),
}

pub struct Engine {
    cfg: EngineConfig,
    store: Arc<dyn Store>,
    code: CodeStore,
    runtimes: RuntimeCatalog,
    sandboxes: Sandboxes,
    queue: async_queue::AsyncQueue,
    /// Serves Kumo's API inside environments; set once the HTTP router exists.
    kumo_api: OnceLock<pool::ApiServer>,
    /// Assumes execution roles (set by `serve`; without it functions run with no credentials).
    roles: OnceLock<Arc<dyn roles::ExecutionRoles>>,
    /// Delivers `OnFailure` records to S3 buckets (set by `serve`).
    buckets: OnceLock<Arc<dyn roles::BucketDestinations>>,
    functions: RwLock<HashMap<String, FunctionState>>,
    /// Serialises control-plane changes (they are rare; invocations never take it).
    control: tokio::sync::Mutex<()>,
    concurrency: Mutex<Concurrency>,
    pools: Mutex<HashMap<PoolKey, Arc<Pool>>>,
    in_flight: AtomicUsize,
    drained: Notify,
    accepting: AtomicBool,
    lineages: recursion::Lineages,
    costs: costs::Costs,
    metrics: metrics::Metrics,
    /// The engine itself, for work it spawns from `&self` methods.
    me: OnceLock<std::sync::Weak<Engine>>,
}

fn store_error(e: StoreError) -> ApiError {
    tracing::error!(error = %e, "store failure");
    ApiError::service("Kumo could not persist the change; see the server log.")
}

impl Engine {
    pub async fn start(cfg: EngineConfig, store: Arc<dyn Store>) -> Result<Arc<Engine>, EngineError> {
        let code = CodeStore::new(&cfg.data_dir).map_err(EngineError::Code)?;
        let runtimes = RuntimeCatalog::discover(&cfg.data_dir, &cfg.runtime_overrides)?;
        let plan = IsolationPlan {
            mode: cfg.isolation,
            root_dir: cfg.data_dir.join("sandbox-root"),
            api_port: api_port(&cfg.api_endpoint),
            cpu_limits: cfg.cpu_limits,
        };
        let sandboxes = Sandboxes::detect(cfg.prewarm_sandboxes, &plan)?;
        let _ = std::fs::remove_dir_all(cfg.data_dir.join("envs"));
        let mut functions = HashMap::new();
        let mut concurrency = Concurrency::new(cfg.account_concurrency);
        for f in store.load_functions().await? {
            if let Some(r) = f.meta.reserved_concurrency
                && concurrency.set_reserved(&f.latest.name, Some(r)).is_err()
            {
                tracing::warn!(function = %f.latest.name, "stored reserved concurrency exceeds the account limit; ignored");
            }
            let state = FunctionState {
                versions: f
                    .versions
                    .into_iter()
                    .filter_map(|v| match v.version {
                        VersionId::Number(n) => Some((n, Arc::new(v))),
                        VersionId::Latest => None,
                    })
                    .collect(),
                aliases: f.aliases.into_iter().map(|a| (a.name.clone(), a)).collect(),
                meta: f.meta,
                latest: Arc::new(f.latest),
            };
            functions.insert(state.latest.name.clone(), state);
        }
        let queue = async_queue::AsyncQueue::new(&cfg.async_retry_delays);
        let price_book = cfg.price_book.clone();
        let engine = Arc::new(Engine {
            cfg,
            store,
            code,
            runtimes,
            sandboxes,
            queue,
            kumo_api: OnceLock::new(),
            roles: OnceLock::new(),
            buckets: OnceLock::new(),
            functions: RwLock::new(functions),
            control: tokio::sync::Mutex::new(()),
            concurrency: Mutex::new(concurrency),
            pools: Mutex::new(HashMap::new()),
            in_flight: AtomicUsize::new(0),
            drained: Notify::new(),
            accepting: AtomicBool::new(true),
            lineages: recursion::Lineages::default(),
            costs: costs::Costs::new(price_book),
            metrics: metrics::Metrics::default(),
            me: OnceLock::new(),
        });
        let _ = engine.me.set(Arc::downgrade(&engine));
        engine.start_costs().await?;
        engine.clone().spawn_reaper();
        engine.start_async_queue().await?;
        Ok(engine)
    }

    /// The engine as an `Arc`, for tasks spawned from `&self` methods.
    fn self_ref(&self) -> Option<Arc<Engine>> {
        self.me.get().and_then(std::sync::Weak::upgrade)
    }

    pub fn config(&self) -> &EngineConfig {
        &self.cfg
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub fn code_store(&self) -> &CodeStore {
        &self.code
    }

    /// Lines for the start-up banner.
    pub fn describe(&self) -> Vec<String> {
        let mut lines = vec![self.sandboxes.describe()];
        lines.extend(self.runtimes.describe().into_iter().map(|l| format!("runtime {l}")));
        lines
    }

    pub fn sandbox_capabilities(&self) -> crate::sandbox::Capabilities {
        self.sandboxes.capabilities()
    }

    /// Hands the engine a way to serve Kumo's API on listeners inside
    /// environments (functions with outbound access reach it at Kumo's usual address).
    pub fn set_api_server(&self, serve: pool::ApiServer) {
        let _ = self.kumo_api.set(serve);
    }

    /// How execution roles are checked and assumed.
    pub fn set_execution_roles(&self, roles: Arc<dyn roles::ExecutionRoles>) {
        let _ = self.roles.set(roles);
    }

    /// Lets S3 buckets be `OnFailure` destinations.
    pub fn set_bucket_destinations(&self, buckets: Arc<dyn roles::BucketDestinations>) {
        let _ = self.buckets.set(buckets);
    }

    /// Warnings about a role broader than least privilege (said at
    /// CreateFunction and UpdateFunctionConfiguration, never refused).
    pub fn role_warnings(&self, role_arn: &str) -> Vec<String> {
        self.roles.get().map(|r| r.broad_grants(role_arn)).unwrap_or_default()
    }

    /// CreateFunction and UpdateFunctionConfiguration: Lambda must be able to assume the role.
    fn check_role(&self, role_arn: &str) -> Result<(), ApiError> {
        match self.roles.get() {
            Some(roles) if !roles.assumable_by_lambda(role_arn) => Err(roles::unassumable_role()),
            _ => Ok(()),
        }
    }

    /// A function's outbound network setting: allowed unless tagged `kumo:outbound-network=none`.
    fn outbound_network(&self, name: &str) -> bool {
        self.read_functions().get(name).and_then(|f| f.meta.tags.get(OUTBOUND_TAG)).is_none_or(|v| v != "none")
    }

    fn read_functions(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, FunctionState>> {
        self.functions.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write_functions(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, FunctionState>> {
        self.functions.write().unwrap_or_else(|e| e.into_inner())
    }

    fn lock_concurrency(&self) -> std::sync::MutexGuard<'_, Concurrency> {
        self.concurrency.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn pool_for(&self, version: &Arc<FunctionVersion>) -> Arc<Pool> {
        let key =
            PoolKey { name: version.name.clone(), version: version.version, revision: version.revision_id.clone() };
        let mut pools = self.pools.lock().unwrap_or_else(|e| e.into_inner());
        pools.entry(key).or_insert_with(|| Arc::new(Pool::new(version.clone()))).clone()
    }

    /// Retires the pools of a function (all of them, or those of one version)
    /// whose revision is no longer current.
    fn retire_pools(&self, name: &str, keep: impl Fn(&PoolKey) -> bool) {
        let mut pools = self.pools.lock().unwrap_or_else(|e| e.into_inner());
        let stale: Vec<PoolKey> = pools.keys().filter(|k| k.name == name && !keep(k)).cloned().collect();
        for key in stale {
            if let Some(pool) = pools.remove(&key) {
                pool.retire();
            }
        }
    }

    /// Environments per function version: (function, version, live, idle).
    pub fn environment_counts(&self) -> Vec<(String, String, usize, usize)> {
        let pools = self.pools.lock().unwrap_or_else(|e| e.into_inner());
        pools.iter().map(|(k, p)| (k.name.clone(), k.version.to_string(), p.live(), p.idle_count())).collect()
    }

    fn spawn_reaper(self: Arc<Self>) {
        let period = (self.cfg.idle_timeout / 4).clamp(Duration::from_millis(100), Duration::from_secs(10));
        let weak = Arc::downgrade(&self);
        drop(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            loop {
                tick.tick().await;
                let Some(engine) = weak.upgrade() else { break };
                let now = std::time::Instant::now();
                let pools: Vec<Arc<Pool>> =
                    engine.pools.lock().unwrap_or_else(|e| e.into_inner()).values().cloned().collect();
                for pool in pools {
                    let n = pool.reap(now, engine.cfg.idle_timeout);
                    if n > 0 {
                        tracing::debug!(function = %pool.version.name, reaped = n, "idle environments reaped");
                    }
                }
            }
        });
    }

    /// Stops taking invocations, waits for those in flight, then destroys every
    /// environment and flushes the store.
    pub async fn shutdown(&self) {
        self.accepting.store(false, Ordering::Release);
        loop {
            let notified = self.drained.notified();
            if self.in_flight.load(Ordering::Acquire) == 0 {
                break;
            }
            notified.await;
        }
        let pools: Vec<Arc<Pool>> =
            self.pools.lock().unwrap_or_else(|e| e.into_inner()).drain().map(|(_, p)| p).collect();
        for pool in &pools {
            pool.retire();
        }
        // Wait for the destroy tasks: processes reaped, cgroups removed.
        for _ in 0..500 {
            if environment::undestroyed_environments() == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        drop(pools);
        let _ = self.store.flush().await;
        self.sandboxes.shutdown();
    }

    fn not_found(&self, name: &str, qualifier: Option<&str>) -> ApiError {
        let arn = match qualifier {
            Some(q) => self.cfg.scope.qualified_arn(name, q),
            None => self.cfg.scope.function_arn(name),
        };
        ApiError::not_found(format!("Function not found: {arn}"))
    }
}

/// A `FunctionName` that does not parse, as Lambda reports it. CreateFunction's
/// pattern allows no dots in the name; the other operations' does.
pub fn function_name_error(value: &str) -> ApiError {
    name_pattern_error(value, "[a-zA-Z0-9-_\\.]+")
}

pub fn create_name_error(value: &str) -> ApiError {
    name_pattern_error(value, "[a-zA-Z0-9-_]+")
}

fn name_pattern_error(value: &str, name_part: &str) -> ApiError {
    ApiError::new(
        ErrorCode::Validation,
        format!(
            "1 validation error detected: Value '{value}' at 'functionName' failed to satisfy constraint: Member must satisfy regular expression pattern: (arn:(aws[a-zA-Z-]*)?:lambda:)?([a-z]{{2}}((-gov)|(-iso([a-z]?)))?-[a-z]+-\\d{{1}}:)?(\\d{{12}}:)?(function:)?({name_part})(:(\\$LATEST|[a-zA-Z0-9-_]+))?"
        ),
    )
}

/// Wall-clock milliseconds since the epoch (the engine's one clock; the core takes time as input).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// The port of Kumo's API endpoint (`http://host:port`), 0 if it has none.
pub(super) fn api_port(endpoint: &str) -> u16 {
    endpoint.rsplit(':').next().and_then(|p| p.trim_end_matches('/').parse().ok()).unwrap_or(0)
}
