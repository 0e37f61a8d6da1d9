//! Finding what runs each runtime on this machine.
//!
//! Python and Node runtimes use an interpreter found on the host plus the
//! bootstrap Kumo ships (embedded in the binary, written to the data dir at
//! start). `provided*` runtimes run the package's own `bootstrap`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use kumo_core::runtime::{self, RuntimeFamily, RuntimeSupport};

const PYTHON_BOOTSTRAP: &str = include_str!("../../../../runtimes/python/bootstrap.py");
const NODE_BOOTSTRAP: &str = include_str!("../../../../runtimes/node/bootstrap.js");

/// An interpreter found on the host.
#[derive(Debug, Clone)]
pub struct Interpreter {
    pub path: PathBuf,
    /// The full version it reports, e.g. `3.12.1` or `20.20.2`.
    pub version: String,
}

/// How to start an environment of one runtime.
#[derive(Debug, Clone)]
pub struct Launch {
    pub program: PathBuf,
    pub args: Vec<String>,
    /// `python:3.12.1`-style runtime version for the INIT_START line.
    pub runtime_version: String,
    /// Extra directory to put first on PATH (the interpreter's own).
    pub path_prefix: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("writing the runtime bootstraps to {path}: {source}")]
    Install { path: PathBuf, source: std::io::Error },
}

/// Runtimes resolved once at start-up.
#[derive(Debug, Clone)]
pub struct RuntimeCatalog {
    python: HashMap<u32, Interpreter>,
    node: HashMap<u32, Interpreter>,
    runtime_dir: PathBuf,
}

impl RuntimeCatalog {
    /// Writes the bootstraps under `data_dir/runtimes` and looks for interpreters.
    /// `overrides` maps runtime ids (e.g. `python3.12`) to interpreter paths.
    pub fn discover(data_dir: &Path, overrides: &[(String, PathBuf)]) -> Result<RuntimeCatalog, RuntimeError> {
        let runtime_dir = data_dir.join("runtimes");
        for (sub, name, body) in
            [("python", "bootstrap.py", PYTHON_BOOTSTRAP), ("node", "bootstrap.js", NODE_BOOTSTRAP)]
        {
            let dir = runtime_dir.join(sub);
            let install = |source| RuntimeError::Install { path: dir.clone(), source };
            std::fs::create_dir_all(&dir).map_err(install)?;
            let path = dir.join(name);
            if std::fs::read_to_string(&path).ok().as_deref() != Some(body) {
                let tmp = dir.join(format!(".{name}.tmp"));
                std::fs::write(&tmp, body).map_err(install)?;
                std::fs::rename(&tmp, &path).map_err(install)?;
            }
        }
        let mut catalog = RuntimeCatalog { python: HashMap::new(), node: HashMap::new(), runtime_dir };
        for minor in 9..=14 {
            if let Some(i) = find_python(minor) {
                catalog.python.insert(minor, i);
            }
        }
        for major in [18, 20, 22, 24] {
            if let Some(i) = find_node(major) {
                catalog.node.insert(major, i);
            }
        }
        for (runtime_id, path) in overrides {
            let Some(RuntimeSupport::Supported(family)) = runtime::classify(runtime_id) else { continue };
            let version = interpreter_version(path, family).unwrap_or_else(|| "unknown".into());
            let interp = Interpreter { path: path.clone(), version };
            match family {
                RuntimeFamily::Python { minor } => {
                    catalog.python.insert(minor, interp);
                }
                RuntimeFamily::Node { major } => {
                    catalog.node.insert(major, interp);
                }
                RuntimeFamily::Provided => {}
            }
        }
        Ok(catalog)
    }

    pub fn runtime_dir(&self) -> &Path {
        &self.runtime_dir
    }

    /// Why a supported runtime cannot run here, if it cannot.
    pub fn unavailable_reason(&self, runtime_id: &str) -> Option<String> {
        match runtime::classify(runtime_id)? {
            RuntimeSupport::Supported(RuntimeFamily::Python { minor }) if !self.python.contains_key(&minor) => {
                Some(format!(
                    "The runtime {runtime_id} needs a python3.{minor} interpreter, and none was found on the Kumo server's machine (searched PATH and ~/.pyenv/versions). Install it or start kumo with --runtime-path {runtime_id}=/path/to/python3.{minor}."
                ))
            }
            RuntimeSupport::Supported(RuntimeFamily::Node { major }) if !self.node.contains_key(&major) => {
                Some(format!(
                    "The runtime {runtime_id} needs Node.js {major}, and none was found on the Kumo server's machine (searched PATH and ~/.nvm). Install it or start kumo with --runtime-path {runtime_id}=/path/to/node."
                ))
            }
            _ => None,
        }
    }

