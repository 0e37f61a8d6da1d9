//! AWS-shaped API errors.
//!
//! Every failure a client can see is an [`ApiError`]: a code (the value of
//! `x-amzn-ErrorType`), an HTTP status and a message. The casing of the message
//! key (`Message` or `message`) differs per exception in AWS's model, and
//! byte-exact clients notice, so it lives here with the code.

use std::fmt;

/// The exception names Lambda (and the other JSON services Kumo serves) use on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    ResourceNotFound,
    ResourceConflict,
    InvalidParameterValue,
    InvalidRequestContent,
    RequestEntityTooLarge,
    UnsupportedMediaType,
    TooManyRequests,
    PreconditionFailed,
    Validation,
    Service,
    UnknownOperation,
    CodeStorageExceeded,
    AccessDenied,
    /// CloudWatch Logs' not-found error (a different wire name from Lambda's).
    LogsResourceNotFound,
    /// CloudWatch Logs' invalid-parameter error.
    LogsInvalidParameter,
    /// CloudWatch Logs: CreateLogGroup of an existing group.
    LogsResourceAlreadyExists,
    Serialization,
    PolicyLengthExceeded,
    /// A synchronous invocation stopped as a recursive loop.
    RecursiveInvocation,
}

impl ErrorCode {
    /// The wire name sent in `x-amzn-ErrorType` and as the body's `Type`-less code.
    pub fn wire_name(self) -> &'static str {
        match self {
            ErrorCode::ResourceNotFound | ErrorCode::LogsResourceNotFound => "ResourceNotFoundException",
            ErrorCode::ResourceConflict => "ResourceConflictException",
            ErrorCode::InvalidParameterValue => "InvalidParameterValueException",
            ErrorCode::InvalidRequestContent => "InvalidRequestContentException",
            ErrorCode::RequestEntityTooLarge => "RequestEntityTooLargeException",
            ErrorCode::UnsupportedMediaType => "UnsupportedMediaTypeException",
            ErrorCode::TooManyRequests => "TooManyRequestsException",
            ErrorCode::PreconditionFailed => "PreconditionFailedException",
            ErrorCode::Validation => "ValidationException",
            ErrorCode::Service => "ServiceException",
            ErrorCode::UnknownOperation => "UnknownOperationException",
            ErrorCode::CodeStorageExceeded => "CodeStorageExceededException",
            ErrorCode::AccessDenied => "AccessDeniedException",
            ErrorCode::LogsInvalidParameter => "InvalidParameterException",
            ErrorCode::LogsResourceAlreadyExists => "ResourceAlreadyExistsException",
            ErrorCode::Serialization => "SerializationException",
            ErrorCode::PolicyLengthExceeded => "PolicyLengthExceededException",
            ErrorCode::RecursiveInvocation => "RecursiveInvocationException",
        }
    }

    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::ResourceNotFound | ErrorCode::UnknownOperation => 404,
            ErrorCode::ResourceConflict => 409,
            ErrorCode::InvalidParameterValue
            | ErrorCode::InvalidRequestContent
            | ErrorCode::Validation
            | ErrorCode::CodeStorageExceeded
            | ErrorCode::LogsResourceNotFound
            | ErrorCode::LogsInvalidParameter
            | ErrorCode::LogsResourceAlreadyExists
            | ErrorCode::Serialization
            | ErrorCode::PolicyLengthExceeded
            | ErrorCode::RecursiveInvocation => 400,
            ErrorCode::RequestEntityTooLarge => 413,
            ErrorCode::UnsupportedMediaType => 415,
            ErrorCode::TooManyRequests => 429,
            ErrorCode::PreconditionFailed => 412,
            ErrorCode::Service => 500,
            ErrorCode::AccessDenied => 403,
        }
    }

    /// Lambda's model spells the message member `Message` for some exceptions and
    /// `message` for others; this follows botocore's shapes.
    pub fn message_key(self) -> &'static str {
        match self {
            ErrorCode::ResourceNotFound
            | ErrorCode::Service
            | ErrorCode::AccessDenied
            | ErrorCode::UnknownOperation => "Message",
            _ => "message",
        }
    }

    /// Lambda adds `"Type":"User"` to client faults and `"Type":"Service"` to its own.
    pub fn fault_type(self) -> Option<&'static str> {
        match self {
            ErrorCode::Service => Some("Service"),
            ErrorCode::Validation
            | ErrorCode::AccessDenied
            | ErrorCode::UnknownOperation
            | ErrorCode::LogsResourceNotFound
            | ErrorCode::LogsInvalidParameter
            | ErrorCode::Serialization => None,
            _ => Some("User"),
        }
    }
}

/// An error as a client sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    /// `Reason` member of TooManyRequestsException.
    pub reason: Option<&'static str>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError { code, message: message.into(), reason: None }
    }

    pub fn invalid_parameter(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidParameterValue, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::ResourceNotFound, message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::ResourceConflict, message)
    }

    pub fn service(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Service, message)
    }

    pub fn throttled(reason: &'static str) -> Self {
        ApiError { code: ErrorCode::TooManyRequests, message: "Rate Exceeded.".into(), reason: Some(reason) }
    }

    /// The JSON body as Lambda writes it.
    pub fn body_json(&self) -> serde_json::Value {
        let mut body = serde_json::Map::new();
        if let Some(t) = self.code.fault_type() {
            body.insert("Type".into(), t.into());
        }
        body.insert(self.code.message_key().into(), self.message.clone().into());
        if let Some(reason) = self.reason {
            body.insert("Reason".into(), reason.into());
        }
        if matches!(
            self.code,
            ErrorCode::LogsResourceNotFound | ErrorCode::LogsInvalidParameter | ErrorCode::LogsResourceAlreadyExists
        ) {
            body.insert("__type".into(), self.code.wire_name().into());
        }
        serde_json::Value::Object(body)
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.wire_name(), self.message)
    }
}

impl std::error::Error for ApiError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_uses_capital_message_key() {
        let e = ApiError::not_found("Function not found: arn");
        assert_eq!(e.body_json(), serde_json::json!({"Type":"User","Message":"Function not found: arn"}));
        assert_eq!(e.code.http_status(), 404);
    }

    #[test]
    fn throttle_carries_reason() {
        let e = ApiError::throttled("ReservedFunctionConcurrentInvocationLimitExceeded");
        assert_eq!(
            e.body_json(),
            serde_json::json!({"Type":"User","message":"Rate Exceeded.","Reason":"ReservedFunctionConcurrentInvocationLimitExceeded"})
        );
        assert_eq!(e.code.http_status(), 429);
    }
}
