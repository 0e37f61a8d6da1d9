//! The S3 API with aws-sdk-s3: buckets, objects, listings, ranges and
//! conditions, multipart, presigned URLs, streaming uploads, and IAM on s3:*.

use std::time::Duration;

use aws_sdk_lambda::config::Credentials;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, Delete, ObjectIdentifier};
use serde_json::json;

use crate::harness::*;

fn service_code<E: aws_sdk_s3::error::ProvideErrorMetadata + std::fmt::Debug, R: std::fmt::Debug>(
    e: &aws_sdk_s3::error::SdkError<E, R>,
) -> String {
    match e {
        aws_sdk_s3::error::SdkError::ServiceError(s) => s.err().code().unwrap_or_default().to_string(),
        other => format!("{other:?}"),
    }
}

fn md5_hex(data: &[u8]) -> String {
    use md5::Digest;
    md5::Md5::digest(data).iter().map(|b| format!("{b:02x}")).collect()
}

async fn read_all(out: aws_sdk_s3::operation::get_object::GetObjectOutput) -> Vec<u8> {
    out.body.collect().await.expect("body").into_bytes().to_vec()
}

#[tokio::test(flavor = "multi_thread")]
async fn buckets_and_objects_work_with_the_sdk() {
    let server = Server::start();
    let s3 = server.s3();
    s3.create_bucket().bucket("photos").send().await.expect("create bucket");
    let again = s3.create_bucket().bucket("photos").send().await.expect_err("exists");
    assert_eq!(service_code(&again), "BucketAlreadyOwnedByYou");
    s3.head_bucket().bucket("photos").send().await.expect("head bucket");
    let buckets = s3.list_buckets().send().await.expect("list buckets");
    assert_eq!(buckets.buckets().iter().filter_map(|b| b.name()).collect::<Vec<_>>(), ["photos"]);
    let location = s3.get_bucket_location().bucket("photos").send().await.expect("location");
    assert!(location.location_constraint().is_none_or(|c| c.as_str().is_empty()), "us-east-1 is the empty constraint");

    // PUT with a content type and user metadata; the ETag is the body's MD5.
    let body = b"0123456789abcdef".to_vec();
    let put = s3
        .put_object()
        .bucket("photos")
        .key("dir/a b+c.txt")
        .content_type("text/plain")
        .metadata("owner", "kumo")
        .body(ByteStream::from(body.clone()))
        .send()
        .await
        .expect("put");
    assert_eq!(put.e_tag(), Some(format!("\"{}\"", md5_hex(&body)).as_str()));
    let got = s3.get_object().bucket("photos").key("dir/a b+c.txt").send().await.expect("get");
    assert_eq!(got.content_type(), Some("text/plain"));
    assert_eq!(got.metadata().and_then(|m| m.get("owner")).map(String::as_str), Some("kumo"));
    let etag = got.e_tag().unwrap_or_default().to_string();
    assert_eq!(read_all(got).await, body);

    // Range reads, from the start, the middle and the end.
    let ranged = s3.get_object().bucket("photos").key("dir/a b+c.txt").range("bytes=2-5").send().await.expect("range");
    assert_eq!(ranged.content_range(), Some("bytes 2-5/16"));
    assert_eq!(read_all(ranged).await, b"2345");
    let tail = s3.get_object().bucket("photos").key("dir/a b+c.txt").range("bytes=-3").send().await.expect("suffix");
    assert_eq!(read_all(tail).await, b"def");
    let bad = s3.get_object().bucket("photos").key("dir/a b+c.txt").range("bytes=100-200").send().await;
    assert_eq!(service_code(&bad.expect_err("unsatisfiable")), "InvalidRange");

    // Conditional requests.
    let not_modified = s3.get_object().bucket("photos").key("dir/a b+c.txt").if_none_match(&etag).send().await;
    assert!(format!("{:?}", not_modified.expect_err("304")).contains("304"));
    let failed = s3.get_object().bucket("photos").key("dir/a b+c.txt").if_match("\"nope\"").send().await;
    assert_eq!(service_code(&failed.expect_err("412")), "PreconditionFailed");
    s3.get_object().bucket("photos").key("dir/a b+c.txt").if_match(&etag).send().await.expect("if-match holds");

    let head = s3.head_object().bucket("photos").key("dir/a b+c.txt").send().await.expect("head");
    assert_eq!(head.content_length(), Some(16));
    let missing = s3.get_object().bucket("photos").key("nope").send().await.expect_err("missing");
    assert_eq!(service_code(&missing), "NoSuchKey");
    let no_bucket = s3.get_object().bucket("nobucket").key("k").send().await.expect_err("no bucket");
    assert_eq!(service_code(&no_bucket), "NoSuchBucket");

    // Copy keeps the bytes and the metadata.
    s3.copy_object()
        .bucket("photos")
        .key("copy.txt")
        .copy_source("photos/dir/a%20b%2Bc.txt")
        .send()
        .await
        .expect("copy");
    let copied = s3.get_object().bucket("photos").key("copy.txt").send().await.expect("get copy");
    assert_eq!(copied.metadata().and_then(|m| m.get("owner")).map(String::as_str), Some("kumo"));
    assert_eq!(read_all(copied).await, body);

    // Listings: prefixes, delimiters and continuation tokens (V2), markers (V1).
    for key in ["logs/2026/01/a", "logs/2026/01/b", "logs/2026/02/c", "logs/x", "logs/y", "other"] {
        s3.put_object().bucket("photos").key(key).body(ByteStream::from_static(b"x")).send().await.expect("put");
    }
    let mut keys = Vec::new();
    let mut token = None;
    let mut pages = 0;
    loop {
        let page = s3
            .list_objects_v2()
            .bucket("photos")
            .prefix("logs/")
            .max_keys(2)
            .set_continuation_token(token.clone())
            .send()
            .await
            .expect("list page");
        pages += 1;
        keys.extend(page.contents().iter().filter_map(|o| o.key()).map(str::to_string));
        token = page.next_continuation_token().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    assert_eq!(keys, ["logs/2026/01/a", "logs/2026/01/b", "logs/2026/02/c", "logs/x", "logs/y"]);
    assert_eq!(pages, 3);
    let grouped = s3.list_objects_v2().bucket("photos").prefix("logs/").delimiter("/").send().await.expect("grouped");
    let prefixes: Vec<&str> = grouped.common_prefixes().iter().filter_map(|p| p.prefix()).collect();
    assert_eq!(prefixes, ["logs/2026/"]);
    let direct: Vec<&str> = grouped.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(direct, ["logs/x", "logs/y"]);
    let mut first = Vec::new();
    let mut token = None;
    loop {
        let page = s3
            .list_objects_v2()
            .bucket("photos")
            .delimiter("/")
            .max_keys(1)
            .set_continuation_token(token.clone())
            .send()
            .await
            .expect("grouped page");
        first.extend(page.common_prefixes().iter().filter_map(|p| p.prefix()).map(str::to_string));
        first.extend(page.contents().iter().filter_map(|o| o.key()).map(str::to_string));
        token = page.next_continuation_token().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    assert_eq!(first, ["copy.txt", "dir/", "logs/", "other"], "a common prefix is one entry across pages");
    let v1 = s3.list_objects().bucket("photos").prefix("logs/2026/").marker("logs/2026/01/a").send().await.expect("v1");
    let v1_keys: Vec<&str> = v1.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(v1_keys, ["logs/2026/01/b", "logs/2026/02/c"]);

    // Deletes, one and many; a bucket with objects cannot be deleted.
    let busy = s3.delete_bucket().bucket("photos").send().await.expect_err("not empty");
    assert_eq!(service_code(&busy), "BucketNotEmpty");
    s3.delete_object().bucket("photos").key("other").send().await.expect("delete");
    let ids: Vec<ObjectIdentifier> =
        ["logs/x", "logs/y"].iter().map(|k| ObjectIdentifier::builder().key(*k).build().expect("id")).collect();
    let deleted = s3
        .delete_objects()
        .bucket("photos")
        .delete(Delete::builder().set_objects(Some(ids)).build().expect("delete"))
        .send()
        .await
        .expect("delete objects");
    assert_eq!(deleted.deleted().len(), 2);
    let left = s3.list_objects_v2().bucket("photos").prefix("logs/").send().await.expect("list");
    assert_eq!(left.key_count(), Some(3));
}

#[tokio::test(flavor = "multi_thread")]
async fn multipart_presigned_and_streaming_uploads() {
    let server = Server::start();
    let s3 = server.s3();
    s3.create_bucket().bucket("big").send().await.expect("bucket");

    // A 20 MB object in three parts (7 + 7 + 6 MB).
    let data: Vec<u8> = (0..20_000_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    let upload = s3.create_multipart_upload().bucket("big").key("blob.bin").send().await.expect("create upload");
    let upload_id = upload.upload_id().expect("upload id").to_string();
    let mut completed = Vec::new();
    let mut part_md5s = Vec::new();
    for (i, chunk) in data.chunks(7_000_000).enumerate() {
        let n = i as i32 + 1;
        let part = s3
            .upload_part()
            .bucket("big")
            .key("blob.bin")
            .upload_id(&upload_id)
            .part_number(n)
            .body(ByteStream::from(chunk.to_vec()))
            .send()
            .await
            .expect("upload part");
        part_md5s.push(md5_hex(chunk));
        completed.push(CompletedPart::builder().part_number(n).e_tag(part.e_tag().unwrap_or_default()).build());
    }
    let parts = s3.list_parts().bucket("big").key("blob.bin").upload_id(&upload_id).send().await.expect("list parts");
    assert_eq!(parts.parts().len(), 3);
    let done = s3
        .complete_multipart_upload()
        .bucket("big")
        .key("blob.bin")
        .upload_id(&upload_id)
        .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(completed)).build())
        .send()
        .await
        .expect("complete");
    // S3's multipart ETag: MD5 of the parts' MD5s, then -N.
    let mut joined = Vec::new();
    for h in &part_md5s {
        joined.extend((0..16).map(|i| u8::from_str_radix(&h[2 * i..2 * i + 2], 16).unwrap_or(0)));
    }
    assert_eq!(done.e_tag(), Some(format!("\"{}-3\"", md5_hex(&joined)).as_str()));
    let got = s3.get_object().bucket("big").key("blob.bin").send().await.expect("get");
    assert_eq!(got.content_length(), Some(20_000_000));
    assert!(read_all(got).await == data, "the multipart object reads back byte for byte");
    let middle =
        s3.get_object().bucket("big").key("blob.bin").range("bytes=6999998-7000001").send().await.expect("range");
    assert_eq!(read_all(middle).await, data[6_999_998..7_000_002].to_vec(), "a range across a part boundary");

    // An aborted upload leaves nothing; a small non-last part is refused.
    let aborted = s3.create_multipart_upload().bucket("big").key("gone").send().await.expect("create");
    let id = aborted.upload_id().expect("id");
    s3.abort_multipart_upload().bucket("big").key("gone").upload_id(id).send().await.expect("abort");
    let after = s3.list_parts().bucket("big").key("gone").upload_id(id).send().await.expect_err("no upload");
    assert_eq!(service_code(&after), "NoSuchUpload");
    let small = s3.create_multipart_upload().bucket("big").key("small").send().await.expect("create");
    let id = small.upload_id().expect("id").to_string();
    let mut parts = Vec::new();
    for n in 1..=2 {
        let p = s3
            .upload_part()
            .bucket("big")
            .key("small")
            .upload_id(&id)
            .part_number(n)
            .body(ByteStream::from_static(b"tiny"))
            .send()
            .await
            .expect("part");
        parts.push(CompletedPart::builder().part_number(n).e_tag(p.e_tag().unwrap_or_default()).build());
    }
    let refused = s3
        .complete_multipart_upload()
        .bucket("big")
        .key("small")
        .upload_id(&id)
        .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
        .send()
        .await
        .expect_err("too small");
    assert_eq!(service_code(&refused), "EntityTooSmall");

    // Presigned PUT and GET, with plain HTTP and no SDK.
    let config = PresigningConfig::expires_in(Duration::from_secs(300)).expect("presign config");
    let put = s3.put_object().bucket("big").key("shared.txt").presigned(config.clone()).await.expect("presign put");
    let http = server.http();
    let resp = http.put(put.uri()).body("shared bytes").send().await.expect("presigned put");
    assert_eq!(resp.status(), 200, "{:?}", resp.text().await);
    let get = s3.get_object().bucket("big").key("shared.txt").presigned(config).await.expect("presign get");
    let resp = http.get(get.uri()).send().await.expect("presigned get");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.expect("text"), "shared bytes");
    let tampered = get.uri().replace("shared.txt", "blob.bin");
    let resp = http.get(tampered).send().await.expect("tampered get");
    assert_eq!(resp.status(), 403, "a presigned URL is for its own object only");
    let unsigned = http.get(format!("{}/big/shared.txt", server.endpoint)).send().await.expect("unsigned");
    assert_eq!(unsigned.status(), 403);

    // A streaming upload of unknown length (aws-chunked with a trailing checksum).
    let path = server.data_dir.join("stream-src.bin");
    std::fs::write(&path, vec![7u8; 3 * 1024 * 1024 + 11]).expect("write file");
    let body = ByteStream::from_path(&path).await.expect("stream from path");
    s3.put_object()
        .bucket("big")
        .key("streamed.bin")
        .body(body)
        .checksum_algorithm(aws_sdk_s3::types::ChecksumAlgorithm::Crc32)
        .send()
        .await
        .expect("streaming put");
    let streamed = s3.head_object().bucket("big").key("streamed.bin").send().await.expect("head");
    assert_eq!(streamed.content_length(), Some(3 * 1024 * 1024 + 11));
}

