//! IAM policy evaluation against a table of cases drawn from AWS's
//! documentation (`fixtures/policy/cases.json`), plus properties that must hold
//! for any input.

use kumo_core::policy::{
    Decision, Effect, NamedPolicy, Policy, PolicyKind, PolicySource, Principal, Request, Verdict, action_matches,
    evaluate, may_assume, resource_matches,
};
use proptest::prelude::*;
use serde_json::Value;

const CASES: &str = include_str!("fixtures/policy/cases.json");

fn kind_of(s: &str) -> PolicyKind {
    match s {
        "identity" => PolicyKind::Identity,
        "resource" => PolicyKind::Resource,
        "trust" => PolicyKind::Trust,
        other => panic!("unknown policy kind {other}"),
    }
}

fn named(v: &Value, kind: PolicyKind) -> Result<NamedPolicy, String> {
    let label = v["label"].as_str().ok_or("policy without label")?;
    let json = serde_json::to_string(&v["policy"]).map_err(|e| e.to_string())?;
    NamedPolicy::parse(label, &json, kind).map_err(|e| format!("policy {label} refused: {e} ({})", e.detail()))
}

fn policies(case: &Value, field: &str, kind: PolicyKind) -> Result<Vec<NamedPolicy>, String> {
    match case.get(field) {
        None => Ok(Vec::new()),
        Some(list) => list.as_array().ok_or("policies must be a list")?.iter().map(|p| named(p, kind)).collect(),
    }
}

fn principal(r: &Value) -> Result<Principal, String> {
    let p = match &r["principal"] {
        Value::String(s) if s == "anonymous" => Principal::anonymous(),
        Value::String(arn) => Principal::from_arn(arn).ok_or_else(|| format!("bad principal ARN {arn}"))?,
        Value::Object(o) => match o.get("service").and_then(Value::as_str) {
            Some(name) => Principal::service(name),
            None => return Err(format!("bad principal {o:?}")),
        },
        other => return Err(format!("bad principal {other}")),
    };
    let p = match r.get("role_arn").and_then(Value::as_str) {
        Some(role) => p.with_role_arn(role),
        None => p,
    };
    Ok(match r.get("user_id").and_then(Value::as_str) {
        Some(id) => p.with_user_id(id),
        None => p,
    })
}

fn request(r: &Value) -> Result<Request, String> {
    let mut req = Request::new(
        principal(r)?,
        r["action"].as_str().ok_or("request without action")?,
        r["resource"].as_str().ok_or("request without resource")?,
        r["now"].as_i64().ok_or("request without now")?,
    );
    if let Some(account) = r.get("resource_account").and_then(Value::as_str) {
        req = req.with_resource_account(account);
    }
    if let Some(ctx) = r.get("context").and_then(Value::as_object) {
        for (key, values) in ctx {
            let values: Vec<String> = match values {
                Value::String(s) => vec![s.clone()],
                Value::Array(items) => items.iter().filter_map(|i| i.as_str().map(str::to_string)).collect(),
                other => return Err(format!("bad context value {other}")),
            };
            req.set_context(key, values);
        }
    }
    Ok(req)
}

fn verdict_text(v: Verdict) -> String {
    match v {
        Verdict::Allow => "Allow".to_string(),
        Verdict::ExplicitDeny(s) => format!("ExplicitDeny:{s}"),
        Verdict::ImplicitDeny(s) => format!("ImplicitDeny:{s}"),
    }
}

fn decided_by(d: &Decision) -> Vec<(String, String)> {
    d.decided_by
        .iter()
        .filter_map(|r| d.statement(*r))
        .map(|(p, s)| (p.label.clone(), s.sid.clone().unwrap_or_default()))
        .collect()
}

