use super::super::{CountingRandom, IamErrorCode, KeyOwner};
use super::*;

const ACCT: &str = "123456789012";
const LAMBDA_TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
const DOC: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"logs:*","Resource":"*"}]}"#;

fn trust_for(principal: &str) -> String {
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"{principal}"}},"Action":"sts:AssumeRole"}}]}}"#
    )
}

fn code<T: std::fmt::Debug>(r: Result<T, IamError>) -> (IamErrorCode, String) {
    match r {
        Err(e) => (e.code, e.message),
        Ok(v) => panic!("expected an error, got {v:?}"),
    }
}

fn new_role<'a>(name: &'a str, trust: &'a str) -> NewRole<'a> {
    NewRole { name, trust_policy: trust, ..NewRole::default() }
}

fn user(name: &str) -> Principal {
    Principal::from_arn(&format!("arn:aws:iam::{ACCT}:user/{name}")).unwrap_or_else(Principal::anonymous)
}

fn assume<'a>(caller: &'a Principal, policies: &'a [NamedPolicy], role: &'a str) -> AssumeRequest<'a> {
    AssumeRequest { caller, caller_policies: policies, role_arn: role, session_name: "sess", duration_seconds: None }
}

#[test]
fn roles_lifecycle_and_errors() -> Result<(), IamError> {
    let mut s = IamState::new(ACCT);
    let mut r = CountingRandom(1);
    let exec = NewRole { path: Some("/svc/"), description: Some("runs f"), ..new_role("exec", LAMBDA_TRUST) };
    let role = s.commit(s.create_role(&exec, 1000, &mut r)?);
    assert_eq!(role.arn, "arn:aws:iam::123456789012:role/svc/exec");
    assert!(role.id.starts_with("AROA") && role.id.len() == 21);
    assert_eq!(role.max_session_duration, 3600);
    assert_eq!(role.description.as_deref(), Some("runs f"));
    assert_eq!(
        code(s.create_role(&new_role("EXEC", LAMBDA_TRUST), 0, &mut r)),
        (IamErrorCode::EntityAlreadyExists, "Role with name EXEC already exists.".into())
    );
    assert_eq!(
        code(s.get_role("nope")),
        (IamErrorCode::NoSuchEntity, "The role with name nope cannot be found.".into())
    );
    // A trust policy must name a principal and may not name resources.
    assert_eq!(code(s.create_role(&new_role("x", DOC), 0, &mut r)).0, IamErrorCode::MalformedPolicyDocument);
    assert_eq!(code(s.create_role(&new_role("x", "nope"), 0, &mut r)).0, IamErrorCode::MalformedPolicyDocument);
    let bad_max = NewRole { max_session_duration: Some(60), ..new_role("x", LAMBDA_TRUST) };
    assert_eq!(code(s.create_role(&bad_max, 0, &mut r)).0, IamErrorCode::ValidationError);

    s.commit(s.put_role_policy("exec", "logs", DOC)?);
    assert_eq!(s.get_role_policy("exec", "logs")?.1, DOC);
    assert_eq!(
        code(s.get_role_policy("exec", "other")),
        (IamErrorCode::NoSuchEntity, "The role policy with name other cannot be found.".into())
    );
    assert_eq!(
        code(s.delete_role("exec")),
        (IamErrorCode::DeleteConflict, "Cannot delete entity, must delete policies first.".into())
    );
    s.commit(s.delete_role_policy("exec", "logs")?);
    let basic = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole";
    s.commit(s.attach_role_policy("exec", basic)?);
    assert_eq!(s.list_attached_role_policies("exec", None, None, None)?.items[0].0, "AWSLambdaBasicExecutionRole");
    assert_eq!(s.role_policies("exec").len(), 1);
    assert_eq!(
        code(s.delete_role("exec")),
        (IamErrorCode::DeleteConflict, "Cannot delete entity, must detach all policies first.".into())
    );
    let policy = s.commit(s.create_policy("p", None, DOC, None, 0, &mut r)?);
    s.commit(s.attach_role_policy("exec", &policy.arn)?);
    assert_eq!(
        code(s.delete_policy(&policy.arn)),
        (IamErrorCode::DeleteConflict, "Cannot delete a policy attached to entities.".into())
    );
    s.commit(s.detach_role_policy("exec", &policy.arn)?);
    s.commit(s.detach_role_policy("exec", basic)?);
    s.commit(s.delete_role("exec")?);
    assert!(s.role("exec").is_none());
    Ok(())
}

#[test]
fn listing_roles_in_pages() -> Result<(), IamError> {
    let mut s = IamState::new(ACCT);
    let mut r = CountingRandom(2);
    for name in ["c", "a", "B", "d"] {
        s.commit(s.create_role(&new_role(name, LAMBDA_TRUST), 0, &mut r)?);
    }
    let first = s.list_roles(None, None, Some(3))?;
    assert_eq!(first.items.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(), vec!["a", "B", "c"]);
    let rest = s.list_roles(None, first.next_marker.as_deref(), Some(3))?;
    assert_eq!(rest.items.len(), 1);
    assert!(!rest.is_truncated());
    Ok(())
}

