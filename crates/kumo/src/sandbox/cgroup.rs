//! cgroups for execution environments, on v1, v2 and hybrid hosts.
//!
//! Kumo creates one group per environment *below its own* cgroup, so the
//! environments stay inside the host's accounting. On a hybrid host (v1
//! controllers plus a unified v2 mount, as on our machines) memory comes from
//! v1 and freeze/kill from v2, which needs no controller.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// What failed while preparing cgroups.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("creating cgroup {path}: {source}")]
    Create { path: PathBuf, source: io::Error },
    #[error("configuring cgroup file {path}: {source}")]
    Configure { path: PathBuf, source: io::Error },
}

/// Which hierarchy layout the host has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayoutKind {
    V1,
    V2,
    Hybrid,
    None,
}

/// Where Kumo's environment groups go on this host, per capability.
#[derive(Debug, Clone)]
pub struct CgroupLayout {
    pub kind: LayoutKind,
    /// Parent dir for memory groups (v1 memory hierarchy or v2 with the memory controller).
    memory: Option<(PathBuf, bool)>,
    /// Parent dir in the unified hierarchy (freeze, kill).
    unified: Option<PathBuf>,
    /// Parent dir in the v1 freezer hierarchy, used when there is no unified mount.
    freezer_v1: Option<PathBuf>,
    /// Parent dirs in the v1 pids and cpu hierarchies (on v2 both live in the memory/unified group).
    pids_v1: Option<PathBuf>,
    cpu_v1: Option<PathBuf>,
}

struct Mount {
    point: PathBuf,
    fstype: String,
    super_opts: String,
}

fn parse_mountinfo(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let point = left.split(' ').nth(4)?;
            let mut r = right.split(' ');
            let fstype = r.next()?.to_string();
            let _source = r.next()?;
            let super_opts = r.next().unwrap_or("").to_string();
            Some(Mount { point: PathBuf::from(point), fstype, super_opts })
        })
        .collect()
}

/// `hierarchy-id:controllers:path` lines of /proc/self/cgroup.
fn own_path(proc_cgroup: &str, controller: Option<&str>) -> Option<String> {
    proc_cgroup.lines().find_map(|line| {
        let mut parts = line.splitn(3, ':');
        let _id = parts.next()?;
        let controllers = parts.next()?;
        let path = parts.next()?;
        let matches = match controller {
            None => controllers.is_empty(),
            Some(c) => controllers.split(',').any(|x| x == c),
        };
        matches.then(|| path.to_string())
    })
}

fn join(mount: &Path, cgroup_path: &str) -> PathBuf {
    mount.join(cgroup_path.trim_start_matches('/'))
}

impl CgroupLayout {
    /// Reads /proc/self/mountinfo and /proc/self/cgroup. `group` names Kumo's
    /// own parent group (unique per server process).
    pub fn detect(group: &str) -> CgroupLayout {
        // KUMO_CGROUPS=off runs without cgroups, as on a host that has none
        // (tests use it to exercise the fallbacks).
        if std::env::var("KUMO_CGROUPS").is_ok_and(|v| v == "off") {
            return Self::from_texts("", "", group);
        }
        let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let proc_cgroup = fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
        Self::from_texts(&mountinfo, &proc_cgroup, group)
    }

    fn from_texts(mountinfo: &str, proc_cgroup: &str, group: &str) -> CgroupLayout {
        let mounts = parse_mountinfo(mountinfo);
        let v1_mount = |controller: &str| {
            mounts
                .iter()
                .find(|m| m.fstype == "cgroup" && m.super_opts.split(',').any(|o| o == controller))
                .map(|m| m.point.clone())
        };
        let v2_mount = mounts.iter().find(|m| m.fstype == "cgroup2").map(|m| m.point.clone());
        let memory_v1 = v1_mount("memory")
            .and_then(|mnt| own_path(proc_cgroup, Some("memory")).map(|p| join(&mnt, &p).join(group)));
        let freezer_v1 = v1_mount("freezer")
            .and_then(|mnt| own_path(proc_cgroup, Some("freezer")).map(|p| join(&mnt, &p).join(group)));
        let pids_v1 =
            v1_mount("pids").and_then(|mnt| own_path(proc_cgroup, Some("pids")).map(|p| join(&mnt, &p).join(group)));
        let cpu_v1 =
            v1_mount("cpu").and_then(|mnt| own_path(proc_cgroup, Some("cpu")).map(|p| join(&mnt, &p).join(group)));
        let unified = v2_mount.as_ref().and_then(|mnt| own_path(proc_cgroup, None).map(|p| join(mnt, &p).join(group)));
        let has_v1 = mounts.iter().any(|m| m.fstype == "cgroup");
        let kind = match (has_v1, unified.is_some()) {
            (true, true) => LayoutKind::Hybrid,
            (true, false) => LayoutKind::V1,
            (false, true) => LayoutKind::V2,
            (false, false) => LayoutKind::None,
        };
        // Pure v2: memory lives in the unified tree when the controller is available there.
        let memory = match (&memory_v1, &unified) {
            (Some(p), _) => Some((p.clone(), true)),
            (None, Some(u)) => {
                let parent = u.parent().map(Path::to_path_buf).unwrap_or_default();
                let controllers = fs::read_to_string(parent.join("cgroup.controllers")).unwrap_or_default();
                controllers.split_whitespace().any(|c| c == "memory").then(|| (u.clone(), false))
            }
            _ => None,
        };
        CgroupLayout { kind, memory, unified, freezer_v1, pids_v1, cpu_v1 }
    }

