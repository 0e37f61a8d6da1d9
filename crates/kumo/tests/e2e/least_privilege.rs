//! Least privilege, enforced: IAM users and function roles get exactly what
//! their policies allow, and AWS's own AccessDenied message for the rest.

use aws_sdk_lambda::config::Credentials;
use aws_sdk_lambda::primitives::Blob;
use serde_json::json;

use crate::harness::*;

const ACCOUNT: &str = "000000000000";

fn lambda_as(server: &Server, key: &str, secret: &str) -> aws_sdk_lambda::Client {
    server.lambda_as(Credentials::new(key, secret, None, None, "test"))
}

fn iam_as(server: &Server, key: &str, secret: &str) -> aws_sdk_iam::Client {
    server.iam_as(Credentials::new(key, secret, None, None, "test"))
}

/// The HTTP status and the message of a refused call.
fn refusal<E: std::fmt::Debug, R: std::fmt::Debug>(e: aws_sdk_lambda::error::SdkError<E, R>) -> (u16, String) {
    let status = match &e {
        aws_sdk_lambda::error::SdkError::ServiceError(s) => format!("{:?}", s.raw()),
        other => format!("{other:?}"),
    };
    let code =
        status.split("status: StatusCode(").nth(1).and_then(|r| r.split(')').next()).and_then(|s| s.parse().ok());
    (code.unwrap_or(0), format!("{e:?}"))
}