#[test]
fn a_trust_policy_naming_the_user_lets_it_assume() -> Result<(), IamError> {
    let mut s = IamState::new(ACCT);
    let mut r = CountingRandom(3);
    let role = s.commit(s.create_role(
        &new_role("deploy", &trust_for(&format!("arn:aws:iam::{ACCT}:user/dev"))),
        0,
        &mut r,
    )?);
    let dev = user("dev");
    let grant = s.commit(s.assume_role(&assume(&dev, &[], &role.arn), 1_000, &mut r)?);
    assert!(grant.access_key_id.starts_with("ASIA") && grant.access_key_id.len() == 20);
    assert_eq!(grant.secret_access_key.len(), 40);
    assert!(grant.session_token.len() >= 100);
    assert_eq!(grant.expires_ms, 1_000 + 3_600_000);
    assert_eq!(grant.assumed_role_id(), format!("{}:sess", role.id));
    assert!(
        matches!(s.resolve_key(&grant.access_key_id), Some(KeyOwner::Session { role, .. }) if role.name == "deploy")
    );

    let eve = user("eve");
    assert_eq!(
        code(s.assume_role(&assume(&eve, &[], &role.arn), 0, &mut r)),
        (
            IamErrorCode::AccessDenied,
            format!(
                "User: arn:aws:iam::{ACCT}:user/eve is not authorized to perform: sts:AssumeRole on resource: {}",
                role.arn
            )
        )
    );
    // A role that does not exist is refused the same way.
    let ghost = format!("arn:aws:iam::{ACCT}:role/ghost");
    assert_eq!(code(s.assume_role(&assume(&dev, &[], &ghost), 0, &mut r)).0, IamErrorCode::AccessDenied);
    Ok(())
}

#[test]
fn an_account_trust_policy_also_needs_the_callers_permission() -> Result<(), IamError> {
    let mut s = IamState::new(ACCT);
    let mut r = CountingRandom(4);
    let role =
        s.commit(s.create_role(&new_role("admin", &trust_for(&format!("arn:aws:iam::{ACCT}:root"))), 0, &mut r)?);
    let dev = user("dev");
    assert_eq!(code(s.assume_role(&assume(&dev, &[], &role.arn), 0, &mut r)).0, IamErrorCode::AccessDenied);
    let allow = NamedPolicy::parse(
        "inline",
        &format!(r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"{}"}}]}}"#, role.arn),
        PolicyKind::Identity,
    )
    .map_err(|e| IamError::new(IamErrorCode::MalformedPolicyDocument, e.to_string()))?;
    assert!(s.assume_role(&assume(&dev, std::slice::from_ref(&allow), &role.arn), 0, &mut r).is_ok());
    // The root of the account needs no policy.
    let root = Principal::root(ACCT);
    assert!(s.assume_role(&assume(&root, &[], &role.arn), 0, &mut r).is_ok());
    // Another account's root is not this account.
    let other = Principal::root("999999999999");
    assert_eq!(code(s.assume_role(&assume(&other, &[], &role.arn), 0, &mut r)).0, IamErrorCode::AccessDenied);
    Ok(())
}

#[test]
fn session_names_and_durations_are_checked() -> Result<(), IamError> {
    let mut s = IamState::new(ACCT);
    let mut r = CountingRandom(5);
    let trust = trust_for(&format!("arn:aws:iam::{ACCT}:root"));
    let role =
        s.commit(s.create_role(&NewRole { max_session_duration: Some(7200), ..new_role("r", &trust) }, 0, &mut r)?);
    let root = Principal::root(ACCT);
    let base = assume(&root, &[], &role.arn);
    let with =
        |name: &'static str, d: Option<i64>| AssumeRequest { session_name: name, duration_seconds: d, ..base.clone() };
    assert!(code(s.assume_role(&with("a", None), 0, &mut r)).1.contains("at 'roleSessionName'"));
    assert!(code(s.assume_role(&with("a b", None), 0, &mut r)).1.contains("regular expression"));
    assert!(code(s.assume_role(&with("ok", Some(899)), 0, &mut r)).1.contains("greater than or equal to 900"));
    assert_eq!(s.assume_role(&with("ok", Some(7200)), 0, &mut r)?.value.expires_ms, 7_200_000);
    assert_eq!(
        code(s.assume_role(&with("ok", Some(7201)), 0, &mut r)),
        (
            IamErrorCode::ValidationError,
            "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.".into()
        )
    );
    let short_arn = AssumeRequest { role_arn: "arn:x", ..base.clone() };
    assert!(code(s.assume_role(&short_arn, 0, &mut r)).1.contains("at 'roleArn'"));
    // Role chaining: a session assuming a role gets an hour at most.
    let session =
        Principal::from_arn(&format!("arn:aws:sts::{ACCT}:assumed-role/r/s")).unwrap_or_else(Principal::anonymous);
    let allow_all = NamedPolicy::parse(
        "inline",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"*"}]}"#,
        PolicyKind::Identity,
    )
    .map_err(|e| IamError::new(IamErrorCode::MalformedPolicyDocument, e.to_string()))?;
    let policies = [allow_all];
    let chained =
        AssumeRequest { caller: &session, caller_policies: &policies, duration_seconds: Some(3601), ..base.clone() };
    assert!(s.assume_role(&AssumeRequest { duration_seconds: Some(3600), ..chained.clone() }, 0, &mut r).is_ok());
    assert_eq!(
        code(s.assume_role(&chained, 0, &mut r)),
        (
            IamErrorCode::ValidationError,
            "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.".into()
        )
    );
    Ok(())
}

