//! Authorisation: every routed request is an IAM action on a resource, decided
//! by [`kumo_core::policy`] over the caller's identity-based policies.
//!
//! The action and resource of each route are named here, in one table, so a
//! handler never forgets its check and a new route without an entry is refused
//! to everyone but the account root.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use kumo_core::names::FunctionRef;
use kumo_core::policy::{self, NamedPolicy, PolicyKind, Request as PolicyRequest};

use super::auth::{JsonService, Protocol, SignedBody, error_response, form_value};
use super::query::form_decode;
use crate::iam::service::principal_of;
use crate::iam::{IamDirectory, Identity};

/// Where the resource-based policy of a resource is found (a function's, for now).
pub trait ResourcePolicies: Send + Sync {
    fn resource_policy(&self, resource_arn: &str) -> Option<String>;
}

impl ResourcePolicies for crate::engine::Engine {
    fn resource_policy(&self, resource_arn: &str) -> Option<String> {
        if resource_arn.starts_with("arn:aws:lambda:") { self.resource_policy_of(resource_arn) } else { None }
    }
}

/// No resource has a policy (tests and benchmarks).
pub struct NoResourcePolicies;

impl ResourcePolicies for NoResourcePolicies {
    fn resource_policy(&self, _: &str) -> Option<String> {
        None
    }
}

pub struct Authorizer {
    account: String,
    region: String,
    directory: Arc<dyn IamDirectory>,
    resources: Arc<dyn ResourcePolicies>,
    /// Parsed documents by their text: policies change rarely, requests often.
    parsed: Mutex<HashMap<String, Arc<policy::Policy>>>,
}

/// What a request asks to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ask {
    pub action: String,
    pub resource: String,
}

impl Authorizer {
    pub fn new(
        account: &str,
        region: &str,
        directory: Arc<dyn IamDirectory>,
        resources: Arc<dyn ResourcePolicies>,
    ) -> Authorizer {
        Authorizer {
            account: account.to_string(),
            region: region.to_string(),
            directory,
            resources,
            parsed: Mutex::new(HashMap::new()),
        }
    }

    fn function_arn(&self, raw: &str, qualifier: Option<&str>) -> String {
        // The policy sees the function as Lambda resolves it: a name, partial ARN
        // or full ARN all become the full ARN, with the qualifier if any.
        let (name, q) = match FunctionRef::parse(raw) {
            Ok(r) => (r.name, r.qualifier.map(|q| q.to_string()).or(qualifier.map(str::to_string))),
            Err(_) => (raw.to_string(), qualifier.map(str::to_string)),
        };
        let base = format!("arn:aws:lambda:{}:{}:function:{name}", self.region, self.account);
        match q {
            Some(q) => format!("{base}:{q}"),
            None => base,
        }
    }

