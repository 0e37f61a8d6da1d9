//! Function URLs: the configuration (CreateFunctionUrlConfig and friends), the
//! URL ids and hosts, and the pure halves of the data plane: an HTTP request
//! as Lambda's payload format 2.0 event ([`event`]), the function's answer as an
//! HTTP response ([`response`]) and the CORS rules a URL applies ([`cors`]).
//!
//! Kumo serves a URL at `http://<url-id>.lambda-url.<region>.localhost:<port>/`
//! (Terraform's `url_id` is the first DNS label, so the id leads as on AWS) and,
//! for clients that cannot set a Host header, at `/_kumo/url/<url-id>/...`.

pub mod cors;
pub mod event;
pub mod response;
pub mod stream;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::error::{ApiError, ErrorCode};
pub use cors::Cors;

/// The length of a URL id (AWS's are 32 lowercase letters and digits).
pub const URL_ID_LEN: usize = 32;

/// The prefix of the path form of a URL.
pub const PATH_PREFIX: &str = "/_kumo/url/";

/// Who may call a URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AuthType {
    /// Anyone, if the function's resource policy lets `*` call `lambda:InvokeFunctionUrl`.
    #[serde(rename = "NONE")]
    None,
    /// SigV4-signed callers allowed `lambda:InvokeFunctionUrl`.
    #[serde(rename = "AWS_IAM")]
    AwsIam,
}

impl AuthType {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthType::None => "NONE",
            AuthType::AwsIam => "AWS_IAM",
        }
    }

    fn parse(s: &str) -> Result<AuthType, ApiError> {
        match s {
            "NONE" => Ok(AuthType::None),
            "AWS_IAM" => Ok(AuthType::AwsIam),
            other => Err(validation(other, "authType", "Member must satisfy enum value set: [AWS_IAM, NONE]")),
        }
    }
}

/// How the function's answer is sent (RESPONSE_STREAM passes a streamed answer on as it arrives).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum InvokeMode {
    #[default]
    #[serde(rename = "BUFFERED")]
    Buffered,
    #[serde(rename = "RESPONSE_STREAM")]
    ResponseStream,
}

impl InvokeMode {
    pub fn as_str(self) -> &'static str {
        match self {
            InvokeMode::Buffered => "BUFFERED",
            InvokeMode::ResponseStream => "RESPONSE_STREAM",
        }
    }

    fn parse(s: &str) -> Result<InvokeMode, ApiError> {
        match s {
            "BUFFERED" => Ok(InvokeMode::Buffered),
            "RESPONSE_STREAM" => Ok(InvokeMode::ResponseStream),
            other => {
                Err(validation(other, "invokeMode", "Member must satisfy enum value set: [RESPONSE_STREAM, BUFFERED]"))
            }
        }
    }
}

/// One stored URL configuration (of a function or one of its aliases).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionUrlConfig {
    pub url_id: String,
    pub auth_type: AuthType,
    #[serde(default)]
    pub cors: Option<Cors>,
    #[serde(default)]
    pub invoke_mode: InvokeMode,
    pub created_ms: i64,
    pub last_modified_ms: i64,
}

/// The members of a Create or Update request, as sent.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UrlConfigInput {
    pub auth_type: Option<String>,
    pub cors: Option<Cors>,
    pub invoke_mode: Option<String>,
}

pub(crate) fn validation(value: &str, member: &str, constraint: &str) -> ApiError {
    ApiError::new(
        ErrorCode::Validation,
        format!(
            "1 validation error detected: Value '{value}' at '{member}' failed to satisfy constraint: {constraint}"
        ),
    )
}

