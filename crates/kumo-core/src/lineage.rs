//! Lineage: which original event an invocation descends from, and how deep.
//!
//! Lambda stops a chain of invocations that one triggering event keeps
//! causing (a function writing into its own trigger bucket, a function
//! invoking itself asynchronously) once it goes past 16. It follows the chain
//! through a `Lineage` field of the X-Ray trace header, which the AWS SDKs
//! inside a function copy from `_X_AMZN_TRACE_ID` onto every request they
//! send. Kumo does the same, and also attributes a write to the invocation in
//! flight when the request carries the function's own credentials without
//! the header.
//!
//! Depth counts invocations: an event from outside any function starts at 1;
//! an event caused by an invocation at depth `d` has depth `d + 1`. An event
//! deeper than [`MAX_RECURSION_DEPTH`] is the one Lambda does not run.

use serde::{Deserialize, Serialize};

/// Lambda's threshold: the 17th invocation caused by the same original event is stopped.
pub const MAX_RECURSION_DEPTH: u32 = 16;

/// The chain an invocation belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lineage {
    /// Identifies the original event (8 hex digits in the trace header).
    pub origin: String,
    /// How many invocations this event makes in its chain, itself included.
    pub depth: u32,
}

impl Lineage {
    /// The lineage of an event nobody's invocation caused.
    pub fn origin(origin: &str) -> Lineage {
        Lineage { origin: origin.to_string(), depth: 1 }
    }

    /// The lineage of an event caused by an invocation of this lineage.
    pub fn caused(&self) -> Lineage {
        Lineage { origin: self.origin.clone(), depth: self.depth.saturating_add(1) }
    }

    /// Whether Lambda would stop this event as a recursive loop.
    pub fn is_loop(&self) -> bool {
        self.depth > MAX_RECURSION_DEPTH
    }

    /// The trace-header field: `Lineage=<origin>:<depth>`.
    pub fn trace_field(&self) -> String {
        format!("Lineage={}:{}", self.origin, self.depth)
    }

    /// The lineage in an `X-Amzn-Trace-Id` header (or `_X_AMZN_TRACE_ID`), if any.
    /// Both forms AWS has used are read: `origin:depth` and `version:origin:depth`;
    /// of several `|`-separated entries the deepest counts.
    pub fn from_trace_header(header: &str) -> Option<Lineage> {
        let value = header.split(';').find_map(|f| f.trim().strip_prefix("Lineage="))?;
        value
            .split('|')
            .filter_map(|entry| {
                let parts: Vec<&str> = entry.split(':').collect();
                let (origin, depth) = match parts.as_slice() {
                    [origin, depth] | [_, origin, depth] => (*origin, *depth),
                    _ => return None,
                };
                let valid =
                    !origin.is_empty() && origin.len() <= 64 && origin.bytes().all(|b| b.is_ascii_alphanumeric());
                let depth = depth.parse::<u32>().ok()?;
                valid.then(|| Lineage { origin: origin.to_string(), depth })
            })
            .max_by_key(|l| l.depth)
    }

    /// The `Root=` field of a trace header.
    pub fn trace_root(header: &str) -> Option<&str> {
        header.split(';').find_map(|f| f.trim().strip_prefix("Root=")).filter(|r| !r.is_empty())
    }
}

/// A function's `RecursiveLoop` setting (PutFunctionRecursionConfig).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum RecursiveLoop {
    Allow,
    #[default]
    Terminate,
}

impl RecursiveLoop {
    pub fn parse(s: &str) -> Option<RecursiveLoop> {
        match s {
            "Allow" => Some(RecursiveLoop::Allow),
            "Terminate" => Some(RecursiveLoop::Terminate),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RecursiveLoop::Allow => "Allow",
            RecursiveLoop::Terminate => "Terminate",
        }
    }

    /// Whether an event of `lineage` may run under this setting.
    pub fn permits(self, lineage: Option<&Lineage>) -> bool {
        self == RecursiveLoop::Allow || !lineage.is_some_and(Lineage::is_loop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_seventeenth_invocation_is_the_loop() {
        let mut l = Lineage::origin("037bed70");
        let mut allowed = 0;
        while !l.is_loop() {
            allowed += 1;
            l = l.caused();
        }
        assert_eq!(allowed, 16);
        assert_eq!(l.depth, 17);
        assert!(!RecursiveLoop::Terminate.permits(Some(&l)));
        assert!(RecursiveLoop::Allow.permits(Some(&l)));
        assert!(RecursiveLoop::Terminate.permits(None));
    }

    #[test]
    fn reads_the_header_forms_aws_has_used() {
        let h = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0;Lineage=037bed70:3";
        assert_eq!(Lineage::from_trace_header(h), Some(Lineage { origin: "037bed70".into(), depth: 3 }));
        assert_eq!(Lineage::trace_root(h), Some("1-5759e988-bd862e3fe1be46a994272793"));
        let v = "Root=1-a;Lineage=1:fe460cdd:0";
        assert_eq!(Lineage::from_trace_header(v), Some(Lineage { origin: "fe460cdd".into(), depth: 0 }));
        let multi = "Root=1-a;Lineage=a87bd80c:1|68fd508a:5|c512fbe3:2";
        assert_eq!(Lineage::from_trace_header(multi).map(|l| l.depth), Some(5));
        assert_eq!(Lineage::from_trace_header("Root=1-a;Sampled=1"), None);
        assert_eq!(Lineage::from_trace_header("Lineage=bad origin:1"), None);
        assert_eq!(Lineage::from_trace_header("Lineage=abc:-1"), None);
    }

    proptest! {
        #[test]
        fn a_lineage_survives_its_trace_field(origin in "[0-9a-f]{8}", depth in 0u32..1000) {
            let l = Lineage { origin, depth };
            let header = format!("Root=1-abc;Parent=def;Sampled=0;{}", l.trace_field());
            prop_assert_eq!(Lineage::from_trace_header(&header), Some(l));
        }

        #[test]
        fn parsing_any_header_never_panics(header in ".{0,200}") {
            let _ = Lineage::from_trace_header(&header);
            let _ = Lineage::trace_root(&header);
        }
    }
}