    /// The action and resource of a Lambda (or Kumo) route.
    fn lambda_ask(&self, method: &Method, route: &str, name: Option<&str>, query: &str, body: &[u8]) -> Option<Ask> {
        let qualifier = form_value(query, "Qualifier").map(form_decode);
        let qualifier = qualifier.as_deref();
        let function = |q: Option<&str>| name.map(|n| self.function_arn(&form_decode(n), q));
        let ask = |action: &str, resource: Option<String>| {
            Some(Ask { action: action.to_string(), resource: resource.unwrap_or_else(|| "*".to_string()) })
        };
        let m = method.as_str();
        match (m, route) {
            ("POST", "/2015-03-31/functions" | "/2015-03-31/functions/") => {
                let body: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
                let name = body["FunctionName"].as_str().map(|n| self.function_arn(n, None));
                ask("lambda:CreateFunction", name)
            }
            ("GET", "/2015-03-31/functions" | "/2015-03-31/functions/") => ask("lambda:ListFunctions", None),
            ("GET", "/2015-03-31/functions/{name}") => ask("lambda:GetFunction", function(qualifier)),
            ("DELETE", "/2015-03-31/functions/{name}") => ask("lambda:DeleteFunction", function(qualifier)),
            ("GET", "/2015-03-31/functions/{name}/configuration") => {
                ask("lambda:GetFunctionConfiguration", function(qualifier))
            }
            ("PUT", "/2015-03-31/functions/{name}/configuration") => {
                ask("lambda:UpdateFunctionConfiguration", function(None))
            }
            ("PUT", "/2015-03-31/functions/{name}/code") => ask("lambda:UpdateFunctionCode", function(None)),
            ("POST", "/2015-03-31/functions/{name}/versions") => ask("lambda:PublishVersion", function(None)),
            ("GET", "/2015-03-31/functions/{name}/versions") => ask("lambda:ListVersionsByFunction", function(None)),
            ("POST", "/2015-03-31/functions/{name}/aliases") => ask("lambda:CreateAlias", function(None)),
            ("GET", "/2015-03-31/functions/{name}/aliases") => ask("lambda:ListAliases", function(None)),
            ("GET", "/2015-03-31/functions/{name}/aliases/{alias}") => ask("lambda:GetAlias", function(None)),
            ("PUT", "/2015-03-31/functions/{name}/aliases/{alias}") => ask("lambda:UpdateAlias", function(None)),
            ("DELETE", "/2015-03-31/functions/{name}/aliases/{alias}") => ask("lambda:DeleteAlias", function(None)),
            ("POST", "/2015-03-31/functions/{name}/invocations")
            | ("POST", "/2021-11-15/functions/{name}/response-streaming-invocations") => {
                ask("lambda:InvokeFunction", function(qualifier))
            }
            ("POST", "/2015-03-31/functions/{name}/policy") => ask("lambda:AddPermission", function(qualifier)),
            ("GET", "/2015-03-31/functions/{name}/policy") => ask("lambda:GetPolicy", function(qualifier)),
            ("DELETE", "/2015-03-31/functions/{name}/policy/{sid}") => {
                ask("lambda:RemovePermission", function(qualifier))
            }
            ("PUT", "/2017-10-31/functions/{name}/concurrency") => ask("lambda:PutFunctionConcurrency", function(None)),
            ("DELETE", "/2017-10-31/functions/{name}/concurrency") => {
                ask("lambda:DeleteFunctionConcurrency", function(None))
            }
            ("GET", "/2019-09-30/functions/{name}/concurrency") => ask("lambda:GetFunctionConcurrency", function(None)),
            ("PUT", "/2019-09-25/functions/{name}/event-invoke-config") => {
                ask("lambda:PutFunctionEventInvokeConfig", function(qualifier))
            }
            ("POST", "/2019-09-25/functions/{name}/event-invoke-config") => {
                ask("lambda:UpdateFunctionEventInvokeConfig", function(qualifier))
            }
            ("GET", "/2019-09-25/functions/{name}/event-invoke-config") => {
                ask("lambda:GetFunctionEventInvokeConfig", function(qualifier))
            }
            ("DELETE", "/2019-09-25/functions/{name}/event-invoke-config") => {
                ask("lambda:DeleteFunctionEventInvokeConfig", function(qualifier))
            }
            ("GET", "/2019-09-25/functions/{name}/event-invoke-config/list") => {
                ask("lambda:ListFunctionEventInvokeConfigs", function(None))
            }
            ("GET", "/2024-08-31/functions/{name}/recursion-config") => {
                ask("lambda:GetFunctionRecursionConfig", function(None))
            }
            ("PUT", "/2024-08-31/functions/{name}/recursion-config") => {
                ask("lambda:PutFunctionRecursionConfig", function(None))
            }
            ("POST", "/2021-10-31/functions/{name}/url") => ask("lambda:CreateFunctionUrlConfig", function(qualifier)),
            ("GET", "/2021-10-31/functions/{name}/url") => ask("lambda:GetFunctionUrlConfig", function(qualifier)),
            ("PUT", "/2021-10-31/functions/{name}/url") => ask("lambda:UpdateFunctionUrlConfig", function(qualifier)),
            ("DELETE", "/2021-10-31/functions/{name}/url") => {
                ask("lambda:DeleteFunctionUrlConfig", function(qualifier))
            }
            ("GET", "/2021-10-31/functions/{name}/urls") => ask("lambda:ListFunctionUrlConfigs", function(None)),
            ("GET", "/2017-03-31/tags/{name}") => ask("lambda:ListTags", function(None)),
            ("POST", "/2017-03-31/tags/{name}") => ask("lambda:TagResource", function(None)),
            ("DELETE", "/2017-03-31/tags/{name}") => ask("lambda:UntagResource", function(None)),
            ("GET", "/2020-06-30/functions/{name}/code-signing-config") => {
                ask("lambda:GetFunctionCodeSigningConfig", function(None))
            }
            ("GET", "/2016-08-19/account-settings" | "/2016-08-19/account-settings/") => {
                ask("lambda:GetAccountSettings", None)
            }
            // Kumo's own operations, named in a `kumo:` namespace of their own.
            ("GET", "/_kumo/events" | "/_kumo/events/stats") => ask("kumo:ListEvents", None),
            ("POST", "/_kumo/events/redrive") => ask("kumo:RedriveEvents", None),
            ("GET", "/_kumo/metrics") => ask("kumo:GetMetrics", None),
            // `kumo schedule ls` reads what ListRules would, plus next fire times.
            ("GET", "/_kumo/schedules") => ask("events:ListRules", None),
            ("GET", "/_kumo/cost" | "/_kumo/cost/invocations/{id}" | "/_kumo/stats") => ask("kumo:GetCost", None),
            ("POST", "/_kumo/budgets") => ask("kumo:PutBudget", None),
            ("GET", "/_kumo/budgets" | "/_kumo/budgets/{name}") => ask("kumo:ListBudgets", None),
            ("DELETE", "/_kumo/budgets/{name}") => ask("kumo:DeleteBudget", None),
            // Explaining a decision reveals a principal's policies: IAM's simulator permission.
            ("POST", "/_kumo/iam/explain") => {
                let body: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
                ask("iam:SimulatePrincipalPolicy", body["Principal"].as_str().map(str::to_string))
            }
            _ => None,
        }
    }