#[test]
fn service_sessions_and_service_trust() -> Result<(), IamError> {
    let mut s = IamState::new(ACCT);
    let mut r = CountingRandom(6);
    let exec = s.commit(s.create_role(&new_role("exec", LAMBDA_TRUST), 0, &mut r)?);
    let other = s.commit(s.create_role(&new_role("other", &trust_for(ACCT)), 0, &mut r)?);
    assert!(s.role_trusts_service(&exec.arn, "lambda.amazonaws.com", 0));
    assert!(!s.role_trusts_service(&exec.arn, "ec2.amazonaws.com", 0));
    assert!(!s.role_trusts_service(&other.arn, "lambda.amazonaws.com", 0));
    assert!(!s.role_trusts_service(&format!("arn:aws:iam::{ACCT}:role/none"), "lambda.amazonaws.com", 0));
    // Twelve hours and more are fine for Lambda's own sessions.
    let grant = s.commit(s.service_session("exec", "my-function", 50_000_000, 10, &mut r)?);
    assert_eq!(grant.expires_ms, 50_000_010);
    assert_eq!(code(s.service_session("none", "f", 1, 0, &mut r)).0, IamErrorCode::NoSuchEntity);
    Ok(())
}

#[test]
fn sessions_end_with_their_role_and_expired_ones_are_pruned() -> Result<(), IamError> {
    let mut s = IamState::new(ACCT);
    let mut r = CountingRandom(7);
    s.commit(s.create_role(&new_role("exec", LAMBDA_TRUST), 0, &mut r)?);
    let old = s.commit(s.service_session("exec", "f", 1000, 0, &mut r)?);
    let live = s.commit(s.service_session("exec", "f", 1_000_000_000, 0, &mut r)?);
    // Expired, but within the grace period: still known (as expired).
    let fresh = s.service_session("exec", "f", 1000, 2000, &mut r)?;
    assert_eq!(fresh.changes.len(), 1);
    // Long expired: removed by the next grant.
    let later = s.service_session("exec", "f", 1000, EXPIRED_SESSION_KEPT_MS + 5000, &mut r)?;
    assert!(later.changes.contains(&Change::DeleteSession(old.access_key_id.clone())));
    s.commit(later);
    assert!(s.session(&old.access_key_id).is_none());

    let delete = s.delete_role("exec")?;
    assert_eq!(delete.changes[0], Change::DeleteRole("exec".into()));
    assert!(delete.changes.contains(&Change::DeleteSession(live.access_key_id.clone())));
    // Even if only the role's deletion landed, its sessions stop resolving,
    // and a new role of the same name does not revive them.
    s.apply(Change::DeleteRole("exec".into()));
    assert!(s.resolve_key(&live.access_key_id).is_none());
    s.commit(s.create_role(&new_role("exec", LAMBDA_TRUST), 0, &mut r)?);
    assert!(s.resolve_key(&live.access_key_id).is_none());
    Ok(())
}

#[test]
fn trust_policies_can_be_replaced_and_have_a_quota() -> Result<(), IamError> {
    let mut s = IamState::new(ACCT);
    let mut r = CountingRandom(8);
    let role = s.commit(s.create_role(&new_role("r", LAMBDA_TRUST), 0, &mut r)?);
    s.commit(s.update_assume_role_policy("r", &trust_for(&format!("arn:aws:iam::{ACCT}:user/dev")))?);
    assert!(s.assume_role(&assume(&user("dev"), &[], &role.arn), 0, &mut r).is_ok());
    let many: Vec<String> = (0..60).map(|i| format!("\"arn:aws:iam::{ACCT}:user/user{i:03}\"")).collect();
    let big = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":[{}]}},"Action":"sts:AssumeRole"}}]}}"#,
        many.join(",")
    );
    assert_eq!(
        code(s.update_assume_role_policy("r", &big)),
        (IamErrorCode::LimitExceeded, "Cannot exceed quota for ACLSizePerRole: 2048".into())
    );
    Ok(())
}
