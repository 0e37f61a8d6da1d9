//! Create, read, update, delete, versions, aliases and concurrency through aws-sdk-lambda.

use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{AliasRoutingConfiguration, Environment, FunctionCode, Runtime};

use crate::harness::*;

#[tokio::test(flavor = "multi_thread")]
async fn function_crud_matches_lambda_shapes() {
    let server = Server::start();
    let lambda = server.lambda();
    let zip = fixture_zip("python/echo.py", "app.py");
    let created = lambda
        .create_function()
        .function_name("crud")
        .runtime(Runtime::Python312)
        .handler("app.handler")
        .role(ROLE)
        .memory_size(256)
        .timeout(10)
        .description("a test")
        .environment(Environment::builder().variables("CUSTOM", "yes").build())
        .code(FunctionCode::builder().zip_file(Blob::new(zip.clone())).build())
        .send()
        .await
        .expect("create");
    assert_eq!(created.function_name(), Some("crud"));
    assert_eq!(created.function_arn(), Some("arn:aws:lambda:us-east-1:000000000000:function:crud"));
    assert_eq!(created.memory_size(), Some(256));
    assert_eq!(created.timeout(), Some(10));
    assert_eq!(created.version(), Some("$LATEST"));
    assert_eq!(created.code_size(), zip.len() as i64);
    use base64::Engine as _;
    use sha2::Digest as _;
    let sha = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(&zip));
    assert_eq!(created.code_sha256(), Some(sha.as_str()));
    let last_modified = created.last_modified().expect("LastModified");
    assert_eq!(last_modified.len(), "2020-04-10T19:06:32.563+0000".len());
    assert!(last_modified.ends_with("+0000"));
    assert!(created.revision_id().is_some_and(|r| r.len() == 36));
    // As on Lambda, CreateFunction answers Pending and the next read finds it Active.
    assert_eq!(created.state().map(|s| s.as_str()), Some("Pending"));
    assert_eq!(created.state_reason_code().map(|s| s.as_str()), Some("Creating"));

    let got = lambda.get_function().function_name("crud").send().await.expect("get");
    let conf = got.configuration().expect("configuration");
    assert_eq!(conf.state().map(|s| s.as_str()), Some("Active"));
    assert_eq!(conf.last_update_status().map(|s| s.as_str()), Some("Successful"));
    assert_eq!(
        conf.environment().and_then(|e| e.variables()).and_then(|v| v.get("CUSTOM")).map(String::as_str),
        Some("yes")
    );
    assert_eq!(got.code().and_then(|c| c.repository_type()), Some("S3"));
    // The code location serves the package back.
    let location = got.code().and_then(|c| c.location()).expect("location").to_string();
    // A presigned URL: no credentials needed, as with the S3 URL Lambda returns.
    let downloaded = server.http().get(&location).send().await.expect("download").bytes().await.expect("bytes");
    assert_eq!(downloaded.as_ref(), zip.as_slice());
    // Without its signature (or with another), the same URL is refused: code is
    // only for callers allowed to GetFunction.
    let bare = location.split('?').next().expect("path").to_string();
    let forged = location.replace("Signature=", "Signature=0");
    for url in [bare, forged] {
        let status = server.http().get(&url).send().await.expect("download").status();
        assert_eq!(status, 403, "{url}");
    }

    let updated = lambda
        .update_function_configuration()
        .function_name("crud")
        .memory_size(512)
        .send()
        .await
        .expect("update config");
    assert_eq!(updated.memory_size(), Some(512));
    assert_ne!(updated.revision_id(), created.revision_id());
    assert_eq!(updated.timeout(), Some(10), "fields not in the update are kept");

    let new_zip = zip_of(&[("app.py", b"def handler(e, c):\n    return 'v2'\n", 0o644)]);
    let code = lambda
        .update_function_code()
        .function_name("crud")
        .zip_file(Blob::new(new_zip.clone()))
        .send()
        .await
        .expect("update code");
    assert_eq!(code.code_size(), new_zip.len() as i64);
    let (payload, err, _) = invoke(&lambda, "crud", serde_json::json!({})).await;
    assert_eq!((payload, err), (serde_json::json!("v2"), None), "new code runs after the update");

    let list = lambda.list_functions().send().await.expect("list");
    assert_eq!(list.functions().len(), 1);

    lambda.delete_function().function_name("crud").send().await.expect("delete");
    let err = lambda.get_function().function_name("crud").send().await.expect_err("gone");
    let svc = err.into_service_error();
    assert!(svc.is_resource_not_found_exception(), "{svc:?}");
    assert_eq!(svc.meta().message(), Some("Function not found: arn:aws:lambda:us-east-1:000000000000:function:crud"));
}

