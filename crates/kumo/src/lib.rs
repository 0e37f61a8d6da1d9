//! Kumo: a self-hosted serverless platform that speaks AWS Lambda's APIs.
//!
//! The crate is the adapters around [`kumo_core`]: HTTP surfaces ([`api`],
//! [`runtime_api`], the S3 protocol in [`objects`]), the [`engine`] that runs invocations, the [`sandbox`]
//! that starts environments, persistence ([`store`]) and the command line
//! ([`cli`]). `main.rs` only wires them together.

pub mod api;
pub mod cli;
pub mod dashboard;
pub mod egress;
pub mod engine;
pub mod iam;
pub mod objects;
pub mod runtime_api;
pub mod sandbox;
pub mod schedules;
pub mod server;
pub mod store;

/// The port Kumo listens on unless told otherwise.
pub const DEFAULT_PORT: u16 = 9777;
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9777";