    /// Creates Kumo's parent groups and checks they are writable. Returns what works.
    pub fn prepare(&self) -> Capabilities {
        let mut caps = Capabilities::default();
        if let Some((dir, v1)) = &self.memory
            && fs::create_dir_all(dir).is_ok()
        {
            if !*v1 {
                // v2: children get the memory controller only if the parent delegates it.
                let _ = fs::write(dir.join("cgroup.subtree_control"), "+memory +pids +cpu");
                let delegated = fs::read_to_string(dir.join("cgroup.subtree_control")).unwrap_or_default();
                caps.pids = delegated.split_whitespace().any(|c| c == "pids");
                caps.cpu = delegated.split_whitespace().any(|c| c == "cpu");
            }
            caps.memory = true;
        }
        if let Some(dir) = &self.pids_v1 {
            caps.pids = fs::create_dir_all(dir).is_ok();
        }
        if let Some(dir) = &self.cpu_v1 {
            caps.cpu = fs::create_dir_all(dir).is_ok() && dir.join("cpu.cfs_quota_us").exists();
        }
        if let Some(dir) = &self.unified {
            caps.freeze_v2 = fs::create_dir_all(dir).is_ok() && dir.join("cgroup.freeze").exists();
            caps.kill_v2 = dir.join("cgroup.kill").exists();
        }
        if !caps.freeze_v2
            && let Some(dir) = &self.freezer_v1
        {
            caps.freeze_v1 = fs::create_dir_all(dir).is_ok();
        }
        caps
    }

    /// Makes the groups of one environment.
    pub fn create(&self, caps: &Capabilities, id: &str, memory_limit: u64) -> Result<EnvCgroup, CgroupError> {
        let mut group = EnvCgroup::default();
        if caps.memory
            && let Some((parent, v1)) = &self.memory
        {
            let dir = parent.join(id);
            mkdir(&dir)?;
            let (limit_file, peak_file, events_file) = if *v1 {
                ("memory.limit_in_bytes", "memory.max_usage_in_bytes", "memory.oom_control")
            } else {
                ("memory.max", "memory.peak", "memory.events")
            };
            write_file(&dir.join(limit_file), memory_limit.to_string().as_bytes())?;
            if *v1 {
                // Without swap accounting this file is absent; with it, swap must not extend the limit.
                let _ = fs::write(dir.join("memory.memsw.limit_in_bytes"), memory_limit.to_string());
            } else {
                let _ = fs::write(dir.join("memory.swap.max"), "0");
            }
            group.memory_procs = Some(open_rw(&dir.join("cgroup.procs"))?);
            group.peak = open_rw(&dir.join(peak_file)).ok();
            group.oom_events = Some(dir.join(events_file));
            group.memory_v1 = *v1;
            if !*v1 {
                if caps.pids {
                    write_file(&dir.join("pids.max"), PIDS_MAX.as_bytes())?;
                }
                group.cpu = caps.cpu.then(|| (dir.clone(), false));
            }
            group.dirs.push(dir);
        }
        if caps.pids
            && let Some(parent) = &self.pids_v1
        {
            let dir = parent.join(id);
            mkdir(&dir)?;
            write_file(&dir.join("pids.max"), PIDS_MAX.as_bytes())?;
            group.other_procs.push(open_rw(&dir.join("cgroup.procs"))?);
            group.dirs.push(dir);
        }
        if caps.cpu
            && let Some(parent) = &self.cpu_v1
        {
            let dir = parent.join(id);
            mkdir(&dir)?;
            group.other_procs.push(open_rw(&dir.join("cgroup.procs"))?);
            group.cpu = Some((dir.clone(), true));
            group.dirs.push(dir);
        }
        if caps.freeze_v2 {
            if let Some(parent) = &self.unified {
                let dir = parent.join(id);
                if !group.dirs.contains(&dir) {
                    mkdir(&dir)?;
                    group.unified_procs = Some(open_rw(&dir.join("cgroup.procs"))?);
                    group.dirs.push(dir.clone());
                }
                group.freeze = open_rw(&dir.join("cgroup.freeze")).ok().map(|f| (f, FreezeKind::V2));
                group.kill = caps.kill_v2.then(|| dir.join("cgroup.kill"));
            }
        } else if caps.freeze_v1
            && let Some(parent) = &self.freezer_v1
        {
            let dir = parent.join(id);
            mkdir(&dir)?;
            group.freezer_procs = Some(open_rw(&dir.join("cgroup.procs"))?);
            group.freeze = open_rw(&dir.join("freezer.state")).ok().map(|f| (f, FreezeKind::V1));
            group.dirs.push(dir);
        }
        Ok(group)
    }

