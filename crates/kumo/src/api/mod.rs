//! The HTTP surfaces on Kumo's one port.
//!
//! One router carries every AWS protocol Kumo speaks (Lambda's REST JSON, the
//! CloudWatch Logs JSON 1.1 protocol, and more as they come). Handlers take
//! requests apart, call the engine and map the result; nothing else. One
//! authentication layer sits in front of all of them.

pub mod auth;
pub mod authorize;
mod costs;
pub mod error;
mod event_config;
mod events;
mod explain;
mod function_meta;
mod iam;
mod invoke_stream;
mod lambda;
mod logs;
mod logs_tags;
mod permissions;
pub(crate) mod query;
mod shapes;
mod sts;
mod url_config;
pub mod url_invoke;
mod url_stream;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};

use crate::engine::Engine;

#[derive(Clone)]
pub struct AppState {
    pub engine: Arc<Engine>,
    pub iam: Arc<crate::iam::service::IamService>,
    pub authorizer: Arc<authorize::Authorizer>,
    /// The object store (absent in tests and benchmarks that serve Lambda only).
    pub objects: Option<Arc<crate::objects::ObjectStore>>,
    /// EventBridge rules and their scheduler.
    pub schedules: Arc<crate::schedules::Schedules>,
}

/// Reads a request body up to `limit` bytes; `None` when it is larger.
pub(crate) async fn read_limited(body: Body, limit: usize) -> Option<bytes::Bytes> {
    axum::body::to_bytes(body, limit).await.ok()
}

/// Who may call: the authentication and authorisation layers every route sits behind.
#[derive(Clone)]
pub struct Security {
    pub authenticator: Arc<auth::Authenticator>,
    pub authorizer: Arc<authorize::Authorizer>,
}

/// The S3 side of the port: the object store and the s3s service over it.
#[derive(Clone)]
pub struct S3Surface {
    pub objects: Arc<crate::objects::ObjectStore>,
    pub service: s3s::service::S3Service,
}