fn run_case(case: &Value) -> Result<(), String> {
    let req = request(&case["request"])?;
    let decision = match case.get("trust") {
        Some(t) => may_assume(&named(t, PolicyKind::Trust)?, &req),
        None => evaluate(
            &req,
            &policies(case, "identity", PolicyKind::Identity)?,
            &policies(case, "resource", PolicyKind::Resource)?,
        ),
    };
    let got = verdict_text(decision.verdict);
    let want = case["expect"].as_str().ok_or("case without expect")?;
    if got != want {
        return Err(format!("expected {want}, got {got}\n{}", decision.explain()));
    }
    if let Some(message) = case.get("message").and_then(Value::as_str) {
        let got = decision.denial_message(&req.principal.arn, &req.action, &req.resource);
        if got.as_deref() != Some(message) {
            return Err(format!("message\n  expected {message}\n  got      {got:?}"));
        }
    }
    if let Some(list) = case.get("decided_by").and_then(Value::as_array) {
        let want: Vec<(String, String)> = list
            .iter()
            .filter_map(|pair| Some((pair.get(0)?.as_str()?.to_string(), pair.get(1)?.as_str()?.to_string())))
            .collect();
        let got = decided_by(&decision);
        if got != want {
            return Err(format!("decided_by: expected {want:?}, got {got:?}"));
        }
    }
    // The explanation must cover every statement of every policy.
    let statements: usize = decision.policies.iter().map(|p| p.statements.len()).sum();
    let explained = decision.explain().lines().filter(|l| l.starts_with("  statement ")).count();
    if explained != statements {
        return Err(format!("explain() lists {explained} statements of {statements}"));
    }
    Ok(())
}

#[test]
fn documented_cases() {
    let table: Value = serde_json::from_str(CASES).expect("cases.json is JSON");
    let cases = table["cases"].as_array().expect("cases");
    assert!(cases.len() >= 40, "only {} cases", cases.len());
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|c| run_case(c).err().map(|e| format!("{} [{}]: {e}", c["name"], c["source"])))
        .collect();
    assert!(failures.is_empty(), "{} of {} cases failed:\n\n{}", failures.len(), cases.len(), failures.join("\n\n"));
}

