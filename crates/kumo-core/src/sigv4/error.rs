//! Why a signature was refused, and how AWS words each refusal on the wire.
//!
//! The JSON services (Lambda, CloudWatch Logs) answer with Coral's exception
//! names and messages; S3 has its own codes. Messages follow what those
//! services send, so SDK retry logic (clock-skew correction in particular,
//! which matches on "Signature expired") behaves as it does against AWS.

use super::parse::format_amz_date;
use super::{MAX_PRESIGNED_EXPIRES_SECS, MAX_SKEW_SECS};

/// One thing wrong with a credential scope; AWS reports all of them at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScopeFault {
    /// The region is empty, or not the one this endpoint serves.
    Region {
        got: String,
    },
    Service {
        expected: String,
    },
    Terminator {
        got: String,
    },
    /// The scope's date is not the date of the request time.
    Date {
        scope_date: String,
        amz_date: String,
    },
}

/// A refused signature. Each variant names what failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigV4Error {
    #[error("the request carries no signature")]
    MissingAuthentication,
    #[error("the request carries both an Authorization header and a presigned query")]
    AmbiguousAuthentication,
    #[error("Authorization header lacks {missing:?} (date missing: {date_missing})")]
    MissingAuthorizationComponents { missing: Vec<&'static str>, date_missing: bool, authorization: String },
    #[error("presigned query lacks {missing:?}")]
    MissingQueryParameters { missing: Vec<&'static str> },
    #[error("'{pair}' is not a key=value pair")]
    MalformedAuthorizationPair { pair: String, authorization: String },
    #[error("unsupported algorithm '{algorithm}'")]
    UnsupportedAlgorithm { algorithm: String },
    #[error("credential '{credential}' does not have five parts")]
    MalformedCredential { credential: String },
    #[error("request date '{date}' is not an ISO-8601 basic or HTTP date")]
    MalformedDate { date: String },
    #[error("X-Amz-Expires '{expires}' is not a number of seconds")]
    MalformedExpires { expires: String },
    #[error("X-Amz-Expires {expires} is outside 1..={MAX_PRESIGNED_EXPIRES_SECS}")]
    ExpiresOutOfRange { expires: u64 },
    #[error("query string: {reason}")]
    MalformedQueryString { reason: String },
    #[error("host is not a signed header")]
    HostNotSigned,
    #[error("signature is not 64 hex digits")]
    MalformedSignature,
    #[error("credential scope is wrong: {faults:?}")]
    WrongScope { faults: Vec<ScopeFault> },
    #[error("request time {request_time} is more than 15 minutes before {now}")]
    SignatureExpired { request_time: i64, now: i64 },
    /// `presigned` only changes S3's wording.
    #[error("request time {request_time} is more than 15 minutes after {now}")]
    SignatureNotYetCurrent { request_time: i64, now: i64, presigned: bool },
    #[error("presigned at {request_time} for {expires} s, now {now}")]
    PresignedUrlExpired { request_time: i64, expires: u64, now: i64 },
    #[error("unknown access key")]
    UnrecognizedClient,
    #[error("x-amz-content-sha256 does not match the body")]
    PayloadHashMismatch,
    #[error("streaming (chunk-signed) payloads are not supported")]
    StreamingPayloadUnsupported,
    /// Carries what Kumo computed, for the server's log (never for the client:
    /// AWS stopped echoing canonical requests).
    #[error("signature does not match")]
    SignatureMismatch { canonical_request: String, string_to_sign: String },
}

/// The code, HTTP status and message of an error response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsErrorResponse {
    pub code: &'static str,
    pub status: u16,
    pub message: String,
}

const INCOMPLETE: &str = "IncompleteSignatureException";
const INVALID: &str = "InvalidSignatureException";
const MISMATCH_MESSAGE: &str = "The request signature we calculated does not match the signature you provided. \
     Check your AWS Secret Access Key and signing method. Consult the service documentation for details.";

fn response(code: &'static str, status: u16, message: impl Into<String>) -> AwsErrorResponse {
    AwsErrorResponse { code, status, message: message.into() }
}