    /// How to start `runtime_id` with the package extracted at `task_root`.
    pub fn launch(&self, runtime_id: &str, task_root: &Path) -> Option<Launch> {
        let RuntimeSupport::Supported(family) = runtime::classify(runtime_id)? else { return None };
        match family {
            RuntimeFamily::Python { minor } => {
                let i = self.python.get(&minor)?;
                Some(Launch {
                    program: i.path.clone(),
                    args: vec![
                        // Never write .pyc next to the (read-only) code; keep startup lean.
                        "-B".into(),
                        self.runtime_dir.join("python/bootstrap.py").display().to_string(),
                    ],
                    runtime_version: format!("python:{}", i.version),
                    path_prefix: i.path.parent().map(Path::to_path_buf),
                })
            }
            RuntimeFamily::Node { major } => {
                let i = self.node.get(&major)?;
                Some(Launch {
                    program: i.path.clone(),
                    args: vec![self.runtime_dir.join("node/bootstrap.js").display().to_string()],
                    runtime_version: format!("nodejs:{}", i.version),
                    path_prefix: i.path.parent().map(Path::to_path_buf),
                })
            }
            RuntimeFamily::Provided => Some(Launch {
                program: task_root.join("bootstrap"),
                args: Vec::new(),
                runtime_version: format!("{runtime_id}:kumo"),
                path_prefix: None,
            }),
        }
    }

    /// One line per runtime for the start-up banner.
    pub fn describe(&self) -> Vec<String> {
        let mut lines = Vec::new();
        let mut py: Vec<_> = self.python.iter().collect();
        py.sort_by_key(|(k, _)| **k);
        for (minor, i) in py {
            lines.push(format!("python3.{minor} -> {} ({})", i.path.display(), i.version));
        }
        let mut node: Vec<_> = self.node.iter().collect();
        node.sort_by_key(|(k, _)| **k);
        for (major, i) in node {
            lines.push(format!("nodejs{major}.x -> {} ({})", i.path.display(), i.version));
        }
        lines.push("provided, provided.al2, provided.al2023 -> the package's bootstrap".into());
        lines
    }
}

fn interpreter_version(path: &Path, family: RuntimeFamily) -> Option<String> {
    let out = Command::new(path).arg("--version").env("PYENV_VERSION", "system").output().ok()?;
    let text = String::from_utf8_lossy(if out.stdout.is_empty() { &out.stderr } else { &out.stdout }).to_string();
    let text = text.trim();
    match family {
        RuntimeFamily::Python { .. } => text.strip_prefix("Python ").map(str::to_string),
        RuntimeFamily::Node { .. } => text.strip_prefix('v').map(str::to_string),
        RuntimeFamily::Provided => None,
    }
}

fn path_dirs() -> Vec<PathBuf> {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        // pyenv and nodenv shims only work inside a matching "version" context.
        .filter(|d: &PathBuf| !d.to_string_lossy().contains("/shims"))
        .collect()
}

fn home() -> Option<PathBuf> {
    std::env::var_os("HOME").map(PathBuf::from)
}

fn find_python(minor: u32) -> Option<Interpreter> {
    let name = format!("python3.{minor}");
    let mut candidates: Vec<PathBuf> = path_dirs().into_iter().map(|d| d.join(&name)).collect();
    let pyenv_root = std::env::var_os("PYENV_ROOT").map(PathBuf::from).or_else(|| home().map(|h| h.join(".pyenv")));
    if let Some(root) = pyenv_root
        && let Ok(entries) = std::fs::read_dir(root.join("versions"))
    {
        let mut versions: Vec<PathBuf> = entries
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(&format!("3.{minor}.")))
            .map(|e| e.path().join("bin").join(&name))
            .collect();
        versions.sort();
        candidates.extend(versions.into_iter().rev());
    }
    candidates.extend([PathBuf::from("/usr/bin").join(&name), PathBuf::from("/usr/local/bin").join(&name)]);
    candidates.retain(|p| p.is_file());
    candidates.dedup();
    // Lambda's Python runtimes ship boto3: prefer an interpreter that has it.
    candidates.sort_by_key(|p| !has_boto3(p, minor));
    candidates.into_iter().find_map(|path| {
        let version = interpreter_version(&path, RuntimeFamily::Python { minor })?;
        version.starts_with(&format!("3.{minor}.")).then_some(Interpreter { path, version })
    })
}

/// Whether boto3 is installed for the interpreter at `bin/python3.X` (checked on disk, without running it).
fn has_boto3(interpreter: &Path, minor: u32) -> bool {
    let Some(prefix) = interpreter.parent().and_then(Path::parent) else { return false };
    let site = prefix.join(format!("lib/python3.{minor}/site-packages/boto3"));
    let debian = prefix.join("lib/python3/dist-packages/boto3");
    let local = prefix.join(format!("local/lib/python3.{minor}/dist-packages/boto3"));
    site.is_dir() || debian.is_dir() || local.is_dir()
}

fn find_node(major: u32) -> Option<Interpreter> {
    let mut candidates: Vec<PathBuf> =
        path_dirs().into_iter().flat_map(|d| [d.join("node"), d.join("nodejs")]).collect();
    if let Some(h) = home()
        && let Ok(entries) = std::fs::read_dir(h.join(".nvm/versions/node"))
    {
        candidates.extend(
            entries
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with(&format!("v{major}.")))
                .map(|e| e.path().join("bin/node")),
        );
    }
    candidates.into_iter().filter(|p| p.is_file()).find_map(|path| {
        let version = interpreter_version(&path, RuntimeFamily::Node { major })?;
        version.starts_with(&format!("{major}.")).then_some(Interpreter { path, version })
    })
}
