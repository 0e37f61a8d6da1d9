//! A function URL's CORS configuration and the headers it produces.
//!
//! As on AWS, the URL answers a preflight itself (the function never sees it)
//! and adds the configured headers to every other response that carries an
//! `Origin`; configured headers replace any the function set itself.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{serialization, validation};
use crate::error::ApiError;

/// `Cors` of a URL configuration, with Lambda's limits.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Cors {
    pub allow_credentials: Option<bool>,
    pub allow_headers: Option<Vec<String>>,
    pub allow_methods: Option<Vec<String>>,
    pub allow_origins: Option<Vec<String>>,
    pub expose_headers: Option<Vec<String>>,
    pub max_age: Option<i64>,
}

/// Lambda's `MaxAge` bound (one day).
pub const MAX_AGE_LIMIT: i64 = 86_400;

fn strings(v: &Value, member: &str) -> Result<Option<Vec<String>>, ApiError> {
    match v.get(member) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| i.as_str().map(str::to_string).ok_or_else(|| serialization(member, i)))
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(other) => Err(serialization(member, other)),
    }
}

fn list_text(items: &[String]) -> String {
    format!("[{}]", items.join(", "))
}

impl Cors {
    pub fn from_json(v: &Value) -> Result<Cors, ApiError> {
        if !v.is_object() {
            return Err(serialization("Cors", v));
        }
        let allow_credentials = match v.get("AllowCredentials") {
            None | Some(Value::Null) => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(other) => return Err(serialization("AllowCredentials", other)),
        };
        let max_age = match v.get("MaxAge") {
            None | Some(Value::Null) => None,
            Some(n) => Some(n.as_i64().ok_or_else(|| serialization("MaxAge", n))?),
        };
        Ok(Cors {
            allow_credentials,
            allow_headers: strings(v, "AllowHeaders")?,
            allow_methods: strings(v, "AllowMethods")?,
            allow_origins: strings(v, "AllowOrigins")?,
            expose_headers: strings(v, "ExposeHeaders")?,
            max_age,
        })
    }

    /// Lambda's limits on each member.
    pub fn validate(&self) -> Result<(), ApiError> {
        // (member, items, most items, longest item, shortest item)
        let lists = [
            ("cors.allowHeaders", &self.allow_headers, 100, 1024, 0),
            ("cors.allowMethods", &self.allow_methods, 6, 6, 0),
            ("cors.allowOrigins", &self.allow_origins, 100, 253, 1),
            ("cors.exposeHeaders", &self.expose_headers, 100, 1024, 0),
        ];
        for (member, items, max_items, max_len, min_len) in lists {
            let Some(items) = items else { continue };
            if items.len() > max_items {
                return Err(validation(
                    &list_text(items),
                    member,
                    &format!("Member must have length less than or equal to {max_items}"),
                ));
            }
            if let Some(long) = items.iter().find(|i| i.len() > max_len) {
                return Err(validation(
                    &list_text(items),
                    member,
                    &format!(
                        "Member must satisfy constraint: [Member must have length less than or equal to {max_len}] ('{long}')"
                    ),
                ));
            }
            if items.iter().any(|i| i.len() < min_len) {
                return Err(validation(
                    &list_text(items),
                    member,
                    &format!(
                        "Member must satisfy constraint: [Member must have length greater than or equal to {min_len}]"
                    ),
                ));
            }
        }
        if let Some(age) = self.max_age {
            if age < 0 {
                return Err(validation(
                    &age.to_string(),
                    "cors.maxAge",
                    "Member must have value greater than or equal to 0",
                ));
            }
            if age > MAX_AGE_LIMIT {
                return Err(validation(
                    &age.to_string(),
                    "cors.maxAge",
                    &format!("Member must have value less than or equal to {MAX_AGE_LIMIT}"),
                ));
            }
        }
        Ok(())
    }

    /// The `Cors` member of a response (only the members that are set).
    pub fn to_json(&self) -> Value {
        let mut out = json!({});
        if let Some(b) = self.allow_credentials {
            out["AllowCredentials"] = json!(b);
        }
        let lists = [
            ("AllowHeaders", &self.allow_headers),
            ("AllowMethods", &self.allow_methods),
            ("AllowOrigins", &self.allow_origins),
            ("ExposeHeaders", &self.expose_headers),
        ];
        for (name, items) in lists {
            if let Some(items) = items {
                out[name] = json!(items);
            }
        }
        if let Some(age) = self.max_age {
            out["MaxAge"] = json!(age);
        }
        out
    }

    /// The `Access-Control-Allow-Origin` value for a request from `origin`:
    /// `*` when every origin is allowed, the origin itself when it is listed.
    fn allowed_origin(&self, origin: &str) -> Option<String> {
        let origins = self.allow_origins.as_deref().unwrap_or_default();
        if origins.iter().any(|o| o == "*") {
            return Some("*".to_string());
        }
        origins.iter().find(|o| o.eq_ignore_ascii_case(origin)).map(|_| origin.to_string())
    }

    fn method_allowed(&self, method: &str) -> bool {
        self.allow_methods.as_deref().unwrap_or_default().iter().any(|m| m == "*" || m.eq_ignore_ascii_case(method))
    }