    /// The action and resource of a CloudWatch Logs call.
    fn logs_ask(&self, target: &str, body: &[u8]) -> Ask {
        let operation = target.rsplit('.').next().unwrap_or(target);
        let body: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
        let resource = match (body["logGroupName"].as_str(), body["logStreamName"].as_str()) {
            (Some(group), Some(stream)) => {
                format!("arn:aws:logs:{}:{}:log-group:{group}:log-stream:{stream}", self.region, self.account)
            }
            (Some(group), None) => format!("arn:aws:logs:{}:{}:log-group:{group}:*", self.region, self.account),
            // The tagging operations name the group by ARN.
            _ => body["resourceArn"].as_str().map_or_else(|| "*".to_string(), str::to_string),
        };
        Ask { action: format!("logs:{operation}"), resource }
    }

    /// The action and resource of an EventBridge call: the rule it names
    /// (`Name`, `Rule`, or a tagged `ResourceARN`), else every resource.
    fn events_ask(&self, target: &str, body: &[u8]) -> Ask {
        let operation = target.rsplit('.').next().unwrap_or(target);
        let body: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
        let rule = |name: &str| kumo_core::schedule::rule_arn(&self.region, &self.account, name);
        let resource = match operation {
            "ListRules" => None,
            "ListTagsForResource" | "TagResource" | "UntagResource" => body["ResourceARN"].as_str().map(str::to_string),
            "PutTargets" | "RemoveTargets" | "ListTargetsByRule" => body["Rule"].as_str().map(rule),
            _ => body["Name"].as_str().map(rule),
        };
        Ask { action: format!("events:{operation}"), resource: resource.unwrap_or_else(|| "*".to_string()) }
    }