impl UrlConfigInput {
    /// Reads a request body (already JSON). Members of the wrong type are
    /// refused as Lambda's deserializer refuses them.
    pub fn from_json(v: &Value) -> Result<UrlConfigInput, ApiError> {
        let text = |member: &str| -> Result<Option<String>, ApiError> {
            match v.get(member) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(other) => Err(serialization(member, other)),
            }
        };
        let cors = match v.get("Cors") {
            None | Some(Value::Null) => None,
            Some(c) => Some(Cors::from_json(c)?),
        };
        Ok(UrlConfigInput { auth_type: text("AuthType")?, cors, invoke_mode: text("InvokeMode")? })
    }

    fn check(&self) -> Result<(Option<AuthType>, Option<InvokeMode>), ApiError> {
        let auth = self.auth_type.as_deref().map(AuthType::parse).transpose()?;
        if let Some(c) = &self.cors {
            c.validate()?;
        }
        let mode = self.invoke_mode.as_deref().map(InvokeMode::parse).transpose()?;
        Ok((auth, mode))
    }

    /// CreateFunctionUrlConfig: `AuthType` is required.
    pub fn create(&self, url_id: String, now_ms: i64) -> Result<FunctionUrlConfig, ApiError> {
        let (auth, mode) = self.check()?;
        let auth_type = auth.ok_or_else(|| {
            ApiError::new(
                ErrorCode::Validation,
                "1 validation error detected: Value null at 'authType' failed to satisfy constraint: Member must not be null",
            )
        })?;
        Ok(FunctionUrlConfig {
            url_id,
            auth_type,
            cors: self.cors.clone(),
            invoke_mode: mode.unwrap_or_default(),
            created_ms: now_ms,
            last_modified_ms: now_ms,
        })
    }

    /// UpdateFunctionUrlConfig: members sent replace the stored ones, the rest stay.
    pub fn update(&self, existing: &FunctionUrlConfig, now_ms: i64) -> Result<FunctionUrlConfig, ApiError> {
        let (auth, mode) = self.check()?;
        Ok(FunctionUrlConfig {
            url_id: existing.url_id.clone(),
            auth_type: auth.unwrap_or(existing.auth_type),
            cors: self.cors.clone().or_else(|| existing.cors.clone()),
            invoke_mode: mode.unwrap_or(existing.invoke_mode),
            created_ms: existing.created_ms,
            last_modified_ms: now_ms,
        })
    }
}

pub(crate) fn serialization(member: &str, value: &Value) -> ApiError {
    ApiError::new(
        ErrorCode::Serialization,
        format!("Unexpected value {value} for member {member}: the request could not be deserialized"),
    )
}

/// A URL-config `Qualifier` must be an alias name: Lambda's pattern refuses
/// `$LATEST` and version numbers.
pub fn check_qualifier(qualifier: &str) -> Result<(), ApiError> {
    let ok = !qualifier.is_empty()
        && qualifier.len() <= 128
        && !qualifier.bytes().all(|b| b.is_ascii_digit())
        && qualifier.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(validation(
            qualifier,
            "qualifier",
            "Member must satisfy regular expression pattern: ((?!^\\d+$)^[0-9a-zA-Z-_]+$)",
        ))
    }
}

/// A URL id from 32 random bytes (the caller's randomness; the core has none).
/// The modulo bias (256 is not a multiple of 36) leaves ~164 bits of entropy: plenty.
pub fn url_id_from_random(bytes: &[u8; URL_ID_LEN]) -> String {
    const ALPHABET: &[u8; 36] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    bytes.iter().map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char).collect()
}

pub fn is_url_id(s: &str) -> bool {
    s.len() == URL_ID_LEN && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// The URL a configuration is served at.
pub fn function_url(url_id: &str, region: &str, port: u16) -> String {
    format!("http://{}:{port}/", domain_name(url_id, region))
}

/// The host name of a URL (the event's `domainName`).
pub fn domain_name(url_id: &str, region: &str) -> String {
    format!("{url_id}.lambda-url.{region}.localhost")
}

/// A `Host` header naming a function URL: its id and region labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlHost {
    pub url_id: String,
    pub region: String,
}

/// Whether `host` (with or without a port) has the shape
/// `<id>.lambda-url.<region>.localhost`. The id is not checked here: a
/// malformed one is still a URL request (refused), never an S3 bucket.
pub fn parse_host(host: &str) -> Option<UrlHost> {
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    };
    let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
    let labels: Vec<&str> = name.split('.').collect();
    match labels.as_slice() {
        [id, "lambda-url", region, "localhost"] if !id.is_empty() && !region.is_empty() => {
            Some(UrlHost { url_id: (*id).to_string(), region: (*region).to_string() })
        }
        _ => None,
    }
}

/// The path form `/_kumo/url/<id>[/<rest>]`: the id and the path the function sees.
pub fn split_path_form(path: &str) -> Option<(&str, String)> {
    let rest = path.strip_prefix(PATH_PREFIX)?;
    let (id, tail) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    Some((id, tail.to_string()))
}

/// One configuration as Lambda's responses show it. `last_modified`: Get and
/// Update show `LastModifiedTime`, Create does not.
pub fn config_json(config: &FunctionUrlConfig, url: &str, function_arn: &str, last_modified: bool) -> Value {
    let mut out = json!({
        "FunctionUrl": url,
        "FunctionArn": function_arn,
        "AuthType": config.auth_type.as_str(),
        "CreationTime": timestamp(config.created_ms),
        "InvokeMode": config.invoke_mode.as_str(),
    });
    if let Some(c) = &config.cors {
        out["Cors"] = c.to_json();
    }
    if last_modified {
        out["LastModifiedTime"] = json!(timestamp(config.last_modified_ms));
    }
    out
}

