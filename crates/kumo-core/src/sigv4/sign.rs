//! Signing, for Kumo's own clients (the `kumo` CLI, tests, benchmarks): the
//! mirror of verification over the same canonical request, so the two cannot
//! drift apart. AWS's SDKs never use it; the verifier is proven against them.

use super::{ALGORITHM, Credential, ParsedSignature, RequestParts, SigV4Error, canonical_request, hex, hmac_sha256};
use super::{signing_key, string_to_sign};

/// Who signs, and for which scope.
#[derive(Debug, Clone, Copy)]
pub struct Signer<'a> {
    pub access_key_id: &'a str,
    pub secret_access_key: &'a str,
    pub session_token: Option<&'a str>,
    pub region: &'a str,
    pub service: &'a str,
}

impl Signer<'_> {
    /// The headers to add to `request` (whose headers must include `host`):
    /// `x-amz-date`, `x-amz-security-token` when there is one, and
    /// `authorization`, signing `host` and those.
    pub fn headers(&self, request: &RequestParts<'_>, amz_date: &str) -> Result<Vec<(String, String)>, SigV4Error> {
        let date = amz_date.get(..8).ok_or_else(|| SigV4Error::MalformedDate { date: amz_date.to_string() })?;
        let mut added = vec![("x-amz-date".to_string(), amz_date.to_string())];
        if let Some(token) = self.session_token {
            added.push(("x-amz-security-token".to_string(), token.to_string()));
        }
        let mut headers: Vec<(&str, &[u8])> = request.headers.to_vec();
        headers.extend(added.iter().map(|(n, v)| (n.as_str(), v.as_bytes())));
        let mut signed_headers = vec!["host".to_string()];
        signed_headers.extend(added.iter().map(|(n, _)| n.clone()));
        signed_headers.sort();
        let parsed = ParsedSignature {
            credential: Credential {
                access_key_id: self.access_key_id.to_string(),
                date: date.to_string(),
                region: self.region.to_string(),
                service: self.service.to_string(),
                terminator: "aws4_request".to_string(),
            },
            signed_headers,
            signature: [0; 32],
            amz_date: amz_date.to_string(),
            request_time: 0,
            security_token: None,
            presigned_expires: None,
        };
        let with_date = RequestParts { headers: &headers, ..*request };
        let creq = canonical_request(&with_date, &parsed, request.payload_sha256)?;
        let scope = parsed.credential.scope();
        let key = signing_key(self.secret_access_key, date, self.region, self.service);
        let signature = hex(&hmac_sha256(&key.0, string_to_sign(amz_date, &scope, &creq).as_bytes()));
        let authorization = format!(
            "{ALGORITHM} Credential={}/{scope}, SignedHeaders={}, Signature={signature}",
            self.access_key_id,
            parsed.signed_headers.join(";")
        );
        added.push(("authorization".to_string(), authorization));
        Ok(added)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::{ExpectedScope, authenticate, parse_amz_date, sha256_hex};
    use super::*;

    #[test]
    fn what_the_signer_signs_the_verifier_accepts() {
        let body = br#"{"x":1}"#;
        let hash = sha256_hex(body);
        let host: &[(&str, &[u8])] = &[("host", b"127.0.0.1:9777"), ("content-type", b"application/json")];
        let request = RequestParts {
            method: "POST",
            path: "/2015-03-31/functions/my-fn%3Aprod/invocations",
            query: "Qualifier=prod",
            headers: host,
            payload_sha256: &hash,
        };
        let signer = Signer {
            access_key_id: "AKIAKUMOEXAMPLE00001",
            secret_access_key: "secret-secret",
            session_token: Some("token"),
            region: "us-east-1",
            service: "lambda",
        };
        let amz_date = "20261128T080000Z";
        let added = signer.headers(&request, amz_date).unwrap();
        let mut all: Vec<(&str, &[u8])> = host.to_vec();
        all.extend(added.iter().map(|(n, v)| (n.as_str(), v.as_bytes())));
        let signed = RequestParts { headers: &all, ..request };
        let now = parse_amz_date(amz_date).unwrap();
        let expected = ExpectedScope { service: "lambda", region: Some("us-east-1") };
        let key = |_: &Credential| Some(signing_key("secret-secret", "20261128", "us-east-1", "lambda"));
        let parsed = authenticate(&signed, &expected, now, key).unwrap();
        assert_eq!(parsed.security_token.as_deref(), Some("token"));
        let wrong = |_: &Credential| Some(signing_key("other", "20261128", "us-east-1", "lambda"));
        assert!(authenticate(&signed, &expected, now, wrong).is_err());
    }
}
