//! `kumo serve`: wiring the store, the engine and the HTTP surfaces together.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::serve::ListenerExt;
use kumo_core::names::Scope;

use crate::engine::{Engine, EngineConfig};
use crate::iam::AuthMode;
use crate::iam::credentials::{ROOT_CREDENTIALS_FILE, RootKeySource, load_or_create_root_key};
use crate::iam::service::IamService;
use crate::store::Store;
use crate::store::sqlite::SqliteStore;

/// Everything `kumo serve` is configured with.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub region: String,
    pub account_id: String,
    pub idle_timeout: Duration,
    pub billing_granularity_ms: u64,
    pub bill_init: bool,
    pub account_concurrency: u32,
    pub freeze: bool,
    pub runtime_overrides: Vec<(String, PathBuf)>,
    pub prewarm_sandboxes: usize,
    pub max_environments: usize,
    pub isolation: crate::sandbox::IsolationMode,
    pub cpu_limits: bool,
    pub egress_host_loopback: bool,
    pub async_retry_delays: Vec<Duration>,
    pub auth: crate::iam::AuthMode,
    /// A JSON price book replacing Lambda's list prices.
    pub price_book: Option<PathBuf>,
    /// Bearer token for `/_kumo/metrics` (Prometheus).
    pub metrics_token: Option<String>,
    /// The cap on log bytes stored across all groups (`None`: no cap).
    pub log_max_bytes: Option<u64>,
    /// How long one minute of a `rate()` schedule lasts (a minute, but in tests).
    pub schedule_minute: Duration,
}

