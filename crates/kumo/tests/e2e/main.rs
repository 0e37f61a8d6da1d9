//! End-to-end tests: the real `kumo` binary on a free port, driven by real
//! clients (aws-sdk-lambda, a `lambda_runtime` function, the AWS CLI, boto3).

mod async_invoke;
mod auth;
mod bad_input;
mod cli;
mod control_plane;
mod dashboard;
mod function_urls;
mod harness;
mod iam_api;
mod invoke;
mod isolation;
mod least_privilege;
mod lifecycle;
mod logs;
mod runtimes;
mod s3_api;
mod s3_triggers;
mod sample_events;
mod schedules;
mod streaming;
mod terraform;