impl SigV4Error {
    /// The answer of Lambda and the other JSON services (Coral's wording).
    pub fn aws_error(&self) -> AwsErrorResponse {
        match self {
            SigV4Error::MissingAuthentication => {
                response("MissingAuthenticationTokenException", 403, "Missing Authentication Token")
            }
            SigV4Error::AmbiguousAuthentication => response(
                INCOMPLETE,
                403,
                "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter \
                 or the Authorization header should be specified",
            ),
            SigV4Error::MissingAuthorizationComponents { missing, date_missing, authorization } => {
                let mut message = String::new();
                for name in missing {
                    message.push_str(&format!("Authorization header requires '{name}' parameter. "));
                }
                if *date_missing {
                    message.push_str(
                        "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. ",
                    );
                }
                message.push_str(&format!("Authorization={authorization}"));
                response(INCOMPLETE, 403, message)
            }
            SigV4Error::MissingQueryParameters { missing } => {
                let mut message = String::new();
                for name in missing {
                    message.push_str(&format!("AWS query-string parameters must include '{name}'. "));
                }
                message.push_str("Re-examine the query-string parameters.");
                response(INCOMPLETE, 403, message)
            }
            SigV4Error::MalformedAuthorizationPair { pair, authorization } => response(
                INCOMPLETE,
                403,
                format!(
                    "'{pair}' not a valid key=value pair (missing equal-sign) in Authorization header: '{authorization}'."
                ),
            ),
            SigV4Error::UnsupportedAlgorithm { algorithm } => response(
                INCOMPLETE,
                403,
                format!("Unsupported AWS 'algorithm': '{algorithm}' (only AWS4-HMAC-SHA256 for now)."),
            ),
            SigV4Error::MalformedCredential { credential } => response(
                INCOMPLETE,
                403,
                format!(
                    "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, \
                     got '{credential}'"
                ),
            ),
            SigV4Error::MalformedDate { date } => response(
                INCOMPLETE,
                403,
                format!(
                    "Date must be in ISO-8601 'basic format'. Got '{date}'. See http://en.wikipedia.org/wiki/ISO_8601"
                ),
            ),
            SigV4Error::MalformedExpires { expires } => {
                response(INCOMPLETE, 403, format!("X-Amz-Expires should be a number, got '{expires}'."))
            }
            SigV4Error::ExpiresOutOfRange { expires } => response(
                INCOMPLETE,
                403,
                format!(
                    "X-Amz-Expires must be between 1 and {MAX_PRESIGNED_EXPIRES_SECS} seconds (a week), got {expires}."
                ),
            ),
            SigV4Error::MalformedQueryString { reason } => response(INCOMPLETE, 403, reason.clone()),
            SigV4Error::HostNotSigned => {
                response(INVALID, 403, "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.")
            }
            SigV4Error::MalformedSignature | SigV4Error::SignatureMismatch { .. } => {
                response(INVALID, 403, MISMATCH_MESSAGE)
            }
            SigV4Error::WrongScope { faults } => {
                let parts: Vec<String> = faults.iter().map(scope_fault_message).collect();
                response(INVALID, 403, parts.join(" "))
            }
            SigV4Error::SignatureExpired { request_time, now } => response(
                INVALID,
                403,
                format!(
                    "Signature expired: {} is now earlier than {} ({} - 15 min.)",
                    format_amz_date(*request_time),
                    format_amz_date(now.saturating_sub(MAX_SKEW_SECS)),
                    format_amz_date(*now)
                ),
            ),
            SigV4Error::SignatureNotYetCurrent { request_time, now, .. } => response(
                INVALID,
                403,
                format!(
                    "Signature not yet current: {} is still later than {} ({} + 15 min.)",
                    format_amz_date(*request_time),
                    format_amz_date(now.saturating_add(MAX_SKEW_SECS)),
                    format_amz_date(*now)
                ),
            ),
            SigV4Error::PresignedUrlExpired { .. } => response(INVALID, 403, "Request has expired."),
            SigV4Error::UnrecognizedClient => {
                response("UnrecognizedClientException", 403, "The security token included in the request is invalid.")
            }
            SigV4Error::PayloadHashMismatch => {
                response(INVALID, 403, "The provided 'x-amz-content-sha256' header does not match what was computed.")
            }
            SigV4Error::StreamingPayloadUnsupported => {
                response("NotImplemented", 501, "A header you provided implies functionality that is not implemented.")
            }
        }
    }