fn denied(action: &str, resource: &str, who: &str) -> String {
    format!(
        "User: {who} is not authorized to perform: {action} on resource: {resource} because no identity-based policy allows the {action} action"
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_user_allowed_one_invoke_can_do_that_and_nothing_else() {
    let server = Server::start();
    let root = server.lambda();
    create_python(&root, "allowed", "python3.12", "python/echo.py").await;
    create_python(&root, "other", "python3.12", "python/echo.py").await;
    let iam = iam_as(&server, ROOT_KEY_ID, ROOT_SECRET);
    iam.create_user().user_name("dev").send().await.expect("create user");
    let allowed_arn = format!("arn:aws:lambda:us-east-1:{ACCOUNT}:function:allowed");
    let policy = json!({"Version": "2012-10-17", "Statement": [
        {"Sid": "InvokeOne", "Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": allowed_arn}
    ]});
    iam.put_user_policy()
        .user_name("dev")
        .policy_name("invoke-one")
        .policy_document(policy.to_string())
        .send()
        .await
        .expect("policy");
    let key = iam.create_access_key().user_name("dev").send().await.expect("key");
    let key = key.access_key().expect("access key");
    let dev = lambda_as(&server, key.access_key_id(), key.secret_access_key());
    let dev_arn = format!("arn:aws:iam::{ACCOUNT}:user/dev");

    let (payload, err, _) = invoke(&dev, "allowed", json!({"x": 1})).await;
    assert_eq!(err, None, "{payload}");
    assert_eq!(payload["event"]["x"], 1, "{payload}");

    let other_arn = format!("arn:aws:lambda:us-east-1:{ACCOUNT}:function:other");
    let e = dev.invoke().function_name("other").payload(Blob::new("{}")).send().await.expect_err("not allowed");
    let (status, text) = refusal(e);
    assert_eq!(status, 403, "{text}");
    assert!(text.contains("AccessDeniedException"), "{text}");
    assert!(text.contains(&denied("lambda:InvokeFunction", &other_arn, &dev_arn)), "{text}");
    let (_, text) = refusal(dev.list_functions().send().await.expect_err("no list"));
    assert!(text.contains(&denied("lambda:ListFunctions", "*", &dev_arn)), "{text}");
    let (_, text) = refusal(dev.delete_function().function_name("allowed").send().await.expect_err("no delete"));
    assert!(text.contains(&denied("lambda:DeleteFunction", &allowed_arn, &dev_arn)), "{text}");
    // A qualified invoke is another resource: the policy names the unqualified function only.
    let (_, text) = refusal(
        dev.invoke()
            .function_name("allowed")
            .qualifier("$LATEST")
            .payload(Blob::new("{}"))
            .send()
            .await
            .expect_err("qualified"),
    );
    assert!(text.contains(&format!("{allowed_arn}:$LATEST")), "{text}");
    // Nor may the user touch IAM.
    let dev_iam = iam_as(&server, key.access_key_id(), key.secret_access_key());
    let e = dev_iam.create_user().user_name("mallory").send().await.expect_err("no iam");
    assert!(format!("{e:?}").contains("AccessDenied"), "{e:?}");
    assert!(root.get_function().function_name("allowed").send().await.is_ok(), "the refused delete changed nothing");

    // An explicit deny wins over the allow.
    let deny = json!({"Version": "2012-10-17", "Statement": [
        {"Sid": "NoInvoke", "Effect": "Deny", "Action": "lambda:Invoke*", "Resource": "*"}
    ]});
    iam.put_user_policy()
        .user_name("dev")
        .policy_name("deny")
        .policy_document(deny.to_string())
        .send()
        .await
        .expect("deny");
    let (_, text) =
        refusal(dev.invoke().function_name("allowed").payload(Blob::new("{}")).send().await.expect_err("denied"));
    assert!(text.contains("with an explicit deny in an identity-based policy"), "{text}");
    iam.delete_user_policy().user_name("dev").policy_name("deny").send().await.expect("undeny");

    // The function's own (resource-based) policy can grant what the user's does not.
    root.add_permission()
        .function_name("other")
        .statement_id("dev-may-invoke")
        .action("lambda:InvokeFunction")
        .principal(&dev_arn)
        .send()
        .await
        .expect("add permission");
    let policy = root.get_policy().function_name("other").send().await.expect("get policy");
    assert!(policy.policy().unwrap_or_default().contains("dev-may-invoke"), "{policy:?}");
    let (payload, err, _) = invoke(&dev, "other", json!({"y": 2})).await;
    assert_eq!((payload["event"]["y"].clone(), err), (json!(2), None));
    root.remove_permission().function_name("other").statement_id("dev-may-invoke").send().await.expect("remove");
    assert!(dev.invoke().function_name("other").payload(Blob::new("{}")).send().await.is_err());

    // `kumo iam explain` says which statement decided, and exits 1 on a denial.
    let explain = |resource: &str| {
        let args =
            ["iam", "explain", "--principal", &dev_arn, "--action", "lambda:InvokeFunction", "--resource", resource];
        server.cli().args(args).output().expect("kumo iam explain")
    };
    let out = explain(&other_arn);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("InvokeOne"), "{text}");
    assert!(text.contains(&denied("lambda:InvokeFunction", &other_arn, &dev_arn)), "{text}");
    let out = explain(&allowed_arn);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));

    // Conditions see the request: its source address (loopback here) and plain HTTP.
    let from = |cidr: &str| {
        json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "lambda:ListFunctions", "Resource": "*",
            "Condition": {"IpAddress": {"aws:SourceIp": cidr}, "Bool": {"aws:SecureTransport": "false"}}}]})
        .to_string()
    };
    let put = iam.put_user_policy().user_name("dev").policy_name("list").policy_document(from("10.0.0.0/8"));
    put.send().await.expect("policy");
    assert!(dev.list_functions().send().await.is_err(), "not from 10.0.0.0/8");
    let put = iam.put_user_policy().user_name("dev").policy_name("list").policy_document(from("127.0.0.0/8"));
    put.send().await.expect("policy");
    assert!(dev.list_functions().send().await.is_ok(), "from loopback");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_function_calls_kumo_as_its_role_and_gets_only_what_the_role_allows() {
    let server = Server::start();
    let root = server.lambda();
    let iam = iam_as(&server, ROOT_KEY_ID, ROOT_SECRET);
    // A role Lambda may assume, that allows nothing yet.
    iam.create_role().role_name("lister-role").assume_role_policy_document(LAMBDA_TRUST).send().await.expect("role");
    let role_arn = format!("arn:aws:iam::{ACCOUNT}:role/lister-role");
    // A role that does not trust Lambda is refused at CreateFunction.
    let stranger_trust = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": format!("arn:aws:iam::{ACCOUNT}:root")}, "Action": "sts:AssumeRole"}
    ]});
    iam.create_role()
        .role_name("not-for-lambda")
        .assume_role_policy_document(stranger_trust.to_string())
        .send()
        .await
        .expect("role");
    let zip = fixture_zip("python/list_functions.py", "app.py");
    let runtime = python_with_boto3();
    for role in [format!("arn:aws:iam::{ACCOUNT}:role/not-for-lambda"), format!("arn:aws:iam::{ACCOUNT}:role/missing")]
    {
        let e = root
            .create_function()
            .function_name("lister")
            .runtime(runtime.as_str().into())
            .handler("app.handler")
            .role(&role)
            .code(aws_sdk_lambda::types::FunctionCode::builder().zip_file(Blob::new(zip.clone())).build())
            .send()
            .await
            .expect_err("role Lambda cannot assume");
        let text = format!("{e:?}");
        assert!(text.contains("The role defined for the function cannot be assumed by Lambda."), "{text}");
    }
    root.create_function()
        .function_name("lister")
        .runtime(runtime.as_str().into())
        .handler("app.handler")
        .role(&role_arn)
        .timeout(30)
        .memory_size(512)
        .code(aws_sdk_lambda::types::FunctionCode::builder().zip_file(Blob::new(zip)).build())
        .send()
        .await
        .expect("create");

    let (out, err, tail) = invoke(&root, "lister", json!({})).await;
    assert_eq!(err, None, "{out}\n{tail}");
    assert_eq!(
        out["env"],
        json!({"AWS_ACCESS_KEY_ID": true, "AWS_SECRET_ACCESS_KEY": true, "AWS_SESSION_TOKEN": true})
    );
    assert_eq!(out["ok"], false, "{out}");
    assert_eq!(out["code"], "AccessDeniedException", "{out}");
    let session = format!("arn:aws:sts::{ACCOUNT}:assumed-role/lister-role/lister");
    assert_eq!(out["message"], denied("lambda:ListFunctions", "*", &session), "{out}");

    // Once the role allows it, the same environment's SDK call succeeds.
    let allow = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "lambda:ListFunctions", "Resource": "*"}
    ]});
    let updated = iam.put_role_policy().role_name("lister-role").policy_name("list").policy_document(allow.to_string());
    updated.send().await.expect("role policy");
    let (out, err, _) = invoke(&root, "lister", json!({})).await;
    assert_eq!(err, None, "{out}");
    assert_eq!(out["ok"], true, "{out}");
    assert_eq!(out["functions"], json!(["lister"]), "{out}");

    // The grant on every resource is reported when the configuration names the role.
    let url = format!("{}/2015-03-31/functions/lister/configuration", server.endpoint);
    let body = json!({"Role": role_arn}).to_string();
    let resp = server.send(server.http().put(url).header("content-type", "application/json").body(body)).await;
    let resp = resp.expect("update configuration");
    assert_eq!(resp.status(), 200);
    let warnings: Vec<String> =
        resp.headers().get_all("x-kumo-warning").iter().filter_map(|v| v.to_str().ok().map(str::to_string)).collect();
    assert!(warnings.iter().any(|w| w.contains("allows lambda:ListFunctions on every resource")), "{warnings:?}");

    // The new configuration runs in a new environment, with a new session.
    let (out, err, _) = invoke(&root, "lister", json!({})).await;
    assert_eq!((out["ok"].clone(), err), (json!(true), None), "{out}");

    // A deleted role's sessions stop working, even in a warm environment.
    iam.delete_role_policy().role_name("lister-role").policy_name("list").send().await.expect("delete policy");
    iam.delete_role().role_name("lister-role").send().await.expect("delete role");
    let (out, err, _) = invoke(&root, "lister", json!({})).await;
    assert_eq!(err, None, "{out}");
    assert_eq!(out["ok"], false, "{out}");
    assert_eq!(out["code"], "UnrecognizedClientException", "{out}");
    // And no new environment can start without the role.
    root.update_function_configuration().function_name("lister").memory_size(256).send().await.expect("update");
    let (out, err, _) = invoke(&root, "lister", json!({})).await;
    assert_eq!(err.as_deref(), Some("Unhandled"), "{out}");
    assert_eq!(out["errorMessage"], "The role defined for the function cannot be assumed by Lambda.", "{out}");
}