/// `2021-10-27T20:21:48.123000Z`: the URL APIs print microseconds.
pub fn timestamp(epoch_ms: i64) -> String {
    let p = crate::time::utc_parts(epoch_ms);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}000Z",
        p.year, p.month, p.day, p.hour, p.minute, p.second, p.millis
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_32_lowercase_alphanumerics() {
        let id = url_id_from_random(&[255; 32]);
        assert!(is_url_id(&id), "{id}");
        assert_eq!(url_id_from_random(&[0; 32]), "a".repeat(32));
        assert!(!is_url_id("ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"));
        assert!(!is_url_id("short"));
    }

    #[test]
    fn hosts_of_urls_are_recognised_with_or_without_port() {
        let id = "abcdefghijklmnopqrstuvwxyz012345";
        let want = Some(UrlHost { url_id: id.into(), region: "us-east-1".into() });
        assert_eq!(parse_host(&format!("{id}.lambda-url.us-east-1.localhost:9000")), want);
        assert_eq!(parse_host(&format!("{id}.lambda-url.us-east-1.localhost")), want);
        assert_eq!(parse_host(&format!("{}.LAMBDA-URL.us-east-1.localhost.", id.to_uppercase())), want);
        assert_eq!(parse_host("bucket.localhost:9000"), None);
        assert_eq!(parse_host("127.0.0.1:9000"), None);
        assert_eq!(parse_host(".lambda-url.r.localhost"), None);
    }

    #[test]
    fn the_path_form_splits_id_and_path() {
        assert_eq!(split_path_form("/_kumo/url/abc/x/y"), Some(("abc", "/x/y".to_string())));
        assert_eq!(split_path_form("/_kumo/url/abc"), Some(("abc", "/".to_string())));
        assert_eq!(split_path_form("/_kumo/url/abc/"), Some(("abc", "/".to_string())));
        assert_eq!(split_path_form("/2015-03-31/functions"), None);
    }

    #[test]
    fn qualifiers_must_be_alias_names() {
        assert!(check_qualifier("prod").is_ok());
        assert!(check_qualifier("v1-blue_2").is_ok());
        for bad in ["$LATEST", "1", "42", "", "a:b"] {
            let e = check_qualifier(bad).expect_err(bad);
            assert_eq!(e.code, ErrorCode::Validation, "{bad}");
        }
    }

    #[test]
    fn create_requires_a_known_auth_type() {
        let missing = UrlConfigInput::default().create("id".into(), 0).expect_err("null");
        assert!(missing.message.contains("Value null at 'authType'"), "{}", missing.message);
        let bad = UrlConfigInput { auth_type: Some("OPEN".into()), ..Default::default() };
        let e = bad.create("id".into(), 0).expect_err("enum");
        assert_eq!(e.code, ErrorCode::Validation);
        assert!(e.message.contains("Value 'OPEN' at 'authType'"), "{}", e.message);
        let mode = UrlConfigInput {
            auth_type: Some("NONE".into()),
            invoke_mode: Some("STREAMING".into()),
            ..Default::default()
        };
        assert!(mode.create("id".into(), 0).expect_err("mode").message.contains("invokeMode"));
    }

    #[test]
    fn update_keeps_what_it_does_not_name() {
        let input = UrlConfigInput {
            auth_type: Some("AWS_IAM".into()),
            invoke_mode: Some("RESPONSE_STREAM".into()),
            cors: Some(Cors { max_age: Some(60), ..Default::default() }),
        };
        let created = input.create("id".into(), 1000).expect("create");
        let changed = UrlConfigInput { auth_type: Some("NONE".into()), ..Default::default() }
            .update(&created, 2000)
            .expect("update");
        assert_eq!(changed.auth_type, AuthType::None);
        assert_eq!(changed.invoke_mode, InvokeMode::ResponseStream);
        assert_eq!(changed.cors, created.cors);
        assert_eq!((changed.created_ms, changed.last_modified_ms), (1000, 2000));
    }

    #[test]
    fn config_json_has_lambdas_members() {
        let config = UrlConfigInput { auth_type: Some("NONE".into()), ..Default::default() }
            .create("abc".into(), 1_583_348_638_390)
            .expect("create");
        let v = config_json(&config, "http://u/", "arn:f", false);
        assert_eq!(v["CreationTime"], "2020-03-04T19:03:58.390000Z");
        assert_eq!(v["InvokeMode"], "BUFFERED");
        assert!(v.get("LastModifiedTime").is_none() && v.get("Cors").is_none());
        assert!(config_json(&config, "http://u/", "arn:f", true).get("LastModifiedTime").is_some());
    }
}
