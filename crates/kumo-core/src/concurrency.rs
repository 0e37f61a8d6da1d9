//! Concurrency accounting: reserved concurrency per function and the account pool.
//!
//! Pure bookkeeping; the engine wraps one [`Concurrency`] in a mutex and holds a
//! permit for each in-flight invocation.

use std::collections::HashMap;

use crate::error::ApiError;

pub const RESERVED_LIMIT_EXCEEDED: &str = "ReservedFunctionConcurrentInvocationLimitExceeded";
pub const ACCOUNT_LIMIT_EXCEEDED: &str = "ConcurrentInvocationLimitExceeded";
/// Lambda keeps this much of the account limit unreserved.
pub const MIN_UNRESERVED: u32 = 100;

#[derive(Debug, Default, Clone, Copy)]
struct FunctionUse {
    reserved: Option<u32>,
    in_flight: u32,
}

#[derive(Debug)]
pub struct Concurrency {
    account_limit: u32,
    min_unreserved: u32,
    reserved_total: u32,
    unreserved_in_flight: u32,
    functions: HashMap<String, FunctionUse>,
}

impl Concurrency {
    /// An account with Lambda's rule: at least 100 (or the whole limit, if smaller) stays unreserved.
    pub fn new(account_limit: u32) -> Self {
        Self::with_min_unreserved(account_limit, MIN_UNRESERVED.min(account_limit))
    }

    pub fn with_min_unreserved(account_limit: u32, min_unreserved: u32) -> Self {
        Concurrency {
            account_limit,
            min_unreserved: min_unreserved.min(account_limit),
            reserved_total: 0,
            unreserved_in_flight: 0,
            functions: HashMap::new(),
        }
    }

    pub fn account_limit(&self) -> u32 {
        self.account_limit
    }

    pub fn unreserved_limit(&self) -> u32 {
        self.account_limit - self.reserved_total
    }

    /// Sets or clears a function's reservation, refusing one that leaves the
    /// account with less than its minimum unreserved concurrency.
    pub fn set_reserved(&mut self, function: &str, reserved: Option<u32>) -> Result<(), ApiError> {
        let entry = self.functions.entry(function.to_string()).or_default();
        let old = entry.reserved.unwrap_or(0);
        let new = reserved.unwrap_or(0);
        let total = self.reserved_total - old + new;
        if reserved.is_some() && total > self.account_limit - self.min_unreserved {
            return Err(ApiError::invalid_parameter(format!(
                "Specified ReservedConcurrentExecutions for function decreases account's UnreservedConcurrentExecution below its minimum value of [{}].",
                self.min_unreserved
            )));
        }
        // Move the function's in-flight count between pools.
        let in_flight = entry.in_flight;
        match (entry.reserved.is_some(), reserved.is_some()) {
            (false, true) => self.unreserved_in_flight -= in_flight,
            (true, false) => self.unreserved_in_flight += in_flight,
            _ => {}
        }
        entry.reserved = reserved;
        self.reserved_total = total;
        Ok(())
    }

    pub fn reserved(&self, function: &str) -> Option<u32> {
        self.functions.get(function).and_then(|f| f.reserved)
    }

    /// Admits one invocation or names the throttle reason.
    pub fn try_acquire(&mut self, function: &str) -> Result<(), &'static str> {
        let unreserved_limit = self.unreserved_limit();
        let entry = self.functions.entry(function.to_string()).or_default();
        match entry.reserved {
            Some(r) if entry.in_flight >= r => return Err(RESERVED_LIMIT_EXCEEDED),
            Some(_) => {}
            None if self.unreserved_in_flight >= unreserved_limit => return Err(ACCOUNT_LIMIT_EXCEEDED),
            None => self.unreserved_in_flight += 1,
        }
        entry.in_flight += 1;
        Ok(())
    }

    pub fn release(&mut self, function: &str) {
        if let Some(entry) = self.functions.get_mut(function)
            && entry.in_flight > 0
        {
            entry.in_flight -= 1;
            if entry.reserved.is_none() {
                self.unreserved_in_flight = self.unreserved_in_flight.saturating_sub(1);
            }
        }
    }

    pub fn in_flight(&self, function: &str) -> u32 {
        self.functions.get(function).map_or(0, |f| f.in_flight)
    }

    /// Forgets a deleted function (its in-flight invocations still release normally).
    pub fn remove(&mut self, function: &str) {
        if let Some(entry) = self.functions.get(function).copied() {
            self.reserved_total -= entry.reserved.unwrap_or(0);
            if entry.reserved.is_some() {
                self.unreserved_in_flight += entry.in_flight;
            }
            if let Some(e) = self.functions.get_mut(function) {
                e.reserved = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reserved_caps_and_zero_disables() {
        let mut c = Concurrency::new(1000);
        c.set_reserved("f", Some(2)).expect("ok");
        assert!(c.try_acquire("f").is_ok());
        assert!(c.try_acquire("f").is_ok());
        assert_eq!(c.try_acquire("f"), Err(RESERVED_LIMIT_EXCEEDED));
        c.release("f");
        assert!(c.try_acquire("f").is_ok());
        c.set_reserved("g", Some(0)).expect("ok");
        assert_eq!(c.try_acquire("g"), Err(RESERVED_LIMIT_EXCEEDED));
    }

    #[test]
    fn account_pool_is_shared() {
        let mut c = Concurrency::new(3);
        assert!(c.try_acquire("a").is_ok());
        assert!(c.try_acquire("b").is_ok());
        assert!(c.try_acquire("a").is_ok());
        assert_eq!(c.try_acquire("c"), Err(ACCOUNT_LIMIT_EXCEEDED));
    }

    #[test]
    fn reservation_must_leave_minimum_unreserved() {
        let mut c = Concurrency::new(1000);
        assert!(c.set_reserved("f", Some(900)).is_ok());
        let err = c.set_reserved("g", Some(1)).expect_err("over");
        assert!(err.message.contains("minimum value of [100]"));
        assert!(c.set_reserved("f", None).is_ok());
        assert_eq!(c.unreserved_limit(), 1000);
    }

    proptest! {
        /// Whatever happens, in-flight counts never exceed their limits and return to zero.
        #[test]
        fn never_exceeds_limits(ops in prop::collection::vec((0u8..3, 0usize..3), 0..200)) {
            let names = ["a", "b", "c"];
            let mut c = Concurrency::with_min_unreserved(5, 1);
            c.set_reserved("a", Some(2)).expect("ok");
            let mut held: Vec<&str> = Vec::new();
            for (op, idx) in ops {
                let f = names[idx];
                if op < 2 {
                    if c.try_acquire(f).is_ok() { held.push(f); }
                } else if let Some(pos) = held.iter().position(|h| *h == f) {
                    held.remove(pos);
                    c.release(f);
                }
                prop_assert!(c.in_flight("a") <= 2);
                prop_assert!(c.in_flight("b") + c.in_flight("c") <= 3);
            }
            for f in held { c.release(f); }
            for f in names { prop_assert_eq!(c.in_flight(f), 0); }
        }
    }
}
