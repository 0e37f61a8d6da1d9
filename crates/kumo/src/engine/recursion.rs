//! Recursive-loop detection: the lineage of every invocation in flight, the
//! functions' `RecursiveLoop` settings, and the count of stopped events.
//!
//! A request that reaches Kumo from inside a function (an S3 write, an Invoke)
//! is attributed to the invocation that made it: by the trace root the SDK
//! copied from `_X_AMZN_TRACE_ID`, else by the `Lineage` field of that header,
//! else by the function's own session credentials (the deepest invocation of
//! that function in flight: when several run at once Kumo cannot tell which
//! one wrote, and erring deep stops a loop early rather than never).

use std::collections::HashMap;
use std::sync::Mutex;

use kumo_core::lineage::{Lineage, RecursiveLoop};
use kumo_core::{ApiError, ErrorCode};

use super::{Engine, store_error};
use kumo_core::function::FunctionMeta;

#[derive(Default)]
pub(super) struct Lineages {
    inner: Mutex<LineageMaps>,
}

#[derive(Default)]
struct LineageMaps {
    /// Trace root of each invocation in flight → its function and lineage.
    by_root: HashMap<String, (String, Lineage)>,
    /// Access key ids Kumo issued to environments → the function they run.
    function_keys: HashMap<String, String>,
    /// Events stopped as recursive loops, by function (RecursiveInvocationsDropped).
    dropped: HashMap<String, u64>,
}

/// Keeps an invocation registered while it runs.
pub(super) struct InFlightLineage<'a> {
    lineages: &'a Lineages,
    root: String,
}

impl Drop for InFlightLineage<'_> {
    fn drop(&mut self) {
        self.lineages.maps().by_root.remove(&self.root);
    }
}

impl Lineages {
    fn maps(&self) -> std::sync::MutexGuard<'_, LineageMaps> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn enter(&self, root: &str, function: &str, lineage: Lineage) -> InFlightLineage<'_> {
        self.maps().by_root.insert(root.to_string(), (function.to_string(), lineage));
        InFlightLineage { lineages: self, root: root.to_string() }
    }

    pub(super) fn remember_key(&self, access_key_id: &str, function: &str) {
        let mut maps = self.maps();
        if maps.function_keys.len() > 100_000 {
            maps.function_keys.clear();
        }
        maps.function_keys.insert(access_key_id.to_string(), function.to_string());
    }

    fn count_drop(&self, function: &str) {
        *self.maps().dropped.entry(function.to_string()).or_default() += 1;
    }
}

/// What Kumo knows about where a request came from.
#[derive(Debug, Clone, Default)]
pub struct Caller<'a> {
    /// The request's `X-Amzn-Trace-Id` header.
    pub trace_header: Option<&'a str>,
    /// The access key it was signed with.
    pub access_key_id: Option<&'a str>,
}

/// A new 8-hex-digit origin for an event nobody's invocation caused.
pub(super) fn new_origin() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..8].to_string()
}

impl Engine {
    /// The lineage of the invocation that made a request, if one did.
    pub fn caller_lineage(&self, caller: &Caller<'_>) -> Option<Lineage> {
        let maps = self.lineages.maps();
        if let Some(header) = caller.trace_header {
            if let Some((_, l)) = Lineage::trace_root(header).and_then(|root| maps.by_root.get(root)) {
                return Some(l.clone());
            }
            if let Some(l) = Lineage::from_trace_header(header) {
                return Some(l);
            }
        }
        let function = maps.function_keys.get(caller.access_key_id?)?;
        maps.by_root.values().filter(|(f, _)| f == function).map(|(_, l)| l.clone()).max_by_key(|l| l.depth)
    }

    /// The lineage of an event a request causes: one deeper than its caller's, or a new chain.
    pub fn lineage_for_event(&self, caller: &Caller<'_>) -> Lineage {
        match self.caller_lineage(caller) {
            Some(l) => l.caused(),
            None => Lineage::origin(&new_origin()),
        }
    }

    /// Whether `function` may run an event of `lineage`; counts and logs a stop.
    pub(super) fn recursion_permits(&self, function: &str, lineage: Option<&Lineage>, request_id: &str) -> bool {
        let name = kumo_core::names::FunctionRef::parse(function).map(|r| r.name).unwrap_or_else(|_| function.into());
        let (setting, log_group) = match self.read_functions().get(&name) {
            Some(s) => (s.meta.recursive_loop, Some(s.latest.config.logging.log_group.clone())),
            None => (RecursiveLoop::default(), None),
        };
        if setting.permits(lineage) {
            return true;
        }
        self.lineages.count_drop(&name);
        let depth = lineage.map_or(0, |l| l.depth);
        tracing::warn!(
            function = %name,
            request_id,
            depth,
            metric = "RecursiveInvocationsDropped",
            "recursive loop detected: the event is not delivered"
        );
        if let Some(group) = log_group {
            // In the function's own log group, where its author looks first.
            let now = super::now_ms();
            self.store.append_logs(vec![crate::store::LogEvent {
                group: group.as_str().into(),
                stream: format!("{}/kumo/recursion", kumo_core::time::iso8601_millis(now).get(..10).unwrap_or("")).into(),
                timestamp_ms: now,
                message: format!(
                    "Kumo: recursive loop detected: event {request_id} would be invocation {depth} of one chain (limit {}); it was not delivered (RecursiveLoop=Terminate, metric RecursiveInvocationsDropped)",
                    kumo_core::lineage::MAX_RECURSION_DEPTH
                ),
            }]);
        }
        false
    }

    /// Events stopped as recursive loops, by function.
    pub fn recursive_invocations_dropped(&self) -> Vec<(String, u64)> {
        let mut v: Vec<(String, u64)> = self.lineages.maps().dropped.iter().map(|(f, n)| (f.clone(), *n)).collect();
        v.sort();
        v
    }

    /// GetFunctionRecursionConfig.
    pub fn recursion_config(&self, raw: &str) -> Result<RecursiveLoop, ApiError> {
        let name = self.unqualified(raw)?;
        let functions = self.read_functions();
        let state = functions.get(&name).ok_or_else(|| self.not_found(&name, None))?;
        Ok(state.meta.recursive_loop)
    }

    /// PutFunctionRecursionConfig.
    pub async fn put_recursion_config(&self, raw: &str, value: Option<&str>) -> Result<RecursiveLoop, ApiError> {
        let setting = value.and_then(RecursiveLoop::parse).ok_or_else(|| {
            ApiError::new(
                ErrorCode::Validation,
                format!(
                    "1 validation error detected: Value '{}' at 'recursiveLoop' failed to satisfy constraint: Member must satisfy enum value set: [Allow, Terminate]",
                    value.unwrap_or("null")
                ),
            )
        })?;
        let name = self.unqualified(raw)?;
        let _guard = self.control.lock().await;
        let state = self.current(&name)?;
        let meta = FunctionMeta { recursive_loop: setting, ..state.meta.clone() };
        self.store.put_meta(&name, &meta).await.map_err(store_error)?;
        if let Some(s) = self.write_functions().get_mut(&name) {
            s.meta = meta;
        }
        Ok(setting)
    }
}