#[tokio::test(flavor = "multi_thread")]
async fn list_functions_paginates() {
    let server = Server::start();
    let lambda = server.lambda();
    for i in 0..7 {
        create_python(&lambda, &format!("f{i}"), "python3.12", "python/echo.py").await;
    }
    let mut names = Vec::new();
    let mut marker = None;
    loop {
        let page = lambda.list_functions().max_items(3).set_marker(marker).send().await.expect("page");
        assert!(page.functions().len() <= 3);
        names.extend(page.functions().iter().filter_map(|f| f.function_name().map(str::to_string)));
        marker = page.next_marker().map(str::to_string);
        if marker.is_none() {
            break;
        }
    }
    assert_eq!(names, (0..7).map(|i| format!("f{i}")).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread")]
async fn versions_and_aliases() {
    let server = Server::start();
    let lambda = server.lambda();
    create_echo(&lambda, "va", 128, 5).await;
    let v1 = lambda.publish_version().function_name("va").send().await.expect("publish 1");
    assert_eq!(v1.version(), Some("1"));
    assert_eq!(v1.function_arn(), Some("arn:aws:lambda:us-east-1:000000000000:function:va:1"));
    // Nothing changed: Lambda returns the same version.
    let again = lambda.publish_version().function_name("va").send().await.expect("publish again");
    assert_eq!(again.version(), Some("1"));
    lambda.update_function_configuration().function_name("va").memory_size(256).send().await.expect("update");
    let v2 = lambda.publish_version().function_name("va").send().await.expect("publish 2");
    assert_eq!(v2.version(), Some("2"));
    assert_eq!(v2.memory_size(), Some(256));

    let versions = lambda.list_versions_by_function().function_name("va").send().await.expect("versions");
    let labels: Vec<_> = versions.versions().iter().filter_map(|v| v.version()).collect();
    assert_eq!(labels, vec!["$LATEST", "1", "2"]);

    let alias =
        lambda.create_alias().function_name("va").name("live").function_version("1").send().await.expect("alias");
    assert_eq!(alias.alias_arn(), Some("arn:aws:lambda:us-east-1:000000000000:function:va:live"));
    let dup = lambda.create_alias().function_name("va").name("live").function_version("1").send().await;
    let svc = dup.expect_err("duplicate").into_service_error();
    assert!(svc.is_resource_conflict_exception(), "{svc:?}");

    // Invoking through the alias runs version 1 (128 MB), and says so.
    let out = lambda
        .invoke()
        .function_name("va")
        .qualifier("live")
        .payload(Blob::new("{}"))
        .send()
        .await
        .expect("invoke alias");
    assert_eq!(out.executed_version(), Some("1"));
    let by_arn = lambda
        .invoke()
        .function_name("arn:aws:lambda:us-east-1:000000000000:function:va:2")
        .payload(Blob::new("{}"))
        .send()
        .await
        .expect("invoke by ARN");
    assert_eq!(by_arn.executed_version(), Some("2"));

    let moved = lambda
        .update_alias()
        .function_name("va")
        .name("live")
        .function_version("2")
        .routing_config(AliasRoutingConfiguration::builder().additional_version_weights("1", 0.5).build())
        .send()
        .await
        .expect("update alias");
    assert_eq!(moved.function_version(), Some("2"));
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..40 {
        let out = lambda
            .invoke()
            .function_name("va")
            .qualifier("live")
            .payload(Blob::new("{}"))
            .send()
            .await
            .expect("invoke");
        seen.insert(out.executed_version().unwrap_or_default().to_string());
    }
    assert_eq!(seen, ["1", "2"].iter().map(|s| s.to_string()).collect(), "weighted alias routes to both versions");

    // A version an alias uses cannot be deleted.
    let blocked = lambda.delete_function().function_name("va").qualifier("1").send().await;
    assert!(blocked.expect_err("referenced").into_service_error().is_resource_conflict_exception());
    let aliases = lambda.list_aliases().function_name("va").send().await.expect("list aliases");
    assert_eq!(aliases.aliases().len(), 1);
    lambda.delete_alias().function_name("va").name("live").send().await.expect("delete alias");
    lambda.delete_function().function_name("va").qualifier("1").send().await.expect("delete version");
    let missing = lambda.get_function().function_name("va").qualifier("1").send().await;
    assert!(missing.expect_err("deleted version").into_service_error().is_resource_not_found_exception());
    let latest = lambda.delete_function().function_name("va").qualifier("$LATEST").send().await;
    assert!(latest.expect_err("$LATEST").into_service_error().is_invalid_parameter_value_exception());
}

#[tokio::test(flavor = "multi_thread")]
async fn reserved_concurrency_round_trips_and_throttles() {
    let server = Server::start();
    let lambda = server.lambda();
    create_echo(&lambda, "rc", 128, 5).await;
    let put = lambda
        .put_function_concurrency()
        .function_name("rc")
        .reserved_concurrent_executions(0)
        .send()
        .await
        .expect("put");
    assert_eq!(put.reserved_concurrent_executions(), Some(0));
    let got = lambda.get_function_concurrency().function_name("rc").send().await.expect("get");
    assert_eq!(got.reserved_concurrent_executions(), Some(0));
    let throttled = lambda.invoke().function_name("rc").payload(Blob::new("{}")).send().await;
    let svc = throttled.expect_err("throttled").into_service_error();
    match svc {
        aws_sdk_lambda::operation::invoke::InvokeError::TooManyRequestsException(e) => {
            assert_eq!(e.reason().map(|r| r.as_str()), Some("ReservedFunctionConcurrentInvocationLimitExceeded"));
        }
        other => panic!("expected TooManyRequestsException, got {other:?}"),
    }
    let too_much =
        lambda.put_function_concurrency().function_name("rc").reserved_concurrent_executions(950).send().await;
    assert!(too_much.expect_err("over").into_service_error().is_invalid_parameter_value_exception());
    lambda.delete_function_concurrency().function_name("rc").send().await.expect("delete");
    let (payload, err, _) = invoke(&lambda, "rc", serde_json::json!({"x": 1})).await;
    assert_eq!(err, None);
    assert_eq!(payload["event"]["x"], 1);
    let settings = lambda.get_account_settings().send().await.expect("settings");
    assert_eq!(settings.account_limit().map(|l| l.concurrent_executions()), Some(1000));
}
