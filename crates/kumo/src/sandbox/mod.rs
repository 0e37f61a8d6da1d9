//! Execution environments as OS process trees.
//!
//! A [`Sandbox`] is one runtime process (and whatever it forks) in its own
//! session and cgroups. The engine never runs function code in its own
//! process; everything here is about starting, measuring, freezing and
//! killing such a tree.

pub mod cgroup;
mod process;

pub use cgroup::{Capabilities, CgroupLayout};
pub use process::{ExitInfo, OutputPipe, SHELL_ARG, Sandbox, SandboxError, SandboxSpec, Sandboxes, shell_main};