#[test]
fn malformed_documents() {
    let table: Value = serde_json::from_str(CASES).expect("cases.json is JSON");
    let cases = table["malformed"].as_array().expect("malformed");
    assert!(!cases.is_empty());
    let mut failures = Vec::new();
    for c in cases {
        let doc = match &c["document"] {
            Value::String(raw) => raw.clone(),
            other => other.to_string(),
        };
        let kind = kind_of(c["kind"].as_str().expect("kind"));
        let want = c["error"].as_str().expect("error");
        match Policy::parse(&doc, kind) {
            Ok(_) => failures.push(format!("{}: accepted, expected {want:?}", c["name"])),
            Err(e) if e.to_string() != want => {
                failures.push(format!("{}: got {:?}, expected {want:?}", c["name"], e.to_string()))
            }
            Err(_) => {}
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A plain recursive glob (`*` any run, `?` one char) to check the matcher against.
fn reference_glob(p: &[char], t: &[char]) -> bool {
    match p.split_first() {
        None => t.is_empty(),
        Some(('*', rest)) => (0..=t.len()).any(|i| reference_glob(rest, &t[i..])),
        Some(('?', rest)) => !t.is_empty() && reference_glob(rest, &t[1..]),
        Some((c, rest)) => t.first() == Some(c) && reference_glob(rest, &t[1..]),
    }
}

fn json_ish() -> impl Strategy<Value = Value> {
    let keys = prop::sample::select(vec![
        "Version",
        "Id",
        "Statement",
        "Sid",
        "Effect",
        "Action",
        "NotAction",
        "Resource",
        "NotResource",
        "Principal",
        "NotPrincipal",
        "Condition",
        "AWS",
        "Service",
        "Federated",
        "StringEquals",
        "StringNotEquals",
        "ForAllValues:StringLike",
        "ForAnyValue:StringEqualsIfExists",
        "NumericLessThan",
        "DateGreaterThan",
        "IpAddress",
        "Bool",
        "Null",
        "ArnLike",
        "aws:SourceIp",
        "aws:username",
        "aws:TagKeys",
        "Foo",
    ]);
    let leaf = prop_oneof![
        prop::sample::select(vec![
            "Allow",
            "Deny",
            "allow",
            "*",
            "s3:*",
            "lambda:Get*",
            "2012-10-17",
            "2008-10-17",
            "arn:aws:s3:::b/*",
            "arn:aws:lambda:*:111122223333:function:f:*",
            "${aws:username}",
            "${",
            "${*}",
            "true",
            "10.0.0.0/8",
            "2024-01-01T00:00:00Z",
            "111122223333",
            "arn:aws:iam::111122223333:root",
            "lambda.amazonaws.com",
            "",
        ])
        .prop_map(|s| Value::String(s.to_string())),
        any::<i64>().prop_map(Value::from),
        any::<bool>().prop_map(Value::Bool),
        Just(Value::Null),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(5, 48, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(keys.clone().prop_map(str::to_string), inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Documents of `kind` that are mostly well-formed, so that evaluation
/// (conditions, variables, principals) is reached, with a few invalid pieces.
fn policy_ish(kind: PolicyKind) -> impl Strategy<Value = Value> {
    fn pick(items: &'static [&'static str]) -> impl Strategy<Value = Value> + Clone {
        prop::sample::select(items.to_vec()).prop_map(Value::from)
    }
    /// Mostly `good`, sometimes `bad`; one value or a list.
    fn mostly(good: &'static [&'static str], bad: &'static [&'static str]) -> impl Strategy<Value = Value> + Clone {
        let one = prop_oneof![12 => pick(good), 1 => pick(bad)];
        prop_oneof![one.clone(), prop::collection::vec(one, 1..3).prop_map(Value::Array)]
    }
    fn text(items: &'static [&'static str]) -> impl Strategy<Value = String> + Clone {
        prop::sample::select(items.to_vec()).prop_map(str::to_string)
    }
    const ACTIONS: &[&str] =
        &["*", "s3:*", "s3:Get*", "s3:GetObject", "lambda:InvokeFunction", "sts:AssumeRole", "iam:?ass*"];
    const BAD_ACTIONS: &[&str] = &["GetObject", "a:b:c", "s 3:x"];
    const RESOURCES: &[&str] = &[
        "*",
        "arn:aws:s3:::b/*",
        "arn:aws:s3:::b/${aws:username}/*",
        "arn:aws:s3:::${aws:PrincipalTag/x, 'd'}/*",
        "arn:aws:lambda:*:111122223333:function:f:*",
        "arn:aws:s3:::${oops",
        "arn:aws:s3:::b/k",
    ];
    const BAD_RESOURCES: &[&str] = &["bucket", "arn:aws:s?:::x"];
    const OPERATORS: &[&str] = &[
        "StringEquals",
        "StringNotEquals",
        "StringLike",
        "StringNotLikeIfExists",
        "StringEqualsIgnoreCase",
        "ForAllValues:StringLike",
        "ForAnyValue:StringNotEquals",
        "ForAnyValue:StringEquals",
        "NumericLessThan",
        "NumericNotEqualsIfExists",
        "DateGreaterThan",
        "DateLessThanEquals",
        "Bool",
        "BoolIfExists",
        "BinaryEquals",
        "IpAddress",
        "NotIpAddress",
        "ArnLike",
        "ArnNotEquals",
        "Null",
    ];
    const KEYS: &[&str] = &[
        "aws:SourceIp",
        "aws:TagKeys",
        "aws:username",
        "aws:CurrentTime",
        "aws:EpochTime",
        "aws:PrincipalArn",
        "s3:max-keys",
        "aws:PrincipalTag/x",
    ];
    const VALUES: &[&str] = &[
        "10.0.0.0/8",
        "2001:db8::/32",
        "a",
        "b",
        "blue",
        "*",
        "${aws:username}",
        "${aws:nothing}",
        "${*}",
        "2024-01-01T00:00:00Z",
        "1704067200",
        "10",
        "-1.5",
        "true",
        "false",
        "arn:aws:iam::111122223333:user/*",
        "",
    ];
    const PRINCIPALS: &[&str] =
        &["*", "111122223333", "arn:aws:iam::111122223333:user/alice", "arn:aws:sts::111122223333:assumed-role/r/s"];
    const BAD_PRINCIPALS: &[&str] = &["arn:aws:iam::*:root", "x"];

    let condition = prop::collection::btree_map(
        prop_oneof![20 => text(OPERATORS), 1 => text(&["StringEqualz", "NullIfExists"])],
        prop::collection::btree_map(text(KEYS), mostly(VALUES, &["nokey-value"]), 1..3)
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        1..3,
    )
    .prop_map(|m| Value::Object(m.into_iter().collect()));
    let principal = prop_oneof![
        Just(Value::from("*")),
        mostly(PRINCIPALS, BAD_PRINCIPALS).prop_map(|v| serde_json::json!({ "AWS": v })),
        Just(serde_json::json!({ "Service": "lambda.amazonaws.com" })),
    ];
    let statement = (
        prop_oneof![10 => pick(&["Allow", "Deny"]), 1 => pick(&["allow"])],
        prop::bool::weighted(0.2),
        mostly(ACTIONS, BAD_ACTIONS),
        (prop::bool::weighted(0.2), mostly(RESOURCES, BAD_RESOURCES)),
        principal,
        prop::option::weighted(0.8, condition),
    )
        .prop_map(move |(effect, not_action, actions, (not_resource, resources), principal, condition)| {
            let deny = effect == "Deny";
            let mut st = serde_json::Map::new();
            st.insert("Effect".into(), effect);
            st.insert(if not_action { "NotAction" } else { "Action" }.into(), actions);
            if kind != PolicyKind::Trust {
                st.insert(if not_resource { "NotResource" } else { "Resource" }.into(), resources);
            }
            if kind != PolicyKind::Identity {
                let negated = deny && not_resource && kind == PolicyKind::Resource;
                st.insert(if negated { "NotPrincipal" } else { "Principal" }.into(), principal);
            }
            if let Some(c) = condition {
                st.insert("Condition".into(), c);
            }
            Value::Object(st)
        });
    (pick(&["2012-10-17", "2012-10-17", "2008-10-17"]), prop::collection::vec(statement, 1..4))
        .prop_map(|(version, statements)| serde_json::json!({ "Version": version, "Statement": statements }))
}

fn any_kind() -> impl Strategy<Value = PolicyKind> {
    prop::sample::select(vec![PolicyKind::Identity, PolicyKind::Resource, PolicyKind::Trust])
}

fn sample_request() -> Request {
    Request::new(
        Principal::from_arn("arn:aws:iam::111122223333:user/alice").expect("principal"),
        "s3:GetObject",
        "arn:aws:s3:::b/k",
        1_704_067_200_000,
    )
    .with_context("aws:SourceIp", ["10.1.2.3"])
    .with_context("aws:TagKeys", ["a", "b"])
}

const ACTIONS: [&str; 6] =
    ["s3:GetObject", "s3:PutObject", "lambda:InvokeFunction", "lambda:GetFunction", "iam:PassRole", "sts:AssumeRole"];
const ACTION_PATTERNS: [&str; 8] =
    ["*", "s3:*", "s3:Get*", "lambda:*", "lambda:InvokeFunction", "iam:*", "*:Get*", "sts:AssumeRol?"];
const RESOURCES: [&str; 4] = [
    "arn:aws:s3:::b/k",
    "arn:aws:lambda:us-east-1:111122223333:function:f",
    "arn:aws:lambda:us-east-1:111122223333:function:f:1",
    "arn:aws:iam::111122223333:role/r",
];
const RESOURCE_PATTERNS: [&str; 7] = [
    "*",
    "arn:aws:s3:::b/*",
    "arn:aws:lambda:*:111122223333:function:f",
    "arn:aws:lambda:us-east-1:111122223333:function:f:*",
    "arn:aws:lambda:us-east-1:111122223333:function:f*",
    "arn:aws:iam::*:role/*",
    "arn:aws:s3:::other",
];

#[derive(Debug, Clone)]
struct GenStatement {
    deny: bool,
    actions: Vec<usize>,
    resources: Vec<usize>,
    not_resource: bool,
}

fn gen_statement() -> impl Strategy<Value = GenStatement> {
    (
        any::<bool>(),
        prop::collection::vec(0..ACTION_PATTERNS.len(), 1..3),
        prop::collection::vec(0..RESOURCE_PATTERNS.len(), 1..3),
        prop::bool::weighted(0.2),
    )
        .prop_map(|(deny, actions, resources, not_resource)| GenStatement {
            deny,
            actions,
            resources,
            not_resource,
        })
}

fn statement_json(s: &GenStatement, with_principal: bool) -> Value {
    let mut st = serde_json::Map::new();
    st.insert("Effect".into(), Value::from(if s.deny { "Deny" } else { "Allow" }));
    st.insert("Action".into(), Value::from(s.actions.iter().map(|i| ACTION_PATTERNS[*i]).collect::<Vec<_>>()));
    let key = if s.not_resource { "NotResource" } else { "Resource" };
    st.insert(key.into(), Value::from(s.resources.iter().map(|i| RESOURCE_PATTERNS[*i]).collect::<Vec<_>>()));
    if with_principal {
        st.insert("Principal".into(), Value::from("*"));
    }
    Value::Object(st)
}

/// The statements as one policy; none at all means no policy (IAM refuses an empty `Statement`).
fn policy_of(statements: &[GenStatement], kind: PolicyKind) -> Vec<NamedPolicy> {
    if statements.is_empty() {
        return Vec::new();
    }
    let with_principal = kind != PolicyKind::Identity;
    let doc = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": statements.iter().map(|s| statement_json(s, with_principal)).collect::<Vec<_>>(),
    });
    vec![NamedPolicy::parse("generated", &doc.to_string(), kind).expect("generated policies are valid")]
}

proptest! {
    // Failures are reported in the test output; no regression file beside the sources.
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn parse_never_panics_on_arbitrary_text(text in ".{0,200}", kind in any_kind()) {
        let _ = Policy::parse(&text, kind);
    }

    #[test]
    fn parse_and_evaluate_never_panic_on_json_ish_documents(doc in json_ish(), kind in any_kind()) {
        if let Ok(policy) = Policy::parse(&doc.to_string(), kind) {
            let named = NamedPolicy::new("fuzzed", policy);
            let req = sample_request();
            let d = match kind {
                PolicyKind::Identity => evaluate(&req, std::slice::from_ref(&named), &[]),
                PolicyKind::Resource => evaluate(&req, &[], std::slice::from_ref(&named)),
                PolicyKind::Trust => may_assume(&named, &req),
            };
            let _ = d.explain();
            let _ = d.message();
        }
    }

    #[test]
    fn near_valid_documents_evaluate_without_panicking(
        (kind, doc) in any_kind().prop_flat_map(|k| (Just(k), policy_ish(k))),
        session in any::<bool>(),
    ) {
        if let Ok(policy) = Policy::parse(&doc.to_string(), kind) {
            let named = NamedPolicy::new("fuzzed", policy);
            let mut req = sample_request()
                .with_context("s3:max-keys", ["10"])
                .with_context("aws:PrincipalTag/x", ["blue"]);
            if session {
                req.principal = Principal::from_arn("arn:aws:sts::111122223333:assumed-role/r/s").expect("principal");
            }
            let d = match kind {
                PolicyKind::Identity => evaluate(&req, std::slice::from_ref(&named), &[]),
                PolicyKind::Resource => evaluate(&req, &[], std::slice::from_ref(&named)),
                PolicyKind::Trust => may_assume(&named, &req),
            };
            let statements: usize = d.policies.iter().map(|p| p.statements.len()).sum();
            prop_assert_eq!(statements, named.policy.statements.len());
            prop_assert_eq!(d.message().is_none(), d.is_allowed());
            let _ = d.explain();
        }
    }

    #[test]
    fn matching_is_total_and_deterministic(pattern in "[a-c:*?/]{0,12}", text in "[a-c:/]{0,16}") {
        prop_assert_eq!(action_matches(&pattern, &text), action_matches(&pattern, &text));
        prop_assert_eq!(resource_matches(&pattern, &text), resource_matches(&pattern, &text));
        // Actions use plain globbing: compare with a naive matcher.
        let p: Vec<char> = pattern.chars().collect();
        let t: Vec<char> = text.chars().collect();
        prop_assert_eq!(action_matches(&pattern, &text), reference_glob(&p, &t));
        // ARN field rules only ever narrow plain globbing.
        if resource_matches(&pattern, &text) {
            prop_assert!(reference_glob(&p, &t));
        }
    }

    #[test]
    fn matching_never_panics_on_any_text(pattern in ".{0,40}", text in ".{0,60}") {
        let _ = action_matches(&pattern, &text);
        let _ = resource_matches(&pattern, &text);
    }

    #[test]
    fn a_pattern_without_wildcards_matches_only_itself(literal in "[^*?]{0,30}", text in "[^*?]{0,30}") {
        prop_assert!(action_matches(&literal, &literal));
        prop_assert!(resource_matches(&literal, &literal));
        prop_assert_eq!(action_matches(&literal, &text), literal.to_lowercase() == text.to_lowercase());
        prop_assert_eq!(resource_matches(&literal, &text), literal == text);
        // Actions ignore case; resources do not.
        let upper = literal.to_ascii_uppercase();
        prop_assert!(action_matches(&upper, &literal));
        prop_assert_eq!(resource_matches(&upper, &literal), upper == literal);
    }

    #[test]
    fn star_matches_everything(text in ".{0,80}") {
        prop_assert!(action_matches("*", &text));
        prop_assert!(resource_matches("*", &text));
    }

    #[test]
    fn explicit_deny_always_wins(
        identity in prop::collection::vec(gen_statement(), 0..5),
        resource in prop::collection::vec(gen_statement(), 0..5),
        action in 0..ACTIONS.len(),
        target in 0..RESOURCES.len(),
        root in any::<bool>(),
        foreign in any::<bool>(),
    ) {
        let account = if foreign { "444455556666" } else { "111122223333" };
        let principal = if root {
            Principal::root(account)
        } else {
            Principal::from_arn(&format!("arn:aws:iam::{account}:user/alice")).expect("principal")
        };
        let req = Request::new(principal, ACTIONS[action], RESOURCES[target], 0);
        let id_policy = policy_of(&identity, PolicyKind::Identity);
        let res_policy = policy_of(&resource, PolicyKind::Resource);
        let decision = evaluate(&req, &id_policy, &res_policy);

        // Judge each Deny statement on its own: if any applies alone, the whole must be an explicit deny.
        let deny_applies = |stmts: &[GenStatement], kind: PolicyKind| {
            stmts.iter().filter(|s| s.deny).any(|s| {
                let alone = policy_of(std::slice::from_ref(s), kind);
                let d = match kind {
                    PolicyKind::Identity => evaluate(&req, &alone, &[]),
                    _ => evaluate(&req, &[], &alone),
                };
                matches!(d.verdict, Verdict::ExplicitDeny(_))
            })
        };
        let id_deny = deny_applies(&identity, PolicyKind::Identity);
        let res_deny = deny_applies(&resource, PolicyKind::Resource);
        match (id_deny, res_deny) {
            (true, _) => prop_assert_eq!(decision.verdict, Verdict::ExplicitDeny(PolicySource::IdentityBased)),
            (false, true) => prop_assert_eq!(decision.verdict, Verdict::ExplicitDeny(PolicySource::ResourceBased)),
            (false, false) => prop_assert!(!matches!(decision.verdict, Verdict::ExplicitDeny(_))),
        }
        // And every decisive statement of an explicit deny is a Deny that applies.
        if let Verdict::ExplicitDeny(_) = decision.verdict {
            for r in &decision.decided_by {
                let (_, st) = decision.statement(*r).expect("decided_by points at a statement");
                prop_assert!(st.effect == Effect::Deny && st.applies());
            }
        }
        // Evaluation is a pure function of its inputs.
        prop_assert_eq!(&decision, &evaluate(&req, &id_policy, &res_policy));
    }
}