/// Runs the server until SIGINT or SIGTERM, then drains and stops.
pub async fn serve(opts: ServeOptions) -> anyhow::Result<()> {
    std::fs::create_dir_all(&opts.data_dir)
        .with_context(|| format!("creating the data dir {}", opts.data_dir.display()))?;
    let data_dir = opts.data_dir.canonicalize().unwrap_or(opts.data_dir.clone());
    let listener =
        tokio::net::TcpListener::bind(opts.listen).await.with_context(|| format!("listening on {}", opts.listen))?;
    let addr = listener.local_addr()?;
    let endpoint = format!("http://{addr}");
    let price_book = match &opts.price_book {
        None => kumo_core::pricing::PriceBook::default(),
        Some(path) => {
            let text =
                std::fs::read_to_string(path).with_context(|| format!("reading the price book {}", path.display()))?;
            let book: kumo_core::pricing::PriceBook =
                serde_json::from_str(&text).with_context(|| format!("parsing the price book {}", path.display()))?;
            book.validate().with_context(|| format!("the price book {}", path.display()))?;
            book
        }
    };
    let store = Arc::new(SqliteStore::open(&data_dir).context("opening the store")?);
    store.set_log_size_cap(opts.log_max_bytes);
    let backfilled = store.backfill_rollups(price_book.clone()).await.context("rolling up stored metering")?;
    if backfilled > 0 {
        println!("  rolled up {backfilled} stored metering records for the dashboard");
    }
    let sqlite = store.clone();
    let engine_sqlite = store.clone();
    let iam = Arc::new(IamService::load(store.clone(), &opts.account_id).await.context("loading IAM")?);
    let engine = Engine::start(
        EngineConfig {
            scope: Scope { partition: "aws".into(), region: opts.region.clone(), account: opts.account_id.clone() },
            data_dir: data_dir.clone(),
            idle_timeout: opts.idle_timeout,
            billing_granularity_ms: opts.billing_granularity_ms,
            bill_init: opts.bill_init,
            account_concurrency: opts.account_concurrency,
            freeze: opts.freeze,
            api_endpoint: endpoint.clone(),
            runtime_overrides: opts.runtime_overrides.clone(),
            prewarm_sandboxes: opts.prewarm_sandboxes,
            max_environments: opts.max_environments,
            isolation: opts.isolation,
            cpu_limits: opts.cpu_limits,
            egress_host_loopback: opts.egress_host_loopback,
            async_retry_delays: opts.async_retry_delays.clone(),
            price_book,
        },
        store,
    )
    .await
    .context("starting the engine")?;

    for line in engine.describe() {
        println!("  {line}");
    }
    if !engine.sandbox_capabilities().memory {
        println!(
            "  WARNING: no writable memory cgroup: MemorySize is not enforced and Max Memory Used comes from the runtime process's high-water mark"
        );
    }
    let root_key = match opts.auth {
        AuthMode::None => {
            println!(
                "  WARNING: --auth none: requests are neither authenticated nor authorised; anyone who can reach {endpoint} acts as the account root"
            );
            None
        }
        AuthMode::Sigv4 => {
            let (key, source) = load_or_create_root_key(&data_dir).context("loading the root credentials")?;
            match source {
                RootKeySource::Generated => {
                    println!("  generated the account's root credentials (shown once; `kumo env` prints them again):");
                    println!("    AccessKeyId     {}", key.access_key_id);
                    println!("    SecretAccessKey {}", key.secret_access_key);
                    println!("    kept in {} (owner-only)", data_dir.join(ROOT_CREDENTIALS_FILE).display());
                }
                RootKeySource::File => println!(
                    "  requests must be signed (SigV4); root access key {} (`kumo env` prints the exports)",
                    key.access_key_id
                ),
                RootKeySource::Environment => println!(
                    "  requests must be signed (SigV4); root access key {} from KUMO_ROOT_ACCESS_KEY_ID",
                    key.access_key_id
                ),
            }
            Some(key)
        }
    };
    // The listening line comes last: once it is printed, the server is ready.
    println!("Kumo listening on {endpoint} (data dir {})", data_dir.display());
    println!("Point the AWS CLI at it:  aws --endpoint-url {endpoint} --region {} lambda list-functions", opts.region);
    println!(
        "Function URLs:  http://<url-id>.lambda-url.{}.localhost:{}/  (also {endpoint}/_kumo/url/<url-id>/; `kumo url NAME` prints one)",
        opts.region,
        addr.port()
    );

    engine.set_execution_roles(Arc::new(crate::iam::execution::LambdaExecutionRoles::new(iam.clone())));
    let directory: Arc<dyn crate::iam::IamDirectory> = iam.clone();
    let security = crate::api::Security {
        authenticator: Arc::new(
            crate::api::auth::Authenticator::new(
                opts.auth,
                &opts.account_id,
                &opts.region,
                root_key,
                directory.clone(),
            )
            .with_metrics_token(opts.metrics_token.clone()),
        ),
        authorizer: Arc::new(crate::api::authorize::Authorizer::new(
            &opts.account_id,
            &opts.region,
            directory,
            engine.clone(),
        )),
    };
    let objects = crate::objects::ObjectStore::open(
        &data_dir,
        sqlite,
        engine.clone(),
        security.authorizer.clone(),
        &opts.region,
        &opts.account_id,
    )
    .await
    .context("opening the object store")?;
    engine.set_bucket_destinations(objects.clone());
    let s3 = crate::api::S3Surface {
        service: objects.service(security.authenticator.clone(), security.authorizer.clone()),
        objects,
    };
    // EventBridge schedules: missed ticks fire once now, then each on time.
    let schedules = crate::schedules::Schedules::start(
        engine_sqlite,
        engine.clone(),
        security.authorizer.clone(),
        opts.schedule_minute,
    )
    .await
    .context("loading EventBridge rules")?;
    let app = crate::api::router(engine.clone(), iam, security, Some(s3), schedules);
    let inner_app = app.clone();
    engine.set_api_server(Arc::new(move |listener| {
        let app = inner_app.clone();
        tokio::spawn(async move {
            let listener = listener.tap_io(no_delay);
            let _ = axum::serve(listener, app.into_make_service_with_connect_info::<std::net::SocketAddr>()).await;
        })
        .abort_handle()
    }));
    // Log retention (PutRetentionPolicy) is enforced every minute.
    let expiring = engine.store().clone();
    tokio::spawn(async move {
        loop {
            match expiring.expire_logs(crate::engine::now_ms()).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(events = n, "expired log events past their group's retention"),
                Err(e) => tracing::warn!(error = %e, "could not expire old log events"),
            }
            tokio::time::sleep(Duration::from_secs(60)).await;
        }
    });
    // The peer address becomes the `aws:SourceIp` condition key.
    axum::serve(listener.tap_io(no_delay), app.into_make_service_with_connect_info::<std::net::SocketAddr>())
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("serving HTTP")?;
    println!("Kumo is stopping: waiting for in-flight invocations");
    engine.shutdown().await;
    println!("Kumo stopped");
    Ok(())
}

/// Small responses whose headers and body hyper writes separately (a streamed
/// GET) must not wait out Nagle's algorithm against the client's delayed ACK (40 ms).
fn no_delay(stream: &mut tokio::net::TcpStream) {
    let _ = stream.set_nodelay(true);
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
