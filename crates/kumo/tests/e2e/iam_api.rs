//! IAM and STS through their real query APIs: aws-sdk-iam, aws-sdk-sts, raw
//! signed requests and the AWS CLI, against a server that verifies signatures.

use aws_sdk_iam::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_iam::types::PolicyScopeType;
use aws_sdk_lambda::config::Credentials;

use crate::harness::{LAMBDA_TRUST, Server, form_encode};

const ACCOUNT: &str = "000000000000";
const INVOKE_ALL: &str =
    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"lambda:InvokeFunction","Resource":"*"}]}"#;
const TRUST_ACCOUNT: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:root"},"Action":"sts:AssumeRole"}]}"#;

/// (HTTP status, code, message) of a failed SDK call.
fn failure<T: std::fmt::Debug, E: ProvideErrorMetadata + std::fmt::Debug>(
    result: Result<T, SdkError<E, aws_sdk_iam::config::http::HttpResponse>>,
) -> (u16, String, String) {
    let err = result.expect_err("the call should have failed");
    let status = err.raw_response().map(|r| r.status().as_u16()).unwrap_or(0);
    (status, err.code().unwrap_or("").to_string(), err.message().unwrap_or("").to_string())
}

fn url_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).expect("utf8");
            out.push(u8::from_str_radix(hex, 16).expect("hex"));
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).expect("utf8")
}

fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).expect("json")
}

