//! `cargo bench --bench auth`: what authentication (SigV4 verification) and
//! authorisation (IAM policy evaluation) cost per request, in process.
//!
//! A user with three identity policies signs a Lambda Invoke the way an SDK
//! does; each sample runs Kumo's authenticator and authorizer on it, as the
//! middleware does for every request. Reported: the median over 30 batches of
//! 2,000 requests, per request. Nothing is asserted.

use std::sync::Arc;
use std::time::Instant;

use kumo::api::auth::{Authenticator, Protocol};
use kumo::api::authorize::{Ask, Authorizer, NoResourcePolicies};
use kumo::iam::{AuthMode, IamDirectory, Identity, IdentityKind, ResolvedKey};
use kumo_core::sigv4::{RequestParts, Signer, format_amz_date, sha256_hex};

const KEY_ID: &str = "AKIAKUMOBENCHUSER001";
const SECRET: &str = "bench-user-secret-0000000000000000000000";

struct Directory {
    policies: Vec<(String, String)>,
}

fn user() -> Identity {
    Identity {
        arn: "arn:aws:iam::000000000000:user/dev".into(),
        account: "000000000000".into(),
        user_id: "AIDAKUMOBENCH0000001".into(),
        kind: IdentityKind::User { name: "dev".into() },
        access_key_id: Some(KEY_ID.into()),
    }
}

impl IamDirectory for Directory {
    fn resolve_access_key(&self, access_key_id: &str, _now_ms: i64) -> Option<ResolvedKey> {
        (access_key_id == KEY_ID).then(|| ResolvedKey {
            secret_access_key: SECRET.into(),
            identity: user(),
            session_token: None,
            expired: false,
        })
    }

    fn identity_policies(&self, _identity: &Identity) -> Vec<(String, String)> {
        self.policies.clone()
    }
}

fn median_ns(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn main() {
    let directory = Arc::new(Directory {
        policies: vec![
            ("inline policy logs of user dev".into(), r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["logs:CreateLogGroup","logs:CreateLogStream","logs:PutLogEvents"],"Resource":"arn:aws:logs:*:*:*"}]}"#.into()),
            ("arn:aws:iam::000000000000:policy/invoke".into(), r#"{"Version":"2012-10-17","Statement":[{"Sid":"Invoke","Effect":"Allow","Action":"lambda:InvokeFunction","Resource":"arn:aws:lambda:us-east-1:000000000000:function:hello*","Condition":{"StringEquals":{"aws:username":"${aws:username}"}}}]}"#.into()),
            ("arn:aws:iam::000000000000:policy/deny-delete".into(), r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":["lambda:Delete*","iam:*"],"Resource":"*"}]}"#.into()),
        ],
    });
    let authenticator = Authenticator::new(AuthMode::Sigv4, "000000000000", "us-east-1", None, directory.clone());
    let authorizer = Authorizer::new("000000000000", "us-east-1", directory, Arc::new(NoResourcePolicies));

    let body = br#"{"hello":"world"}"#;
    let payload = sha256_hex(body);
    let base: Vec<(&str, &[u8])> = vec![
        ("host", b"127.0.0.1:9777"),
        ("content-type", b"application/json"),
        ("x-amz-invocation-type", b"RequestResponse"),
        ("user-agent", b"aws-sdk-rust/1.3 os/linux lang/rust/1.95"),
    ];
    let path = "/2015-03-31/functions/hello/invocations";
    let parts = RequestParts { method: "POST", path, query: "", headers: &base, payload_sha256: &payload };
    let signer = Signer {
        access_key_id: KEY_ID,
        secret_access_key: SECRET,
        session_token: None,
        region: "us-east-1",
        service: "lambda",
    };
    let now_s = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs() as i64;
    let added = signer.headers(&parts, &format_amz_date(now_s)).expect("sign");
    let mut headers = base.clone();
    headers.extend(added.iter().map(|(n, v)| (n.as_str(), v.as_bytes())));
    let request = RequestParts { headers: &headers, ..parts };
    let ask = Ask {
        action: "lambda:InvokeFunction".into(),
        resource: "arn:aws:lambda:us-east-1:000000000000:function:hello".into(),
    };
    let now_ms = now_s * 1000;

    let identity = authenticator.authenticate(&request, Protocol::RestJson, now_ms).expect("authenticates");
    assert!(authorizer.decide(&identity, &ask, now_ms).is_allowed(), "the bench request must be allowed");

    let batch = 2_000;
    let mut authn = Vec::new();
    let mut authz = Vec::new();
    let mut both = Vec::new();
    let mut body_hash = Vec::new();
    for _ in 0..30 {
        let t = Instant::now();
        for _ in 0..batch {
            std::hint::black_box(sha256_hex(std::hint::black_box(body)));
        }
        body_hash.push(t.elapsed().as_nanos() as f64 / batch as f64);
        let t = Instant::now();
        for _ in 0..batch {
            std::hint::black_box(authenticator.authenticate(&request, Protocol::RestJson, now_ms).is_ok());
        }
        authn.push(t.elapsed().as_nanos() as f64 / batch as f64);
        let t = Instant::now();
        for _ in 0..batch {
            std::hint::black_box(authorizer.decide(&identity, &ask, now_ms).is_allowed());
        }
        authz.push(t.elapsed().as_nanos() as f64 / batch as f64);
        let t = Instant::now();
        for _ in 0..batch {
            let id = authenticator.authenticate(&request, Protocol::RestJson, now_ms).expect("authn");
            std::hint::black_box(authorizer.decide(&id, &ask, now_ms).is_allowed());
        }
        both.push(t.elapsed().as_nanos() as f64 / batch as f64);
    }
    println!("per request, median of 30 batches of {batch} (a user with 3 policies, a signed Lambda Invoke):");
    println!("  body SHA-256 (17 bytes)            {:>8.2} us", median_ns(body_hash) / 1e3);
    println!("  authentication (SigV4, cached key) {:>8.2} us", median_ns(authn) / 1e3);
    println!("  authorisation (3 policies)         {:>8.2} us", median_ns(authz) / 1e3);
    println!("  both                               {:>8.2} us", median_ns(both) / 1e3);
}