    /// The action and resource of an IAM or STS call. `None`: every caller may
    /// make it (GetCallerIdentity needs no permission, as on AWS).
    fn query_ask(&self, service: super::auth::QueryService, form: &str) -> Option<Ask> {
        let action = form_decode(form_value(form, "Action").unwrap_or(""));
        if service == super::auth::QueryService::Sts {
            return match action.as_str() {
                "GetCallerIdentity" => None,
                // AssumeRole is decided by the role's trust policy, in the STS handler.
                "AssumeRole" => None,
                other => Some(Ask { action: format!("sts:{other}"), resource: "*".to_string() }),
            };
        }
        let param = |k: &str| form_value(form, k).map(form_decode);
        let iam = |kind: &str, name: String| format!("arn:aws:iam::{}:{kind}/{name}", self.account);
        let resource = if let Some(arn) = param("PolicyArn") {
            arn
        } else if let Some(role) = param("RoleName") {
            iam("role", role)
        } else if let Some(user) = param("UserName") {
            iam("user", user)
        } else if let Some(policy) = param("PolicyName").filter(|_| action == "CreatePolicy") {
            iam("policy", policy)
        } else {
            "*".to_string()
        };
        Some(Ask { action: format!("iam:{action}"), resource })
    }

    fn parsed(&self, document: &str, kind: PolicyKind) -> Option<Arc<policy::Policy>> {
        let mut cache = self.parsed.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = cache.get(document) {
            return Some(p.clone());
        }
        let parsed = Arc::new(policy::Policy::parse(document, kind).ok()?);
        if cache.len() > 1024 {
            cache.clear();
        }
        cache.insert(document.to_string(), parsed.clone());
        Some(parsed)
    }

    /// The policy engine's request for `identity` asking `ask`.
    pub fn policy_request(&self, identity: &Identity, ask: &Ask, now_ms: i64) -> PolicyRequest {
        PolicyRequest::new(principal_of(identity), &ask.action, &ask.resource, now_ms)
            .with_resource_account(&self.account)
    }

    /// Decides `ask` for `identity` over its identity-based policies and the
    /// resource's own policy (either may allow; any explicit deny wins).
    pub fn decide(&self, identity: &Identity, ask: &Ask, now_ms: i64) -> policy::Decision {
        self.decide_with_context(identity, ask, &[], now_ms)
    }

    /// [`Authorizer::decide`] with condition keys of the request (`aws:SourceIp`, ...).
    pub fn decide_with_context(
        &self,
        identity: &Identity,
        ask: &Ask,
        context: &[(String, Vec<String>)],
        now_ms: i64,
    ) -> policy::Decision {
        let policies: Vec<NamedPolicy> = if identity.is_root() {
            Vec::new()
        } else {
            self.directory
                .identity_policies(identity)
                .into_iter()
                .filter_map(|(label, doc)| {
                    self.parsed(&doc, PolicyKind::Identity).map(|p| NamedPolicy::new(label, (*p).clone()))
                })
                .collect()
        };
        let resource = self.resource_policies(ask);
        let mut request = self.policy_request(identity, ask, now_ms);
        for (key, values) in context {
            request.set_context(key, values.iter().cloned());
        }
        policy::evaluate(&request, &policies, &resource)
    }
}

impl Authorizer {
    /// The resource's own policy, if it has one.
    fn resource_policies(&self, ask: &Ask) -> Vec<NamedPolicy> {
        self.resources
            .resource_policy(&ask.resource)
            .and_then(|doc| self.parsed(&doc, PolicyKind::Resource))
            .map(|p| NamedPolicy::new(format!("resource-based policy of {}", ask.resource), (*p).clone()))
            .into_iter()
            .collect()
    }

    /// Decides `ask` for an AWS service acting on its own (S3 invoking a
    /// function for a bucket notification): only the resource's own policy can allow it.
    pub fn decide_for_service(
        &self,
        service: &str,
        ask: &Ask,
        context: &[(String, Vec<String>)],
        now_ms: i64,
    ) -> policy::Decision {
        self.decide_by_resource(policy::Principal::service(service), ask, context, now_ms)
    }

    /// Decides `ask` for an anonymous caller (a function URL with auth `NONE`):
    /// only a resource policy naming `*` can allow it.
    pub fn decide_anonymous(&self, ask: &Ask, context: &[(String, Vec<String>)], now_ms: i64) -> policy::Decision {
        self.decide_by_resource(policy::Principal::anonymous(), ask, context, now_ms)
    }