    /// The answer of S3, whose REST-XML errors use their own codes.
    pub fn s3_error(&self) -> AwsErrorResponse {
        const MALFORMED: &str = "AuthorizationHeaderMalformed";
        const QUERY: &str = "AuthorizationQueryParametersError";
        match self {
            SigV4Error::MissingAuthentication => response("AccessDenied", 403, "Access Denied"),
            SigV4Error::AmbiguousAuthentication => response(
                "InvalidArgument",
                400,
                "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, \
                 Signature query string parameter or the Authorization header should be specified",
            ),
            SigV4Error::MissingAuthorizationComponents { date_missing: true, missing, .. } if missing.is_empty() => {
                response("AccessDenied", 403, "AWS authentication requires a valid Date or x-amz-date header")
            }
            SigV4Error::MissingAuthorizationComponents { .. } | SigV4Error::MalformedAuthorizationPair { .. } => {
                response(
                    MALFORMED,
                    400,
                    "The authorization header is malformed; the authorization header requires three components: \
                     Credential, SignedHeaders, and Signature.",
                )
            }
            SigV4Error::MissingQueryParameters { .. } => response(
                QUERY,
                400,
                "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, \
                 X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.",
            ),
            SigV4Error::UnsupportedAlgorithm { .. } => response(
                "InvalidArgument",
                400,
                "The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256.",
            ),
            SigV4Error::MalformedCredential { .. } => response(
                MALFORMED,
                400,
                "The authorization header is malformed; the Credential is mal-formed; \
                 expecting \"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request\".",
            ),
            SigV4Error::MalformedDate { .. } => {
                response("AccessDenied", 403, "AWS authentication requires a valid Date or x-amz-date header")
            }
            SigV4Error::MalformedExpires { .. } => response(QUERY, 400, "X-Amz-Expires should be a number"),
            SigV4Error::ExpiresOutOfRange { expires: 0 } => response(QUERY, 400, "X-Amz-Expires must be non-negative"),
            SigV4Error::ExpiresOutOfRange { .. } => response(
                QUERY,
                400,
                "X-Amz-Expires must be less than a week (in seconds) that is, \
                 the given X-Amz-Expires must be less than 604800 seconds",
            ),
            SigV4Error::MalformedQueryString { reason } => response("InvalidArgument", 400, reason.clone()),
            SigV4Error::HostNotSigned => response(
                MALFORMED,
                400,
                "The authorization header is malformed; 'Host' must be a 'SignedHeader' in the AWS Authorization.",
            ),
            SigV4Error::WrongScope { faults } => match faults.first() {
                Some(ScopeFault::Date { .. }) => response(
                    MALFORMED,
                    400,
                    "The authorization header is malformed; Invalid credential date. Date is not the same as X-Amz-Date.",
                ),
                Some(ScopeFault::Region { got }) => response(
                    MALFORMED,
                    400,
                    format!("The authorization header is malformed; the region '{got}' is wrong."),
                ),
                Some(ScopeFault::Terminator { got }) => response(
                    MALFORMED,
                    400,
                    format!(
                        "The authorization header is malformed; incorrect terminal \"{got}\". \
                         This endpoint uses \"aws4_request\"."
                    ),
                ),
                Some(ScopeFault::Service { expected }) => response(
                    MALFORMED,
                    400,
                    format!(
                        "The authorization header is malformed; incorrect service. This endpoint belongs to \"{expected}\"."
                    ),
                ),
                None => response(MALFORMED, 400, "The authorization header is malformed."),
            },
            SigV4Error::SignatureExpired { .. } | SigV4Error::SignatureNotYetCurrent { presigned: false, .. } => {
                response(
                    "RequestTimeTooSkewed",
                    403,
                    "The difference between the request time and the current time is too large.",
                )
            }
            SigV4Error::SignatureNotYetCurrent { presigned: true, .. } => {
                response("AccessDenied", 403, "Request is not yet valid")
            }
            SigV4Error::PresignedUrlExpired { .. } => response("AccessDenied", 403, "Request has expired"),
            SigV4Error::UnrecognizedClient => {
                response("InvalidAccessKeyId", 403, "The AWS Access Key Id you provided does not exist in our records.")
            }
            SigV4Error::PayloadHashMismatch => response(
                "XAmzContentSHA256Mismatch",
                400,
                "The provided 'x-amz-content-sha256' header does not match what was computed.",
            ),
            SigV4Error::StreamingPayloadUnsupported => {
                response("NotImplemented", 501, "A header you provided implies functionality that is not implemented.")
            }
            SigV4Error::MalformedSignature | SigV4Error::SignatureMismatch { .. } => response(
                "SignatureDoesNotMatch",
                403,
                "The request signature we calculated does not match the signature you provided. \
                 Check your key and signing method.",
            ),
        }
    }
}

fn scope_fault_message(fault: &ScopeFault) -> String {
    match fault {
        ScopeFault::Region { got } if got.is_empty() => "Credential should be scoped to a valid region.".to_string(),
        ScopeFault::Region { got } => format!("Credential should be scoped to a valid region, not '{got}'."),
        ScopeFault::Service { expected } => format!("Credential should be scoped to correct service: '{expected}'."),
        ScopeFault::Terminator { got } => {
            format!("Credential should be scoped with a valid terminator: 'aws4_request', not '{got}'.")
        }
        ScopeFault::Date { scope_date, amz_date } => format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: \
             '{scope_date}' != '{}', from '{amz_date}'.",
            amz_date.get(..8).unwrap_or(amz_date)
        ),
    }
}
