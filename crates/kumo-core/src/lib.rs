//! Kumo's pure core.
//!
//! Everything here is deterministic: no IO, no clocks, no randomness. Time and
//! identifiers are passed in by the caller, so every rule in this crate can be
//! tested without a server, a filesystem or a process.

pub mod budget;
pub mod concurrency;
pub mod destination;
pub mod error;
pub mod event_config;
pub mod eventstream;
pub mod function;
pub mod function_policy;
pub mod iam;
pub mod invoke;
pub mod lineage;
pub mod logfilter;
pub mod logfmt;
pub mod names;
pub mod policy;
pub mod pricing;
pub mod retry;
pub mod rollup;
pub mod runtime;
pub mod s3;
pub mod sample_events;
pub mod schedule;
pub mod session;
pub mod sigv4;
pub mod tags;
pub mod time;
pub mod url;

pub use error::{ApiError, ErrorCode};

#[cfg(test)]
mod invariants {
    /// The core must stay free of IO: only these dependencies are allowed.
    #[test]
    fn core_has_no_io_dependencies() {
        let manifest = include_str!("../Cargo.toml");
        let deps = manifest.split("[dependencies]").nth(1).unwrap_or("").split("\n[").next().unwrap_or("");
        let names: Vec<&str> = deps
            .lines()
            .filter_map(|l| l.split('=').next())
            .map(str::trim)
            .filter(|n| !n.is_empty() && !n.starts_with('#'))
            .collect();
        assert_eq!(
            names,
            vec!["serde", "serde_json", "thiserror", "hmac", "sha2", "subtle"],
            "kumo-core must not gain IO dependencies"
        );
    }
}