    /// Removes what a Kumo server that died without cleaning up (kill -9, a
    /// crash) left behind: sibling `kumo-<pid>` groups whose process is gone,
    /// with any environment still inside them. Dying memory cgroups slow the
    /// whole memory controller down, so they must not pile up.
    pub fn remove_stale_siblings(&self) -> usize {
        let mut removed = 0;
        for parent in self.parents().filter_map(|dir| dir.parent()) {
            let Ok(entries) = fs::read_dir(parent) else { continue };
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                let Some(pid) = name.strip_prefix("kumo-").and_then(|p| p.parse::<u32>().ok()) else { continue };
                if Path::new(&format!("/proc/{pid}")).exists() {
                    continue;
                }
                let dir = entry.path();
                if let Ok(envs) = fs::read_dir(&dir) {
                    for env in envs.flatten().filter(|e| e.path().is_dir()) {
                        kill_and_remove(&env.path());
                    }
                }
                if fs::remove_dir(&dir).is_ok() {
                    removed += 1;
                }
            }
        }
        removed
    }

    /// Removes Kumo's parent groups (at shutdown, once every environment is gone).
    pub fn remove_parents(&self) {
        for dir in self.parents() {
            let _ = fs::remove_dir(dir);
        }
    }

    /// Kumo's own group in every hierarchy it uses.
    fn parents(&self) -> impl Iterator<Item = &PathBuf> {
        [
            self.memory.as_ref().map(|m| &m.0),
            self.unified.as_ref(),
            self.freezer_v1.as_ref(),
            self.pids_v1.as_ref(),
            self.cpu_v1.as_ref(),
        ]
        .into_iter()
        .flatten()
    }

    pub fn describe(&self, caps: &Capabilities) -> String {
        format!(
            "layout {:?}, memory limit+peak {}, pids limit {}, cpu quota {}, freeze {}, kill {}",
            self.kind,
            if caps.memory { "yes" } else { "NO" },
            if caps.pids { "yes" } else { "NO" },
            if caps.cpu { "yes" } else { "NO" },
            if caps.freeze_v2 {
                "v2"
            } else if caps.freeze_v1 {
                "v1"
            } else {
                "SIGSTOP fallback"
            },
            if caps.kill_v2 { "cgroup.kill" } else { "signals" },
        )
    }
}

/// Kills every process in a group and removes it (retrying while the kernel releases it).
fn kill_and_remove(dir: &Path) {
    let _ = fs::write(dir.join("cgroup.kill"), "1");
    let _ = fs::write(dir.join("freezer.state"), "THAWED");
    let _ = fs::write(dir.join("cgroup.freeze"), "0");
    for _ in 0..50 {
        let procs = fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
        for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
            // SAFETY: kill(2) has no memory-safety preconditions.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        if fs::remove_dir(dir).is_ok() || !dir.exists() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}

fn mkdir(dir: &Path) -> Result<(), CgroupError> {
    match fs::create_dir(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(source) => Err(CgroupError::Create { path: dir.to_path_buf(), source }),
    }
}

fn write_file(path: &Path, value: &[u8]) -> Result<(), CgroupError> {
    fs::write(path, value).map_err(|source| CgroupError::Configure { path: path.to_path_buf(), source })
}

fn open_rw(path: &Path) -> Result<File, CgroupError> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|source| CgroupError::Configure { path: path.to_path_buf(), source })
}