    fn decide_by_resource(
        &self,
        principal: policy::Principal,
        ask: &Ask,
        context: &[(String, Vec<String>)],
        now_ms: i64,
    ) -> policy::Decision {
        let resource = self.resource_policies(ask);
        let mut request =
            PolicyRequest::new(principal, &ask.action, &ask.resource, now_ms).with_resource_account(&self.account);
        for (key, values) in context {
            request.set_context(key, values.iter().cloned());
        }
        policy::evaluate(&request, &[], &resource)
    }
}

pub async fn authorize(State(authz): State<Arc<Authorizer>>, req: Request, next: Next) -> Response {
    let Some(identity) = req.extensions().get::<Identity>().cloned() else {
        // Only the open routes skip authentication, and they are not authorised either.
        return next.run(req).await;
    };
    if identity.is_root() {
        return next.run(req).await;
    }
    let protocol = req.extensions().get::<Protocol>().copied().unwrap_or(Protocol::RestJson);
    let body = req.extensions().get::<SignedBody>().map(|b| b.0.clone()).unwrap_or_default();
    let query = req.uri().query().unwrap_or("");
    let ask = match protocol {
        Protocol::Json11(service) => {
            let target = req.headers().get("x-amz-target").and_then(|v| v.to_str().ok()).unwrap_or("");
            match service {
                JsonService::Logs => Some(authz.logs_ask(target, &body)),
                JsonService::Events => Some(authz.events_ask(target, &body)),
            }
        }
        Protocol::Query(service) => {
            let form = if req.method() == Method::GET {
                query.to_string()
            } else {
                String::from_utf8_lossy(&body).into_owned()
            };
            match authz.query_ask(service, &form) {
                Some(ask) => Some(ask),
                None => return next.run(req).await,
            }
        }
        Protocol::RestJson => {
            let route = req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_string()).unwrap_or_default();
            let name = function_name_in_path(req.uri().path(), &route);
            authz.lambda_ask(req.method(), &route, name.as_deref(), query, &body)
        }
    };
    let Some(ask) = ask else {
        // A route without an entry in the table: only the root may use it.
        let message =
            format!("User: {} is not authorized to perform this operation: it has no IAM action yet", identity.arn);
        return error_response(protocol, 403, access_denied_code(protocol), &message);
    };
    // The request's own condition keys: where it came from, and that it is plain HTTP.
    let mut context = vec![("aws:SecureTransport".to_string(), vec!["false".to_string()])];
    if let Some(peer) = req.extensions().get::<axum::extract::ConnectInfo<std::net::SocketAddr>>() {
        context.push(("aws:SourceIp".to_string(), vec![peer.0.ip().to_string()]));
    }
    let decision = authz.decide_with_context(&identity, &ask, &context, crate::engine::now_ms());
    if decision.is_allowed() {
        return next.run(req).await;
    }
    let message = decision.denial_message(&identity.arn, &ask.action, &ask.resource).unwrap_or_default();
    tracing::info!(principal = %identity.arn, action = %ask.action, resource = %ask.resource, "access denied");
    tracing::debug!(explanation = %decision.explain(), "why access was denied");
    error_response(protocol, 403, access_denied_code(protocol), &message)
}

fn access_denied_code(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::Query(_) => "AccessDenied",
        _ => "AccessDeniedException",
    }
}

/// The raw `{name}` segment of a routed path (the 4th segment of every
/// function route), still percent-encoded.
fn function_name_in_path(path: &str, route: &str) -> Option<String> {
    let index = route.split('/').position(|s| s == "{name}")?;
    path.split('/').nth(index).map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_function_segment_is_found_by_the_route() {
        let route = "/2015-03-31/functions/{name}/invocations";
        assert_eq!(function_name_in_path("/2015-03-31/functions/f%3A1/invocations", route).as_deref(), Some("f%3A1"));
        assert_eq!(function_name_in_path("/2016-08-19/account-settings", "/2016-08-19/account-settings"), None);
    }
}