pub fn router(
    engine: Arc<Engine>,
    iam: Arc<crate::iam::service::IamService>,
    security: Security,
    s3: Option<S3Surface>,
    schedules: Arc<crate::schedules::Schedules>,
) -> Router {
    let urls = url_invoke::UrlSurface {
        engine: engine.clone(),
        authenticator: security.authenticator.clone(),
        authorizer: security.authorizer.clone(),
    };
    let dashboard = Arc::new(crate::dashboard::Dashboard::new(
        engine.clone(),
        security.authenticator.clone(),
        security.authorizer.clone(),
        schedules.clone(),
        s3.as_ref().map(|s| s.objects.clone()),
    ));
    let state = AppState {
        engine,
        iam,
        authorizer: security.authorizer.clone(),
        objects: s3.as_ref().map(|s| s.objects.clone()),
        schedules,
    };
    Router::new()
        .route("/2015-03-31/functions", post(lambda::create_function).get(lambda::list_functions))
        .route("/2015-03-31/functions/", post(lambda::create_function).get(lambda::list_functions))
        .route("/2015-03-31/functions/{name}", get(lambda::get_function).delete(lambda::delete_function))
        .route(
            "/2015-03-31/functions/{name}/configuration",
            get(lambda::get_configuration).put(lambda::update_configuration),
        )
        .route("/2015-03-31/functions/{name}/code", axum::routing::put(lambda::update_code))
        .route("/2015-03-31/functions/{name}/versions", post(lambda::publish_version).get(lambda::list_versions))
        .route("/2015-03-31/functions/{name}/aliases", post(lambda::create_alias).get(lambda::list_aliases))
        .route(
            "/2015-03-31/functions/{name}/aliases/{alias}",
            get(lambda::get_alias).put(lambda::update_alias).delete(lambda::delete_alias),
        )
        .route("/2015-03-31/functions/{name}/invocations", post(lambda::invoke))
        .route(
            "/2021-11-15/functions/{name}/response-streaming-invocations",
            post(invoke_stream::invoke_with_response_stream),
        )
        .route("/2015-03-31/functions/{name}/policy", post(permissions::add).get(permissions::get))
        .route("/2015-03-31/functions/{name}/policy/{sid}", axum::routing::delete(permissions::remove))
        .route(
            "/2017-10-31/functions/{name}/concurrency",
            axum::routing::put(lambda::put_concurrency).delete(lambda::delete_concurrency),
        )
        .route("/2019-09-30/functions/{name}/concurrency", get(lambda::get_concurrency))
        .route(
            "/2019-09-25/functions/{name}/event-invoke-config",
            axum::routing::put(event_config::put)
                .post(event_config::update)
                .get(event_config::get)
                .delete(event_config::delete),
        )
        .route("/2019-09-25/functions/{name}/event-invoke-config/list", get(event_config::list))
        .route(
            "/2024-08-31/functions/{name}/recursion-config",
            get(lambda::get_recursion_config).put(lambda::put_recursion_config),
        )
        .route(
            "/2021-10-31/functions/{name}/url",
            post(url_config::create).get(url_config::get).put(url_config::update).delete(url_config::delete),
        )
        .route("/2021-10-31/functions/{name}/urls", get(url_config::list))
        .route(
            "/2017-03-31/tags/{name}",
            get(function_meta::list_tags).post(function_meta::tag).delete(function_meta::untag),
        )
        .route("/2020-06-30/functions/{name}/code-signing-config", get(function_meta::code_signing_config))
        .route("/2016-08-19/account-settings", get(lambda::account_settings))
        .route("/2016-08-19/account-settings/", get(lambda::account_settings))
        .route("/_kumo/code/{file}", get(lambda::download_code))
        .route("/_kumo/health", get(|| async { "ok" }))
        .route("/_kumo/events/stats", get(lambda::async_event_stats))
        .route("/_kumo/metrics", get(lambda::metrics))
        .route("/_kumo/cost", get(costs::report))
        .route("/_kumo/stats", get(costs::stats))
        .route("/_kumo/cost/invocations/{id}", get(costs::invocation))
        .route("/_kumo/budgets", post(costs::put_budget).get(costs::list_budgets))
        .route("/_kumo/budgets/{name}", get(costs::get_budget).delete(costs::delete_budget))
        .route("/_kumo/events", get(event_config::list_events))
        .route("/_kumo/events/redrive", post(event_config::redrive_events))
        .route("/_kumo/iam/explain", post(explain::explain))
        .route("/_kumo/schedules", get(events::list_schedules))
        .route("/", post(query::dispatch).get(query::dispatch))
        .route_layer(middleware::from_fn_with_state(security.authorizer, authorize::authorize))
        .fallback(lambda::unknown_operation)
        .layer(middleware::from_fn_with_state(security.authenticator, auth::authenticate))
        .layer(middleware::from_fn(request_id))
        .layer(middleware::from_fn_with_state(s3.map(|s| s.service), route_s3))
        // The dashboard signs browsers in with cookies, not SigV4: it decides
        // its own access (with the same authorizer) before the S3 and API layers.
        .layer(middleware::from_fn_with_state(dashboard, crate::dashboard::route))
        // Outermost: a function URL's `*.localhost` host is not an S3 bucket, and
        // its callers are not the API's (URLs decide their own access).
        .layer(middleware::from_fn_with_state(urls, url_invoke::route))
        .with_state(state)
}

/// Hands S3 requests (by signature scope, host or path) to the object store;
/// everything else goes on to the Lambda, IAM, STS and Logs routes.
async fn route_s3(
    axum::extract::State(s3): axum::extract::State<Option<s3s::service::S3Service>>,
    req: Request,
    next: Next,
) -> Response {
    match s3 {
        Some(service) if crate::objects::is_s3_request(&req) => crate::objects::serve(&service, req).await,
        _ => next.run(req).await,
    }
}

/// Every response carries `x-amzn-RequestId`, as AWS's do.
async fn request_id(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    if !resp.headers().contains_key("x-amzn-requestid")
        && let Ok(v) = HeaderValue::from_str(&uuid::Uuid::new_v4().to_string())
    {
        resp.headers_mut().insert("x-amzn-requestid", v);
    }
    resp
}
