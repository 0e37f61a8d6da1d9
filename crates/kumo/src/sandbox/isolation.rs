//! What isolation the host allows, what the operator asked for, and the one
//! line that says which is in force.

use std::path::PathBuf;

use super::cgroup::Capabilities;
use super::process::SandboxError;

/// `--isolation`: how hard Kumo insists on sandboxing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum IsolationMode {
    /// Refuse to start unless every mechanism is available.
    Strict,
    /// Use everything the host offers and say loudly what is missing.
    Auto,
    /// Plain processes, for debugging; said on every start.
    None,
}

/// What the server asks for at start.
#[derive(Debug, Clone)]
pub struct IsolationPlan {
    pub mode: IsolationMode,
    /// An empty directory Kumo owns; each sandbox mounts its private root over it.
    pub root_dir: PathBuf,
    /// Kumo's API port, also opened inside each environment for functions allowed outbound access.
    pub api_port: u16,
    /// CPU quota proportional to memory (1,769 MB = one vCPU).
    pub cpu_limits: bool,
}

/// Namespace isolation in force: where sandboxes build their root.
#[derive(Debug, Clone)]
pub struct NamespaceIsolation {
    pub root_dir: PathBuf,
    pub api_port: u16,
}

/// The isolation Kumo actually applies.
#[derive(Debug, Clone)]
pub struct Isolation {
    pub mode: IsolationMode,
    pub namespaces: Option<NamespaceIsolation>,
    pub landlock_abi: i32,
    pub seccomp: bool,
    pub cpu_limits: bool,
    pub running_as_root: bool,
    /// Mechanisms the host could not provide, with the reason.
    pub missing: Vec<String>,
}

/// The kernel's landlock ABI version, 0 when landlock is absent or disabled.
fn landlock_abi() -> i32 {
    const LANDLOCK_CREATE_RULESET_VERSION: libc::c_uint = 1;
    // SAFETY: the version query takes no ruleset and has no side effects.
    let v = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<u8>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    i32::try_from(v).unwrap_or(0).max(0)
}

fn seccomp_available() -> bool {
    // SAFETY: PR_GET_SECCOMP only reads this thread's mode; EINVAL means no seccomp in the kernel.
    unsafe { libc::prctl(libc::PR_GET_SECCOMP, 0, 0, 0, 0) >= 0 }
}

impl Isolation {
    /// Checks the host. `probe` starts one real isolated sandbox shell, the
    /// only reliable test that user namespaces, mounts and the rest work here.
    pub fn detect(
        plan: &IsolationPlan,
        cgroups: &Capabilities,
        probe: impl FnOnce(&Isolation) -> Result<(), SandboxError>,
    ) -> Result<Isolation, SandboxError> {
        // SAFETY: geteuid has no preconditions.
        let running_as_root = unsafe { libc::geteuid() } == 0;
        let mut iso = Isolation {
            mode: plan.mode,
            namespaces: None,
            landlock_abi: 0,
            seccomp: false,
            cpu_limits: false,
            running_as_root,
            missing: Vec::new(),
        };
        if plan.mode == IsolationMode::None {
            return Ok(iso);
        }
        iso.cpu_limits = plan.cpu_limits && cgroups.cpu;
        iso.seccomp = seccomp_available();
        iso.landlock_abi = landlock_abi();
        if !iso.seccomp {
            iso.missing.push("seccomp (kernel without CONFIG_SECCOMP_FILTER)".into());
        }
        if iso.landlock_abi == 0 {
            iso.missing.push("landlock (kernel without it, or not in the lsm= list)".into());
        }
        if !cgroups.memory {
            iso.missing.push("memory cgroup (cgroupfs not writable: MemorySize is not enforced)".into());
        }
        if !cgroups.pids {
            iso.missing.push("pids cgroup".into());
        }
        if plan.cpu_limits && !cgroups.cpu {
            iso.missing.push("cpu cgroup (CPU is not proportional to memory)".into());
        }
        if iso.seccomp {
            let _ = std::fs::create_dir_all(&plan.root_dir);
            iso.namespaces = Some(NamespaceIsolation { root_dir: plan.root_dir.clone(), api_port: plan.api_port });
            if let Err(e) = probe(&iso) {
                iso.namespaces = None;
                iso.missing.insert(0, format!("namespaces ({e})"));
            }
        } else {
            iso.missing.insert(0, "namespaces (they are only safe with seccomp)".into());
        }
        if plan.mode == IsolationMode::Strict && !iso.missing.is_empty() {
            return Err(SandboxError::Isolation(format!(
                "--isolation strict, but this host lacks: {}",
                iso.missing.join("; ")
            )));
        }
        Ok(iso)
    }

    pub fn is_isolated(&self) -> bool {
        self.namespaces.is_some()
    }

    /// One line for the start banner.
    pub fn describe(&self) -> String {
        if self.mode == IsolationMode::None {
            return "isolation: NONE (--isolation none): functions run as plain processes with Kumo's own \
                    user, files and network, for debugging only"
                .into();
        }
        let mut parts = Vec::new();
        if self.namespaces.is_some() {
            parts.push("user/pid/mount/net/ipc/uts namespaces, uid 993".to_string());
            parts.push("seccomp allow-list".into());
            if self.landlock_abi > 0 {
                parts.push(format!("landlock ABI v{}", self.landlock_abi));
            }
            parts.push("rlimits 1024 files/1024 processes".into());
        } else {
            parts.push("plain processes".into());
        }
        if self.cpu_limits {
            parts.push("CPU ∝ memory (1769 MB = 1 vCPU)".into());
        }
        let mode = if self.mode == IsolationMode::Strict { "strict" } else { "auto" };
        // SAFETY: geteuid has no preconditions.
        let who = if self.running_as_root { "root".to_string() } else { format!("uid {}", unsafe { libc::geteuid() }) };
        let mut line = format!("isolation ({mode}, Kumo runs as {who}): {}", parts.join(", "));
        if !self.missing.is_empty() {
            line.push_str(&format!(". WARNING, not available here: {}", self.missing.join("; ")));
        }
        line
    }
}