#[tokio::test(flavor = "multi_thread")]
async fn s3_actions_are_decided_by_iam() {
    let server = Server::start();
    let s3 = server.s3();
    s3.create_bucket().bucket("shared").send().await.expect("bucket");
    s3.create_bucket().bucket("private").send().await.expect("bucket");
    s3.put_object().bucket("private").key("secret").body(ByteStream::from_static(b"s")).send().await.expect("put");
    let iam = server.iam();
    iam.create_user().user_name("reader").send().await.expect("user");
    let policy = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"], "Resource": "arn:aws:s3:::shared/inbox/*"},
        {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::shared"}
    ]});
    iam.put_user_policy()
        .user_name("reader")
        .policy_name("inbox")
        .policy_document(policy.to_string())
        .send()
        .await
        .expect("policy");
    let key = iam.create_access_key().user_name("reader").send().await.expect("key");
    let key = key.access_key().expect("key");
    let reader = server.s3_as(Credentials::new(key.access_key_id(), key.secret_access_key(), None, None, "t"));
    reader
        .put_object()
        .bucket("shared")
        .key("inbox/a")
        .body(ByteStream::from_static(b"a"))
        .send()
        .await
        .expect("allowed put");
    reader.get_object().bucket("shared").key("inbox/a").send().await.expect("allowed get");
    reader.list_objects_v2().bucket("shared").send().await.expect("allowed list");
    let e = reader.get_object().bucket("private").key("secret").send().await.expect_err("denied");
    assert_eq!(service_code(&e), "AccessDenied");
    let text = format!("{e:?}");
    assert!(
        text.contains(
            "User: arn:aws:iam::000000000000:user/reader is not authorized to perform: s3:GetObject on resource: arn:aws:s3:::private/secret because no identity-based policy allows the s3:GetObject action"
        ),
        "{text}"
    );
    let e = reader.put_object().bucket("shared").key("outside").body(ByteStream::from_static(b"x")).send().await;
    assert_eq!(service_code(&e.expect_err("outside the prefix")), "AccessDenied");
    // CopyObject needs read on the source as well as write on the destination.
    let e = reader.copy_object().bucket("shared").key("inbox/stolen").copy_source("private/secret").send().await;
    assert_eq!(service_code(&e.expect_err("source unreadable")), "AccessDenied");
    assert!(s3.head_object().bucket("shared").key("inbox/stolen").send().await.is_err(), "nothing was copied");
    let e = reader.list_buckets().send().await.expect_err("no ListAllMyBuckets");
    assert_eq!(service_code(&e), "AccessDenied");
    // A wrong secret is refused before anything runs.
    let forger = server.s3_as(Credentials::new(key.access_key_id(), "wrong-secret", None, None, "t"));
    let e = forger.get_object().bucket("shared").key("inbox/a").send().await.expect_err("forged");
    assert_eq!(service_code(&e), "SignatureDoesNotMatch");
}

#[tokio::test(flavor = "multi_thread")]
async fn virtual_hosted_style_requests_name_the_bucket_in_the_host() {
    let server = Server::start();
    let s3 = server.s3();
    s3.create_bucket().bucket("vhost").send().await.expect("bucket");
    s3.put_object().bucket("vhost").key("hello.txt").body(ByteStream::from_static(b"hi")).send().await.expect("put");
    let port = server.endpoint.rsplit(':').next().expect("port").to_string();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    // `*.localhost` may not resolve on the machine: the client is told where it is.
    let http = reqwest::Client::builder()
        .no_proxy()
        .resolve("vhost.localhost", addr)
        .resolve("vhost.s3.localhost", addr)
        .build()
        .expect("client");
    for host in ["vhost.localhost", "vhost.s3.localhost"] {
        let host_header = format!("{host}:{port}");
        let empty = kumo_core::sigv4::sha256_hex(b"");
        let headers = [("host", host_header.as_bytes()), ("x-amz-content-sha256", empty.as_bytes())];
        let parts = kumo_core::sigv4::RequestParts {
            method: "GET",
            path: "/hello.txt",
            query: "",
            headers: &headers,
            payload_sha256: &empty,
        };
        let signer = kumo_core::sigv4::Signer {
            access_key_id: ROOT_KEY_ID,
            secret_access_key: ROOT_SECRET,
            session_token: None,
            region: "us-east-1",
            service: "s3",
        };
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs();
        let signed = signer.headers(&parts, &kumo_core::sigv4::format_amz_date(now as i64)).expect("sign");
        let mut req = http.get(format!("http://{host_header}/hello.txt")).header("x-amz-content-sha256", &empty);
        for (name, value) in signed {
            req = req.header(name, value);
        }
        let resp = req.send().await.expect("virtual-hosted get");
        assert_eq!(resp.status(), 200, "{host}: {:?}", resp.text().await);
        assert_eq!(resp.text().await.expect("body"), "hi");
    }
}

/// The server's peak resident memory (VmHWM), in MiB.
fn peak_rss_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("VmHWM");
    kb / 1024
}

#[tokio::test(flavor = "multi_thread")]
async fn a_large_put_streams_to_disk() {
    let server = Server::start();
    let s3 = server.s3();
    s3.create_bucket().bucket("large").send().await.expect("bucket");
    s3.put_object().bucket("large").key("warm").body(ByteStream::from_static(b"w")).send().await.expect("warm-up");
    let before = peak_rss_mib(server.pid());
    // 400 MiB from a file, streamed by the SDK; the server must not hold it in memory.
    let path = server.data_dir.join("large-src.bin");
    {
        use std::io::Write;
        let mut f = std::io::BufWriter::new(std::fs::File::create(&path).expect("file"));
        let block: Vec<u8> = (0..1024 * 1024).map(|i| (i % 251) as u8).collect();
        for _ in 0..400 {
            f.write_all(&block).expect("write");
        }
    }
    let body = ByteStream::from_path(&path).await.expect("stream");
    s3.put_object().bucket("large").key("big").body(body).send().await.expect("large put");
    let head = s3.head_object().bucket("large").key("big").send().await.expect("head");
    assert_eq!(head.content_length(), Some(400 * 1024 * 1024));
    let mut got = s3.get_object().bucket("large").key("big").send().await.expect("get").body;
    let mut n = 0usize;
    while let Some(chunk) = got.try_next().await.expect("chunk") {
        assert!(chunk.iter().enumerate().all(|(i, b)| *b == ((n + i) % (1024 * 1024) % 251) as u8), "byte at {n}");
        n += chunk.len();
    }
    assert_eq!(n, 400 * 1024 * 1024);
    let after = peak_rss_mib(server.pid());
    eprintln!("server peak RSS {before} MiB before, {after} MiB after a 400 MiB PUT and GET");
    assert!(after < before + 64, "a 400 MiB PUT raised the server's peak memory from {before} to {after} MiB");
    let _ = std::fs::remove_file(&path);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_s3_requests_get_s3_errors_and_change_nothing() {
    let server = Server::start();
    let s3 = server.s3();
    let e = s3.create_bucket().bucket("Bad_Name").send().await.expect_err("invalid name");
    assert_eq!(service_code(&e), "InvalidBucketName");
    let text = format!("{e:?}");
    assert!(text.contains("The specified bucket is not valid."), "{text}");
    s3.create_bucket().bucket("fine").send().await.expect("bucket");
    s3.put_object().bucket("fine").key("k").body(ByteStream::from_static(b"v1")).send().await.expect("put");
    // A body that does not match its Content-MD5 is refused, and the old object stays.
    let e = s3
        .put_object()
        .bucket("fine")
        .key("k")
        .content_md5("AAAAAAAAAAAAAAAAAAAAAA==")
        .body(ByteStream::from_static(b"v2"))
        .send()
        .await
        .expect_err("bad digest");
    assert_eq!(service_code(&e), "BadDigest");
    let got = s3.get_object().bucket("fine").key("k").send().await.expect("get");
    assert_eq!(got.body.collect().await.expect("b").into_bytes().as_ref(), b"v1");
    // Raw protocol garbage: malformed XML, unknown upload ids, a bucket that does not exist.
    let url = format!("{}/fine?notification", server.endpoint);
    let resp = server.http().put(&url).body("<not-xml").send().await.expect("unsigned put");
    assert_eq!(resp.status(), 403, "unsigned requests are refused before parsing");
    let e = s3
        .put_bucket_notification_configuration()
        .bucket("fine")
        .notification_configuration(
            aws_sdk_s3::types::NotificationConfiguration::builder()
                .lambda_function_configurations(
                    aws_sdk_s3::types::LambdaFunctionConfiguration::builder()
                        .lambda_function_arn("arn:aws:lambda:us-east-1:000000000000:function:nope")
                        .events(aws_sdk_s3::types::Event::from("s3:ObjectCreated:*"))
                        .build()
                        .expect("config"),
                )
                .build(),
        )
        .send()
        .await
        .expect_err("function does not exist");
    assert_eq!(service_code(&e), "InvalidArgument");
    let e = s3.upload_part().bucket("fine").key("k").upload_id("nope").part_number(1).send().await;
    assert_eq!(service_code(&e.expect_err("no upload")), "NoSuchUpload");
    let e = s3.put_object().bucket("missing-bucket").key("k").body(ByteStream::from_static(b"x")).send().await;
    assert_eq!(service_code(&e.expect_err("no bucket")), "NoSuchBucket");
    let listed = s3.list_objects_v2().bucket("fine").send().await.expect("list");
    assert_eq!(listed.key_count(), Some(1), "nothing was written by the refused requests");
}