    /// The answer to a preflight (`OPTIONS` with `Origin` and
    /// `Access-Control-Request-Method`): the headers of a 200 with no body.
    /// An origin or method the configuration does not allow gets none.
    pub fn preflight(
        &self,
        origin: &str,
        request_method: &str,
        request_headers: Option<&str>,
    ) -> Vec<(String, String)> {
        let Some(allow_origin) = self.allowed_origin(origin) else { return Vec::new() };
        if !self.method_allowed(request_method) {
            return Vec::new();
        }
        let mut out = vec![("access-control-allow-origin".to_string(), allow_origin.clone())];
        let methods = self.allow_methods.as_deref().unwrap_or_default();
        let methods = if methods.iter().any(|m| m == "*") { request_method.to_string() } else { methods.join(",") };
        out.push(("access-control-allow-methods".to_string(), methods));
        let headers = self.allow_headers.as_deref().unwrap_or_default();
        let headers = if headers.iter().any(|h| h == "*") {
            request_headers.unwrap_or_default().to_string()
        } else {
            headers.join(",")
        };
        if !headers.is_empty() {
            out.push(("access-control-allow-headers".to_string(), headers));
        }
        if let Some(age) = self.max_age {
            out.push(("access-control-max-age".to_string(), age.to_string()));
        }
        self.common(&allow_origin, &mut out);
        out
    }

    /// The headers added to a response to a request from `origin`.
    pub fn response_headers(&self, origin: Option<&str>) -> Vec<(String, String)> {
        let Some(allow_origin) = origin.and_then(|o| self.allowed_origin(o)) else { return Vec::new() };
        let mut out = vec![("access-control-allow-origin".to_string(), allow_origin.clone())];
        let expose = self.expose_headers.as_deref().unwrap_or_default();
        if !expose.is_empty() {
            out.push(("access-control-expose-headers".to_string(), expose.join(",")));
        }
        self.common(&allow_origin, &mut out);
        out
    }

    fn common(&self, allow_origin: &str, out: &mut Vec<(String, String)>) {
        if self.allow_credentials == Some(true) {
            out.push(("access-control-allow-credentials".to_string(), "true".to_string()));
        }
        if allow_origin != "*" {
            // The answer depends on the origin: caches must key on it.
            out.push(("vary".to_string(), "Origin".to_string()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cors() -> Cors {
        Cors {
            allow_credentials: Some(true),
            allow_headers: Some(vec!["x-custom".into(), "content-type".into()]),
            allow_methods: Some(vec!["GET".into(), "POST".into()]),
            allow_origins: Some(vec!["https://app.example.com".into()]),
            expose_headers: Some(vec!["x-request-id".into()]),
            max_age: Some(300),
        }
    }

    fn get<'a>(h: &'a [(String, String)], name: &str) -> Option<&'a str> {
        h.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    #[test]
    fn a_preflight_from_an_allowed_origin_gets_the_configuration() {
        let h = cors().preflight("https://app.example.com", "POST", Some("x-custom"));
        assert_eq!(get(&h, "access-control-allow-origin"), Some("https://app.example.com"));
        assert_eq!(get(&h, "access-control-allow-methods"), Some("GET,POST"));
        assert_eq!(get(&h, "access-control-allow-headers"), Some("x-custom,content-type"));
        assert_eq!(get(&h, "access-control-max-age"), Some("300"));
        assert_eq!(get(&h, "access-control-allow-credentials"), Some("true"));
        assert_eq!(get(&h, "vary"), Some("Origin"));
    }

    #[test]
    fn a_preflight_from_elsewhere_or_for_another_method_gets_nothing() {
        assert!(cors().preflight("https://evil.example", "POST", None).is_empty());
        assert!(cors().preflight("https://app.example.com", "DELETE", None).is_empty());
    }

    #[test]
    fn wildcards_echo_the_request() {
        let c = Cors {
            allow_origins: Some(vec!["*".into()]),
            allow_methods: Some(vec!["*".into()]),
            allow_headers: Some(vec!["*".into()]),
            ..Default::default()
        };
        let h = c.preflight("https://any.example", "PATCH", Some("x-a,x-b"));
        assert_eq!(get(&h, "access-control-allow-origin"), Some("*"));
        assert_eq!(get(&h, "access-control-allow-methods"), Some("PATCH"));
        assert_eq!(get(&h, "access-control-allow-headers"), Some("x-a,x-b"));
        assert_eq!(get(&h, "vary"), None);
    }

    #[test]
    fn responses_carry_origin_credentials_and_exposed_headers() {
        let h = cors().response_headers(Some("https://app.example.com"));
        assert_eq!(get(&h, "access-control-allow-origin"), Some("https://app.example.com"));
        assert_eq!(get(&h, "access-control-expose-headers"), Some("x-request-id"));
        assert_eq!(get(&h, "access-control-allow-credentials"), Some("true"));
        assert!(cors().response_headers(None).is_empty());
        assert!(cors().response_headers(Some("https://evil.example")).is_empty());
    }

    #[test]
    fn limits_are_lambdas() {
        let too_many = Cors { allow_methods: Some(vec!["GET".into(); 7]), ..Default::default() };
        assert!(too_many.validate().expect_err("7").message.contains("cors.allowMethods"));
        let long = Cors { allow_methods: Some(vec!["OPTIONSX".into()]), ..Default::default() };
        assert!(long.validate().is_err());
        let age = Cors { max_age: Some(86_401), ..Default::default() };
        assert!(age.validate().expect_err("age").message.contains("less than or equal to 86400"));
        let empty_origin = Cors { allow_origins: Some(vec![String::new()]), ..Default::default() };
        assert!(empty_origin.validate().is_err());
        assert!(cors().validate().is_ok());
    }

    #[test]
    fn json_round_trip_keeps_only_set_members() {
        let v = json!({"AllowOrigins": ["*"], "MaxAge": 10});
        let c = Cors::from_json(&v).expect("parse");
        assert_eq!(c.to_json(), v);
        assert!(Cors::from_json(&json!({"MaxAge": "ten"})).is_err());
        assert!(Cors::from_json(&json!({"AllowOrigins": [1]})).is_err());
    }
}
