//! Kumo's pure core.
//!
//! Everything here is deterministic: no IO, no clocks, no randomness. Time and
//! identifiers are passed in by the caller, so every rule in this crate can be
//! tested without a server, a filesystem or a process.

pub mod concurrency;
pub mod error;
pub mod function;
pub mod invoke;
pub mod logfmt;
pub mod names;
pub mod runtime;
pub mod time;

pub use error::{ApiError, ErrorCode};
