//! Execution environments as isolated OS process trees.
//!
//! A [`Sandbox`] is one runtime process (and whatever it forks) in its own
//! cgroups and, unless isolation is off, its own user, PID, mount, network,
//! IPC and UTS namespaces, behind seccomp and landlock. The engine never runs
//! function code in its own process; everything here is about starting,
//! measuring, freezing and killing such a tree.

pub mod cgroup;
pub mod isolation;
pub mod jail;
mod process;
mod seccomp;
mod shell;

pub use cgroup::{Capabilities, CgroupLayout};
pub use isolation::{Isolation, IsolationMode, IsolationPlan};
pub use process::{ExitInfo, OutputPipe, Sandbox, SandboxError, SandboxListeners, SandboxSpec, Sandboxes};
pub use shell::{SHELL_ARG, shell_main};
