//! IAM's entities and rules, without IO: users and their access keys, roles
//! and their trust policies, managed and inline policies, STS sessions.
//!
//! [`IamState`] holds everything one account has. Every operation *plans*:
//! it validates against the state as it is and returns the result together
//! with the [`Change`]s that make it true, without touching the state. The
//! caller makes the changes durable and only then [`IamState::apply`]s them,
//! so memory never shows what the disk does not have. Randomness (ids, keys)
//! and the clock come in as parameters.
//!
//! Modules: [`validate`] (names, paths, documents and IAM's messages), [`ids`]
//! (unique ids, keys, ARNs), [`model`] (the entities as stored), `users`,
//! `roles`, `policies` (the operations) and [`page`] (Marker/MaxItems lists).

pub mod ids;
pub mod model;
pub mod page;
mod policies;
mod roles;
mod state;
mod users;
pub mod validate;

pub use model::{AccessKey, AccessKeyStatus, Change, ManagedPolicy, Role, StsSession, User};
pub use page::Page;
pub use policies::{PolicyScope, aws_managed_policies};
pub use roles::{AssumeRequest, NewRole, SessionGrant};
pub use state::KeyOwner;
pub use state::{IamState, Outcome};

/// The error codes IAM and STS answer with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IamErrorCode {
    EntityAlreadyExists,
    NoSuchEntity,
    DeleteConflict,
    MalformedPolicyDocument,
    ValidationError,
    LimitExceeded,
    InvalidInput,
    /// The query protocol's `Action` names no operation.
    InvalidAction,
    /// STS: the caller may not assume the role.
    AccessDenied,
    /// Kumo could not store the change.
    ServiceFailure,
}

impl IamErrorCode {
    /// The `<Code>` on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            IamErrorCode::EntityAlreadyExists => "EntityAlreadyExists",
            IamErrorCode::NoSuchEntity => "NoSuchEntity",
            IamErrorCode::DeleteConflict => "DeleteConflict",
            IamErrorCode::MalformedPolicyDocument => "MalformedPolicyDocument",
            IamErrorCode::ValidationError => "ValidationError",
            IamErrorCode::LimitExceeded => "LimitExceeded",
            IamErrorCode::InvalidInput => "InvalidInput",
            IamErrorCode::InvalidAction => "InvalidAction",
            IamErrorCode::AccessDenied => "AccessDenied",
            IamErrorCode::ServiceFailure => "ServiceFailure",
        }
    }

    pub fn http_status(self) -> u16 {
        match self {
            IamErrorCode::NoSuchEntity => 404,
            IamErrorCode::EntityAlreadyExists | IamErrorCode::DeleteConflict | IamErrorCode::LimitExceeded => 409,
            IamErrorCode::MalformedPolicyDocument
            | IamErrorCode::ValidationError
            | IamErrorCode::InvalidInput
            | IamErrorCode::InvalidAction => 400,
            IamErrorCode::AccessDenied => 403,
            IamErrorCode::ServiceFailure => 500,
        }
    }

    /// The `<Type>` on the wire: whose fault it was.
    pub fn fault(self) -> &'static str {
        if self == IamErrorCode::ServiceFailure { "Receiver" } else { "Sender" }
    }
}

/// A refused IAM or STS operation: IAM's code and its message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code:?}: {message}")]
pub struct IamError {
    pub code: IamErrorCode,
    pub message: String,
}

impl IamError {
    pub fn new(code: IamErrorCode, message: impl Into<String>) -> IamError {
        IamError { code, message: message.into() }
    }

    pub fn http_status(&self) -> u16 {
        self.code.http_status()
    }

    pub(crate) fn no_such(message: impl Into<String>) -> IamError {
        IamError::new(IamErrorCode::NoSuchEntity, message)
    }

    pub(crate) fn exists(message: impl Into<String>) -> IamError {
        IamError::new(IamErrorCode::EntityAlreadyExists, message)
    }

    pub(crate) fn conflict(message: impl Into<String>) -> IamError {
        IamError::new(IamErrorCode::DeleteConflict, message)
    }

    pub(crate) fn limit(message: impl Into<String>) -> IamError {
        IamError::new(IamErrorCode::LimitExceeded, message)
    }

    pub(crate) fn validation(message: impl Into<String>) -> IamError {
        IamError::new(IamErrorCode::ValidationError, message)
    }
}

/// Where ids, keys and session tokens get their randomness. Kumo passes the
/// operating system's generator; tests pass a predictable one.
pub trait RandomSource {
    fn fill(&mut self, buf: &mut [u8]);
}

/// A predictable [`RandomSource`] (a counter through a mixing function), for tests.
#[derive(Debug, Clone, Default)]
pub struct CountingRandom(pub u64);

impl RandomSource for CountingRandom {
    fn fill(&mut self, buf: &mut [u8]) {
        for b in buf {
            // splitmix64's finaliser: every byte differs from its neighbours.
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            *b = (z ^ (z >> 31)) as u8;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_carry_iams_statuses() {
        assert_eq!(IamErrorCode::NoSuchEntity.http_status(), 404);
        assert_eq!(IamErrorCode::EntityAlreadyExists.http_status(), 409);
        assert_eq!(IamErrorCode::DeleteConflict.http_status(), 409);
        assert_eq!(IamErrorCode::LimitExceeded.http_status(), 409);
        assert_eq!(IamErrorCode::MalformedPolicyDocument.http_status(), 400);
        assert_eq!(IamErrorCode::ValidationError.http_status(), 400);
        assert_eq!(IamErrorCode::AccessDenied.http_status(), 403);
        assert_eq!(IamErrorCode::ServiceFailure.fault(), "Receiver");
        assert_eq!(IamErrorCode::NoSuchEntity.fault(), "Sender");
        assert_eq!(IamErrorCode::MalformedPolicyDocument.as_str(), "MalformedPolicyDocument");
    }

    #[test]
    fn counting_random_is_predictable_and_varied() {
        let (mut a, mut b) = (CountingRandom(7), CountingRandom(7));
        let (mut x, mut y) = ([0u8; 32], [0u8; 32]);
        a.fill(&mut x);
        b.fill(&mut y);
        assert_eq!(x, y);
        assert!(x.windows(2).any(|w| w[0] != w[1]));
    }
}