/// What this host lets Kumo do with cgroups.
#[derive(Debug, Clone, Copy, Default)]
pub struct Capabilities {
    pub memory: bool,
    pub freeze_v2: bool,
    pub freeze_v1: bool,
    pub kill_v2: bool,
    pub pids: bool,
    pub cpu: bool,
}

/// Lambda's 1,024 processes/threads, plus the sandbox shell that waits for the runtime.
const PIDS_MAX: &str = "1025";

/// A CPU quota per scheduling period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuLimit {
    pub quota_us: u64,
    pub period_us: u64,
}

impl CpuLimit {
    /// Lambda allots CPU in proportion to memory: 1,769 MB buys one full vCPU.
    pub fn for_memory(bytes: u64) -> CpuLimit {
        const PERIOD_US: u64 = 100_000;
        let mb = bytes / (1024 * 1024);
        CpuLimit { quota_us: (PERIOD_US * mb / 1769).max(1000), period_us: PERIOD_US }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FreezeKind {
    V1,
    V2,
}

/// The groups of one environment, with the files kept open that the hot path touches.
#[derive(Debug, Default)]
pub struct EnvCgroup {
    dirs: Vec<PathBuf>,
    memory_procs: Option<File>,
    unified_procs: Option<File>,
    freezer_procs: Option<File>,
    peak: Option<File>,
    memory_v1: bool,
    oom_events: Option<PathBuf>,
    freeze: Option<(File, FreezeKind)>,
    kill: Option<PathBuf>,
    /// cgroup.procs of the v1 pids and cpu groups.
    other_procs: Vec<File>,
    /// The group holding the CPU quota, and whether it is v1.
    cpu: Option<(PathBuf, bool)>,
}

impl EnvCgroup {
    /// The `cgroup.procs` descriptors a child writes "0" to before exec, joining every group.
    pub fn join_fds(&self) -> Vec<RawFd> {
        [&self.memory_procs, &self.unified_procs, &self.freezer_procs]
            .into_iter()
            .flatten()
            .chain(&self.other_procs)
            .map(AsRawFd::as_raw_fd)
            .collect()
    }

    /// Caps CPU time (best effort: a host without the cpu controller runs uncapped, and says so at start).
    pub fn set_cpu_limit(&self, limit: CpuLimit) {
        match &self.cpu {
            Some((dir, true)) => {
                let _ = fs::write(dir.join("cpu.cfs_period_us"), limit.period_us.to_string());
                let _ = fs::write(dir.join("cpu.cfs_quota_us"), limit.quota_us.to_string());
            }
            Some((dir, false)) => {
                let _ = fs::write(dir.join("cpu.max"), format!("{} {}", limit.quota_us, limit.period_us));
            }
            None => {}
        }
    }

    /// Sets the memory limit (a pre-started shell gets its function's limit when claimed).
    pub fn set_memory_limit(&self, bytes: u64) -> Result<(), CgroupError> {
        let Some(dir) = self.dirs.first().filter(|_| self.memory_procs.is_some()) else { return Ok(()) };
        let file = if self.memory_v1 { "memory.limit_in_bytes" } else { "memory.max" };
        if self.memory_v1 {
            // memsw (when present) must stay >= the memory limit: lower it after, raise it before.
            let _ = fs::write(dir.join("memory.memsw.limit_in_bytes"), bytes.to_string());
        }
        write_file(&dir.join(file), bytes.to_string().as_bytes())?;
        if self.memory_v1 {
            let _ = fs::write(dir.join("memory.memsw.limit_in_bytes"), bytes.to_string());
        }
        Ok(())
    }

    pub fn can_freeze(&self) -> bool {
        self.freeze.is_some()
    }

    pub fn has_memory(&self) -> bool {
        self.memory_procs.is_some()
    }

    /// Freezes or thaws every process of the environment. Returns false when
    /// the cgroup freezer is not available (the caller falls back to signals).
    pub fn set_frozen(&self, frozen: bool) -> bool {
        match &self.freeze {
            Some((file, FreezeKind::V2)) => file.write_at(if frozen { b"1" } else { b"0" }, 0).is_ok(),
            Some((file, FreezeKind::V1)) => file.write_at(if frozen { b"FROZEN" } else { b"THAWED" }, 0).is_ok(),
            None => false,
        }
    }

    /// Peak memory usage in bytes since the last reset.
    pub fn peak_bytes(&self) -> Option<u64> {
        let file = self.peak.as_ref()?;
        let mut buf = [0u8; 32];
        let n = file.read_at(&mut buf, 0).ok()?;
        std::str::from_utf8(&buf[..n]).ok()?.trim().parse().ok()
    }

    /// Restarts peak tracking (v1: write 0; v2 ≥ 6.12: any write resets this fd's view).
    pub fn reset_peak(&self) -> bool {
        match &self.peak {
            Some(file) => file.write_at(if self.memory_v1 { b"0" } else { b"reset" }, 0).is_ok(),
            None => false,
        }
    }

    /// How many times the kernel's OOM killer has fired in this environment.
    pub fn oom_kills(&self) -> u64 {
        let Some(path) = &self.oom_events else { return 0 };
        let text = fs::read_to_string(path).unwrap_or_default();
        text.lines().find_map(|l| l.strip_prefix("oom_kill ").and_then(|n| n.trim().parse().ok())).unwrap_or(0)
    }

    /// Kills every process in the environment. Returns false if no group could do it.
    pub fn kill_all(&self) -> bool {
        if let Some(kill) = &self.kill
            && fs::write(kill, "1").is_ok()
        {
            return true;
        }
        let mut any = false;
        for dir in &self.dirs {
            if let Ok(text) = fs::read_to_string(dir.join("cgroup.procs")) {
                for pid in text.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                    // SAFETY: kill(2) has no memory-safety preconditions.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                    any = true;
                }
            }
        }
        // Frozen tasks die only once thawed (v1 freezer).
        self.set_frozen(false);
        any
    }

    /// Whether any process is still in the environment's groups.
    pub fn populated(&self) -> bool {
        self.dirs
            .iter()
            .any(|dir| fs::read_to_string(dir.join("cgroup.procs")).map(|t| !t.trim().is_empty()).unwrap_or(false))
    }

    /// Removes the groups; they must be empty. Retries briefly because the
    /// kernel releases a group shortly after its last task is reaped.
    pub fn remove(&mut self) {
        self.memory_procs = None;
        self.unified_procs = None;
        self.freezer_procs = None;
        self.peak = None;
        self.freeze = None;
        self.other_procs.clear();
        for dir in self.dirs.drain(..) {
            for _ in 0..50 {
                match fs::remove_dir(&dir) {
                    Ok(()) => break,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => break,
                    Err(_) => std::thread::sleep(std::time::Duration::from_millis(2)),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID_MOUNTINFO: &str = "\
30 25 0:26 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw,nsdelegate
31 25 0:27 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,memory
32 25 0:28 / /sys/fs/cgroup/freezer rw,nosuid,nodev,noexec,relatime shared:12 - cgroup cgroup rw,freezer";
    const HYBRID_CGROUP: &str = "6:freezer:/\n4:memory:/process_api/abc\n0::/";

    #[test]
    fn detects_hybrid_layout() {
        let l = CgroupLayout::from_texts(HYBRID_MOUNTINFO, HYBRID_CGROUP, "kumo-1");
        assert_eq!(l.kind, LayoutKind::Hybrid);
        assert_eq!(l.memory, Some((PathBuf::from("/sys/fs/cgroup/memory/process_api/abc/kumo-1"), true)));
        assert_eq!(l.unified, Some(PathBuf::from("/sys/fs/cgroup/unified/kumo-1")));
        assert_eq!(l.freezer_v1, Some(PathBuf::from("/sys/fs/cgroup/freezer/kumo-1")));
    }

    #[test]
    fn cpu_follows_memory_like_lambda() {
        let mb = |m: u64| CpuLimit::for_memory(m * 1024 * 1024).quota_us;
        assert_eq!(mb(1769), 100_000);
        assert_eq!(mb(3538), 200_000);
        assert_eq!(mb(128), 7_235);
        assert_eq!(mb(10_240), 578_858);
        assert_eq!(mb(1), 1000, "the kernel's minimum quota");
    }

    #[test]
    fn detects_v2_only() {
        let mountinfo = "25 1 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw";
        let l = CgroupLayout::from_texts(mountinfo, "0::/user.slice/x.scope", "kumo-2");
        assert_eq!(l.kind, LayoutKind::V2);
        assert_eq!(l.unified, Some(PathBuf::from("/sys/fs/cgroup/user.slice/x.scope/kumo-2")));
    }

    #[test]
    fn no_cgroups_at_all() {
        let l = CgroupLayout::from_texts("", "", "kumo-3");
        assert_eq!(l.kind, LayoutKind::None);
        assert!(l.memory.is_none() && l.unified.is_none());
    }
}
