//! The runtimes Kumo knows by Lambda identifier, and what runs each one.

/// How a runtime's environment is started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RuntimeFamily {
    /// A CPython interpreter of this minor version runs Kumo's Python bootstrap.
    Python { minor: u32 },
    /// A Node.js of this major version runs Kumo's Node bootstrap.
    Node { major: u32 },
    /// The package's own `bootstrap` executable is the runtime.
    Provided,
}

/// What Kumo knows about a Lambda runtime identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuntimeSupport {
    Supported(RuntimeFamily),
    /// Lambda has retired it for new functions; the string names the successor.
    Deprecated {
        successor: &'static str,
    },
    /// A real Lambda runtime Kumo cannot run (yet).
    Unsupported,
}

/// Every identifier in Lambda's `Runtime` enum that is still accepted somewhere.
pub const LAMBDA_RUNTIMES: &[&str] = &[
    "nodejs",
    "nodejs4.3",
    "nodejs6.10",
    "nodejs8.10",
    "nodejs10.x",
    "nodejs12.x",
    "nodejs14.x",
    "nodejs16.x",
    "nodejs18.x",
    "nodejs20.x",
    "nodejs22.x",
    "nodejs24.x",
    "java8",
    "java8.al2",
    "java11",
    "java17",
    "java21",
    "java25",
    "python2.7",
    "python3.6",
    "python3.7",
    "python3.8",
    "python3.9",
    "python3.10",
    "python3.11",
    "python3.12",
    "python3.13",
    "python3.14",
    "dotnetcore1.0",
    "dotnetcore2.0",
    "dotnetcore2.1",
    "dotnetcore3.1",
    "dotnet6",
    "dotnet8",
    "dotnet10",
    "nodejs4.3-edge",
    "go1.x",
    "ruby2.5",
    "ruby2.7",
    "ruby3.2",
    "ruby3.3",
    "ruby3.4",
    "provided",
    "provided.al2",
    "provided.al2023",
];

pub fn classify(runtime: &str) -> Option<RuntimeSupport> {
    if !LAMBDA_RUNTIMES.contains(&runtime) {
        return None;
    }
    let support = match runtime {
        "provided" | "provided.al2" | "provided.al2023" => RuntimeSupport::Supported(RuntimeFamily::Provided),
        "python3.9" | "python3.10" | "python3.11" | "python3.12" | "python3.13" | "python3.14" => {
            let minor = runtime["python3.".len()..].parse().unwrap_or(0);
            RuntimeSupport::Supported(RuntimeFamily::Python { minor })
        }
        "nodejs18.x" | "nodejs20.x" | "nodejs22.x" | "nodejs24.x" => {
            let major = runtime["nodejs".len()..runtime.len() - 2].parse().unwrap_or(0);
            RuntimeSupport::Supported(RuntimeFamily::Node { major })
        }
        r if r.starts_with("python") => RuntimeSupport::Deprecated { successor: "python3.13" },
        r if r.starts_with("nodejs") => RuntimeSupport::Deprecated { successor: "nodejs22.x" },
        "go1.x" => RuntimeSupport::Deprecated { successor: "provided.al2023" },
        _ => RuntimeSupport::Unsupported,
    };
    Some(support)
}

/// The value of `AWS_EXECUTION_ENV`; Lambda omits it for custom runtimes.
pub fn execution_env(runtime: &str) -> Option<String> {
    if runtime.starts_with("provided") { None } else { Some(format!("AWS_Lambda_{runtime}")) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies() {
        assert_eq!(classify("python3.12"), Some(RuntimeSupport::Supported(RuntimeFamily::Python { minor: 12 })));
        assert_eq!(classify("nodejs20.x"), Some(RuntimeSupport::Supported(RuntimeFamily::Node { major: 20 })));
        assert_eq!(classify("provided.al2023"), Some(RuntimeSupport::Supported(RuntimeFamily::Provided)));
        assert_eq!(classify("python3.7"), Some(RuntimeSupport::Deprecated { successor: "python3.13" }));
        assert_eq!(classify("java21"), Some(RuntimeSupport::Unsupported));
        assert_eq!(classify("cobol"), None);
        assert_eq!(execution_env("python3.12").as_deref(), Some("AWS_Lambda_python3.12"));
        assert_eq!(execution_env("provided.al2"), None);
    }
}