#[tokio::test(flavor = "multi_thread")]
async fn iam_users_access_keys_and_policies_round_trip() {
    let server = Server::start();
    let iam = server.iam();

    let created = iam.create_user().user_name("dev").path("/team/").send().await.expect("create user");
    let user = created.user().expect("user");
    assert_eq!(user.user_name(), "dev");
    assert_eq!(user.path(), "/team/");
    assert_eq!(user.arn(), "arn:aws:iam::000000000000:user/team/dev");
    assert!(user.user_id().starts_with("AIDA") && user.user_id().len() == 21, "{}", user.user_id());
    let got = iam.get_user().user_name("DEV").send().await.expect("get user (names ignore case)");
    assert_eq!(got.user().map(|u| u.user_id()), Some(user.user_id()));
    let listed = iam.list_users().send().await.expect("list users");
    assert_eq!(listed.users().iter().map(|u| u.user_name()).collect::<Vec<_>>(), vec!["dev"]);
    assert!(!listed.is_truncated());

    // Two access keys, and no third.
    let k1 = iam.create_access_key().user_name("dev").send().await.expect("key 1");
    let k1 = k1.access_key().expect("access key");
    assert!(k1.access_key_id().starts_with("AKIA") && k1.access_key_id().len() == 20);
    assert_eq!(k1.secret_access_key().len(), 40);
    assert_eq!(k1.status().as_str(), "Active");
    iam.create_access_key().user_name("dev").send().await.expect("key 2");
    assert_eq!(
        failure(iam.create_access_key().user_name("dev").send().await),
        (409, "LimitExceeded".into(), "Cannot exceed quota for AccessKeysPerUser: 2".into())
    );
    let keys = iam.list_access_keys().user_name("dev").send().await.expect("list keys");
    assert_eq!(keys.access_key_metadata().len(), 2);
    assert!(keys.access_key_metadata().iter().all(|k| k.user_name() == Some("dev")));

    // The key works: the server verifies the user's signature and knows who it is.
    let as_dev = Credentials::new(k1.access_key_id(), k1.secret_access_key(), None, None, "dev");
    let me = server.sts_as(as_dev.clone()).get_caller_identity().send().await.expect("caller identity of dev");
    assert_eq!(me.arn(), Some("arn:aws:iam::000000000000:user/team/dev"));
    assert_eq!(me.user_id(), Some(user.user_id()));
    assert_eq!(me.account(), Some(ACCOUNT));

    // Inline policies.
    iam.put_user_policy().user_name("dev").policy_name("invoke").policy_document(INVOKE_ALL).send().await.expect("put");
    let inline = iam.get_user_policy().user_name("dev").policy_name("invoke").send().await.expect("get user policy");
    assert_eq!(inline.user_name(), "dev");
    assert_eq!(json(&url_decode(inline.policy_document())), json(INVOKE_ALL));
    let names = iam.list_user_policies().user_name("dev").send().await.expect("list user policies");
    assert_eq!(names.policy_names(), ["invoke"]);

    // Managed policies, attached.
    let policy = iam
        .create_policy()
        .policy_name("read-logs")
        .path("/kumo/")
        .description("reads logs")
        .policy_document(
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"logs:Get*","Resource":"*"}}"#,
        )
        .send()
        .await
        .expect("create policy");
    let policy = policy.policy().expect("policy");
    let arn = policy.arn().expect("arn").to_string();
    assert_eq!(arn, "arn:aws:iam::000000000000:policy/kumo/read-logs");
    assert_eq!(policy.default_version_id(), Some("v1"));
    assert!(policy.policy_id().is_some_and(|id| id.starts_with("ANPA")));
    iam.attach_user_policy().user_name("dev").policy_arn(&arn).send().await.expect("attach");
    let attached = iam.list_attached_user_policies().user_name("dev").send().await.expect("list attached");
    assert_eq!(attached.attached_policies().len(), 1);
    assert_eq!(attached.attached_policies()[0].policy_name(), Some("read-logs"));
    let fetched = iam.get_policy().policy_arn(&arn).send().await.expect("get policy");
    assert_eq!(fetched.policy().and_then(|p| p.attachment_count()), Some(1));
    assert_eq!(fetched.policy().and_then(|p| p.description()), Some("reads logs"));
    let version = iam.get_policy_version().policy_arn(&arn).version_id("v1").send().await.expect("version");
    let version = version.policy_version().expect("version");
    assert!(version.is_default_version());
    assert_eq!(json(&url_decode(version.document().expect("document")))["Statement"]["Action"], "logs:Get*");
    let local = iam.list_policies().scope(PolicyScopeType::Local).send().await.expect("list local");
    assert_eq!(local.policies().iter().map(|p| p.policy_name().unwrap_or("")).collect::<Vec<_>>(), vec!["read-logs"]);
    let aws = iam.list_policies().scope(PolicyScopeType::Aws).send().await.expect("list aws");
    assert!(aws.policies().iter().any(|p| p.arn() == Some("arn:aws:iam::aws:policy/AdministratorAccess")));

    // Nothing attached or owned may be deleted out from under its holder.
    assert_eq!(
        failure(iam.delete_policy().policy_arn(&arn).send().await),
        (409, "DeleteConflict".into(), "Cannot delete a policy attached to entities.".into())
    );
    assert_eq!(
        failure(iam.delete_user().user_name("dev").send().await),
        (409, "DeleteConflict".into(), "Cannot delete entity, must delete access keys first.".into())
    );
    for key in keys.access_key_metadata() {
        let id = key.access_key_id().expect("id");
        iam.delete_access_key().user_name("dev").access_key_id(id).send().await.expect("delete key");
    }
    // A deleted key no longer authenticates.
    let refused = failure(server.sts_as(as_dev).get_caller_identity().send().await);
    assert_eq!((refused.0, refused.1.as_str()), (403, "InvalidClientTokenId"));
    assert_eq!(
        failure(iam.delete_user().user_name("dev").send().await),
        (409, "DeleteConflict".into(), "Cannot delete entity, must delete policies first.".into())
    );
    iam.delete_user_policy().user_name("dev").policy_name("invoke").send().await.expect("delete inline");
    assert_eq!(
        failure(iam.delete_user().user_name("dev").send().await),
        (409, "DeleteConflict".into(), "Cannot delete entity, must detach all policies first.".into())
    );
    iam.detach_user_policy().user_name("dev").policy_arn(&arn).send().await.expect("detach");
    iam.delete_policy().policy_arn(&arn).send().await.expect("delete policy");
    iam.delete_user().user_name("dev").send().await.expect("delete user");
    assert_eq!(
        failure(iam.get_user().user_name("dev").send().await),
        (404, "NoSuchEntity".into(), "The user with name dev cannot be found.".into())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn iam_roles_with_trust_policies_and_attached_policies() {
    let server = Server::start();
    let iam = server.iam();
    let created = iam
        .create_role()
        .role_name("exec")
        .path("/service-role/")
        .description("runs functions")
        .max_session_duration(7200)
        .assume_role_policy_document(LAMBDA_TRUST)
        .send()
        .await
        .expect("create role");
    let role = created.role().expect("role");
    assert_eq!(role.arn(), "arn:aws:iam::000000000000:role/service-role/exec");
    assert!(role.role_id().starts_with("AROA"));
    assert_eq!(
        failure(iam.create_role().role_name("EXEC").assume_role_policy_document(LAMBDA_TRUST).send().await),
        (409, "EntityAlreadyExists".into(), "Role with name EXEC already exists.".into())
    );
    let got = iam.get_role().role_name("exec").send().await.expect("get role");
    let got = got.role().expect("role");
    assert_eq!(json(&url_decode(got.assume_role_policy_document().expect("trust"))), json(LAMBDA_TRUST));
    assert_eq!(got.description(), Some("runs functions"));
    assert_eq!(got.max_session_duration(), Some(7200));
    let roles = iam.list_roles().send().await.expect("list roles");
    // The harness's own kumo-test-role is there too.
    assert!(roles.roles().iter().any(|r| r.role_name() == "exec"));

    iam.put_role_policy()
        .role_name("exec")
        .policy_name("invoke")
        .policy_document(INVOKE_ALL)
        .send()
        .await
        .expect("put");
    let inline = iam.get_role_policy().role_name("exec").policy_name("invoke").send().await.expect("get");
    assert_eq!(json(&url_decode(inline.policy_document())), json(INVOKE_ALL));
    assert_eq!(iam.list_role_policies().role_name("exec").send().await.expect("list").policy_names(), ["invoke"]);
    let basic = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole";
    iam.attach_role_policy().role_name("exec").policy_arn(basic).send().await.expect("attach");
    let attached = iam.list_attached_role_policies().role_name("exec").send().await.expect("list attached");
    assert_eq!(attached.attached_policies()[0].policy_arn(), Some(basic));
    let aws_policy = iam.get_policy().policy_arn(basic).send().await.expect("aws policy");
    assert_eq!(aws_policy.policy().and_then(|p| p.attachment_count()), Some(1));

    assert_eq!(
        failure(iam.delete_role().role_name("exec").send().await),
        (409, "DeleteConflict".into(), "Cannot delete entity, must delete policies first.".into())
    );
    iam.delete_role_policy().role_name("exec").policy_name("invoke").send().await.expect("delete inline");
    assert_eq!(
        failure(iam.delete_role().role_name("exec").send().await),
        (409, "DeleteConflict".into(), "Cannot delete entity, must detach all policies first.".into())
    );
    iam.detach_role_policy().role_name("exec").policy_arn(basic).send().await.expect("detach");
    assert_eq!(
        failure(iam.detach_role_policy().role_name("exec").policy_arn(basic).send().await),
        (404, "NoSuchEntity".into(), format!("Policy {basic} was not found."))
    );
    iam.delete_role().role_name("exec").send().await.expect("delete role");
    assert_eq!(
        failure(iam.get_role().role_name("exec").send().await),
        (404, "NoSuchEntity".into(), "The role with name exec cannot be found.".into())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn iam_lists_paginate_with_marker_and_max_items() {
    let server = Server::start();
    let iam = server.iam();
    for i in 0..7 {
        iam.create_user().user_name(format!("user{i}")).send().await.expect("create user");
    }
    let first = iam.list_users().max_items(3).send().await.expect("page 1");
    assert_eq!(first.users().len(), 3);
    assert!(first.is_truncated());
    let marker = first.marker().expect("marker").to_string();
    let second = iam.list_users().max_items(3).marker(marker).send().await.expect("page 2");
    assert_eq!(second.users()[0].user_name(), "user3");
    let all: Vec<String> = iam
        .list_users()
        .max_items(2)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .expect("paginate")
        .into_iter()
        .map(|u| u.user_name().to_string())
        .collect();
    assert_eq!(all, (0..7).map(|i| format!("user{i}")).collect::<Vec<_>>());
    let roles: Vec<_> = iam
        .list_policies()
        .max_items(3)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .expect("paginate policies");
    assert!(roles.len() >= 8, "AWS managed policies are listed: {}", roles.len());
    assert_eq!(failure(iam.list_users().max_items(0).send().await).1, "ValidationError", "MaxItems below 1 is refused");
}

#[tokio::test(flavor = "multi_thread")]
async fn iam_errors_carry_codes_statuses_and_messages() {
    let server = Server::start();
    let iam = server.iam();
    assert_eq!(
        failure(iam.create_user().user_name("bad name").send().await),
        (
            400,
            "ValidationError".into(),
            r"1 validation error detected: Value 'bad name' at 'userName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\w+=,.@-]+".into()
        )
    );
    iam.create_user().user_name("dev").send().await.expect("create");
    assert_eq!(
        failure(iam.create_user().user_name("dev").send().await),
        (409, "EntityAlreadyExists".into(), "User with name dev already exists.".into())
    );
    assert_eq!(
        failure(iam.put_user_policy().user_name("ghost").policy_name("p").policy_document(INVOKE_ALL).send().await),
        (404, "NoSuchEntity".into(), "The user with name ghost cannot be found.".into())
    );
    assert_eq!(
        failure(iam.get_user_policy().user_name("dev").policy_name("p").send().await),
        (404, "NoSuchEntity".into(), "The user policy with name p cannot be found.".into())
    );
    let missing = "arn:aws:iam::000000000000:policy/missing";
    assert_eq!(
        failure(iam.attach_user_policy().user_name("dev").policy_arn(missing).send().await),
        (404, "NoSuchEntity".into(), format!("Policy {missing} does not exist or is not attachable."))
    );
    assert_eq!(
        failure(iam.get_policy().policy_arn(missing).send().await),
        (404, "NoSuchEntity".into(), format!("Policy {missing} was not found."))
    );
    // Malformed documents: by the policy grammar, for each kind of policy.
    let (status, code, _) =
        failure(iam.put_user_policy().user_name("dev").policy_name("p").policy_document("{not json").send().await);
    assert_eq!((status, code.as_str()), (400, "MalformedPolicyDocument"));
    let (status, code, message) = failure(
        iam.create_policy()
            .policy_name("no-resource")
            .policy_document(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"lambda:*"}]}"#)
            .send()
            .await,
    );
    assert_eq!(
        (status, code.as_str(), message.as_str()),
        (400, "MalformedPolicyDocument", "Policy statement must contain resources.")
    );
    let (status, code, _) =
        failure(iam.create_role().role_name("r").assume_role_policy_document(INVOKE_ALL).send().await);
    assert_eq!((status, code.as_str()), (400, "MalformedPolicyDocument"), "a trust policy needs a principal");
    assert!(iam.get_role().role_name("r").send().await.is_err(), "nothing was created");

    // The raw XML, as AWS writes it.
    let form = "Action=DeleteRole&Version=2010-05-08&RoleName=ghost";
    let resp = server
        .send(
            server
                .http()
                .post(format!("{}/", server.endpoint))
                .header("content-type", "application/x-www-form-urlencoded; charset=utf-8")
                .body(form),
        )
        .await
        .expect("raw request");
    assert_eq!(resp.status().as_u16(), 404);
    assert_eq!(resp.headers().get("content-type").and_then(|v| v.to_str().ok()), Some("text/xml"));
    let request_id = resp.headers().get("x-amzn-requestid").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let body = resp.text().await.expect("body");
    assert_eq!(
        body,
        format!(
            "<ErrorResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\"><Error><Type>Sender</Type><Code>NoSuchEntity</Code><Message>The role with name ghost cannot be found.</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>"
        )
    );
    let resp = server
        .send(
            server
                .http()
                .post(format!("{}/", server.endpoint))
                .header("content-type", "application/x-www-form-urlencoded; charset=utf-8")
                .body("Action=FlyToTheMoon&Version=2010-05-08"),
        )
        .await
        .expect("raw request");
    assert_eq!(resp.status().as_u16(), 400);
    let body = resp.text().await.expect("body");
    assert!(body.contains("<Code>InvalidAction</Code>"), "{body}");
    assert!(body.contains("Could not find operation FlyToTheMoon for version 2010-05-08"), "{body}");
    // A success, raw: the envelope and result element.
    let form = format!("Action=GetUser&Version=2010-05-08&UserName={}", form_encode("dev"));
    let resp = server
        .send(
            server
                .http()
                .post(format!("{}/", server.endpoint))
                .header("content-type", "application/x-www-form-urlencoded; charset=utf-8")
                .body(form),
        )
        .await
        .expect("raw request");
    let body = resp.text().await.expect("body");
    assert!(
        body.starts_with("<GetUserResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\"><GetUserResult><User><Path>/</Path><UserName>dev</UserName><UserId>AIDA"),
        "{body}"
    );
    assert!(body.contains("</User></GetUserResult><ResponseMetadata><RequestId>"), "{body}");
    assert!(body.ends_with("</RequestId></ResponseMetadata></GetUserResponse>"), "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn iam_assume_role_hands_out_session_credentials_that_survive_restarts() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data_dir = tmp.path().join("data");
    let mut server = Server::start_in(&data_dir, &[]);
    let iam = server.iam();
    let role = iam
        .create_role()
        .role_name("deployer")
        .assume_role_policy_document(TRUST_ACCOUNT)
        .send()
        .await
        .expect("create role");
    let role = role.role().expect("role").clone();
    let sts = server.sts();
    let root = sts.get_caller_identity().send().await.expect("root identity");
    assert_eq!(root.arn(), Some("arn:aws:iam::000000000000:root"));
    assert_eq!(root.user_id(), Some(ACCOUNT));

    let before = std::time::SystemTime::now();
    let out = sts
        .assume_role()
        .role_arn(role.arn())
        .role_session_name("ci-run")
        .duration_seconds(900)
        .send()
        .await
        .expect("assume role");
    let user = out.assumed_role_user().expect("assumed role user");
    assert_eq!(user.arn(), "arn:aws:sts::000000000000:assumed-role/deployer/ci-run");
    assert_eq!(user.assumed_role_id(), format!("{}:ci-run", role.role_id()));
    let c = out.credentials().expect("credentials");
    assert!(c.access_key_id().starts_with("ASIA") && c.access_key_id().len() == 20, "{}", c.access_key_id());
    assert_eq!(c.secret_access_key().len(), 40);
    assert!(c.session_token().len() >= 100);
    let expires = std::time::SystemTime::try_from(*c.expiration()).expect("expiration");
    let lasts = expires.duration_since(before).expect("in the future").as_secs();
    assert!((895..=905).contains(&lasts), "{lasts}");

    let session =
        Credentials::new(c.access_key_id(), c.secret_access_key(), Some(c.session_token().to_string()), None, "s");
    let who = server.sts_as(session.clone()).get_caller_identity().send().await.expect("session identity");
    assert_eq!(who.arn(), Some("arn:aws:sts::000000000000:assumed-role/deployer/ci-run"));
    assert_eq!(who.user_id(), Some(format!("{}:ci-run", role.role_id()).as_str()));
    assert_eq!(who.account(), Some(ACCOUNT));
    // Without its token, the session's key is not accepted.
    let tokenless = Credentials::new(c.access_key_id(), c.secret_access_key(), None, None, "s");
    assert_eq!(failure(server.sts_as(tokenless).get_caller_identity().send().await).0, 403);

    // Refusals.
    let (status, code, _) = failure(sts.assume_role().role_arn(role.arn()).role_session_name("x").send().await);
    assert_eq!((status, code.as_str()), (400, "ValidationError"), "session names are 2 characters at least");
    assert_eq!(
        failure(sts.assume_role().role_arn(role.arn()).role_session_name("long").duration_seconds(7200).send().await),
        (
            400,
            "ValidationError".into(),
            "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.".into()
        )
    );
    let lambda_only = iam.create_role().role_name("exec").assume_role_policy_document(LAMBDA_TRUST).send().await;
    let lambda_only = lambda_only.expect("create exec").role().expect("role").arn().to_string();
    assert_eq!(
        failure(sts.assume_role().role_arn(&lambda_only).role_session_name("me").send().await),
        (
            403,
            "AccessDenied".into(),
            format!(
                "User: arn:aws:iam::000000000000:root is not authorized to perform: sts:AssumeRole on resource: {lambda_only}"
            )
        )
    );

    // A user the trust policy names directly may assume without a policy of its own.
    iam.create_user().user_name("dev").send().await.expect("user");
    let key = iam.create_access_key().user_name("dev").send().await.expect("key");
    let key = key.access_key().expect("key");
    let direct = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{ACCOUNT}:user/dev"}},"Action":"sts:AssumeRole"}}]}}"#
    );
    iam.update_assume_role_policy().role_name("deployer").policy_document(direct).send().await.expect("update trust");
    let dev = server.sts_as(Credentials::new(key.access_key_id(), key.secret_access_key(), None, None, "dev"));
    let dev_session = dev.assume_role().role_arn(role.arn()).role_session_name("dev-run").send().await;
    assert!(dev_session.is_ok(), "{dev_session:?}");

    // Sessions are stored: they work after a restart.
    server.stop();
    let server = Server::start_in(&data_dir, &[]);
    let who = server.sts_as(session.clone()).get_caller_identity().send().await.expect("after restart");
    assert_eq!(who.arn(), Some("arn:aws:sts::000000000000:assumed-role/deployer/ci-run"));
    assert!(server.iam().get_user().user_name("dev").send().await.is_ok());

    // A deleted role's sessions stop working.
    let iam = server.iam();
    iam.delete_role().role_name("deployer").send().await.expect("delete role");
    let (status, code, _) = failure(server.sts_as(session).get_caller_identity().send().await);
    assert_eq!((status, code.as_str()), (403, "InvalidClientTokenId"));
}

#[tokio::test(flavor = "multi_thread")]
async fn iam_answers_get_requests_and_root_without_auth() {
    let server = Server::start_with(&["--auth", "none"]);
    let http = server.http();
    let resp = http
        .get(format!("{}/?Action=GetCallerIdentity&Version=2011-06-15", server.endpoint))
        .send()
        .await
        .expect("get caller identity");
    assert_eq!(resp.status().as_u16(), 200);
    let body = resp.text().await.expect("body");
    assert!(
        body.starts_with(
            "<GetCallerIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><GetCallerIdentityResult>"
        ),
        "{body}"
    );
    assert!(body.contains("<Arn>arn:aws:iam::000000000000:root</Arn>"), "{body}");
    let resp = http
        .get(format!("{}/?Action=ListRoles&Version=2010-05-08&MaxItems=1", server.endpoint))
        .send()
        .await
        .expect("list roles");
    let body = resp.text().await.expect("body");
    assert!(
        body.contains("<ListRolesResult><Roles><member><Path>/</Path><RoleName>kumo-test-role</RoleName>"),
        "{body}"
    );
    // CloudWatch Logs still answers on the same path.
    let resp = http
        .post(format!("{}/", server.endpoint))
        .header("x-amz-target", "Logs_20140328.DescribeLogGroups")
        .header("content-type", "application/x-amz-json-1.1")
        .body("{}")
        .send()
        .await
        .expect("describe log groups");
    assert_eq!(resp.status().as_u16(), 200);
    assert!(resp.text().await.expect("body").contains("logGroups"));
}

#[test]
fn iam_through_the_aws_cli() {
    let server = Server::start();
    let aws = |args: &[&str]| {
        let out = std::process::Command::new("aws")
            .arg("--endpoint-url")
            .arg(&server.endpoint)
            .args(args)
            .env("AWS_ACCESS_KEY_ID", crate::harness::ROOT_KEY_ID)
            .env("AWS_SECRET_ACCESS_KEY", crate::harness::ROOT_SECRET)
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("NO_PROXY", "127.0.0.1")
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_SESSION_TOKEN")
            .output()
            .expect("run the aws CLI");
        assert!(out.status.success(), "aws {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap_or(serde_json::Value::Null)
    };
    let created = aws(&["iam", "create-user", "--user-name", "cli-user"]);
    assert_eq!(created["User"]["UserName"], "cli-user");
    assert_eq!(created["User"]["Arn"], "arn:aws:iam::000000000000:user/cli-user");
    let listed = aws(&["iam", "list-users"]);
    assert_eq!(listed["Users"][0]["UserName"], "cli-user");
    // The CLI decodes the URL-encoded trust policy back into JSON.
    let role = aws(&["iam", "get-role", "--role-name", "kumo-test-role"]);
    assert_eq!(role["Role"]["AssumeRolePolicyDocument"], json(LAMBDA_TRUST));
    let me = aws(&["sts", "get-caller-identity"]);
    assert_eq!(me["Arn"], "arn:aws:iam::000000000000:root");
}
