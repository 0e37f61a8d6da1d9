//! CloudWatch Logs filter patterns (the `filterPattern` of FilterLogEvents) as a pure matcher.
//!
//! Term patterns (`ERROR "timed out" -Exiting`, `?WARN ?ERROR`) and JSON patterns
//! (`{ ($.status = 500) || ($.latency > 1000 && $.path = "/api*") }`) are supported. Space-delimited
//! patterns (`[ip, user, ...]`) are rejected rather than silently matched with the wrong meaning.
//!
//! A JSON pattern only matches a message that is, as a whole (surrounding whitespace aside), a JSON
//! object. Lambda's `TIMESTAMP\tREQUEST_ID\tLEVEL\t{...}` lines therefore never match a JSON pattern,
//! which is also what CloudWatch Logs does.

use std::cmp::Ordering;
use std::iter::{self, Peekable};
use std::str::Chars;

use serde_json::Value;

/// CloudWatch's own limit; it also bounds how much work a hostile pattern can cause.
const MAX_PATTERN_CHARS: usize = 1024;
/// Parenthesis nesting is parsed recursively, so it is capped well below stack exhaustion.
const MAX_DEPTH: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PatternError(pub String);

fn invalid(detail: &str) -> PatternError {
    PatternError(format!("Invalid filter pattern: {detail}"))
}

#[derive(Debug, Clone, PartialEq)]
pub enum FilterPattern {
    /// Empty or blank pattern: every message matches.
    All,
    /// Every `required` term and no `excluded` term is a substring, and when `any_of` is non-empty at
    /// least one of its terms is. Matching is case-sensitive.
    Terms { required: Vec<String>, excluded: Vec<String>, any_of: Vec<String> },
    /// `{ ... }`: only messages that are JSON objects can match.
    Json(JsonPattern),
}

/// A parsed JSON pattern; opaque so the expression tree can change without breaking callers.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonPattern(Expr);

#[derive(Debug, Clone, PartialEq)]
enum Expr {
    // Flat lists rather than binary trees so long `&&` chains don't recurse once per condition.
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Cmp(Vec<Step>, Op, Lit),
    NotExists(Vec<Step>),
}

#[derive(Debug, Clone, PartialEq)]
enum Step {
    Key(String),
    Index(usize),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
}

#[derive(Debug, Clone, PartialEq)]
enum Lit {
    /// The integer form, when there is one, keeps large IDs from colliding through f64 rounding.
    Num(f64, Option<i128>),
    /// May contain `*` wildcards.
    Str(String),
    Null,
    Bool(bool),
    /// `*` alone: the field exists, whatever its value.
    Any,
}

impl FilterPattern {
    /// Parses a pattern; an empty/blank pattern matches everything.
    pub fn parse(pattern: &str) -> Result<FilterPattern, PatternError> {
        let p = pattern.trim();
        if p.chars().count() > MAX_PATTERN_CHARS {
            return Err(invalid("pattern is longer than 1024 characters"));
        }
        if p.is_empty() {
            Ok(Self::All)
        } else if p.starts_with('[') {
            Err(PatternError("space-delimited patterns are not supported".into()))
        } else if p.starts_with('{') {
            Parser { it: p.chars().peekable(), depth: 0 }.pattern().map(Self::Json)
        } else {
            parse_terms(p)
        }
    }

    /// Never fails: a message a JSON pattern cannot read simply does not match.
    pub fn matches(&self, message: &str) -> bool {
        match self {
            Self::All => true,
            Self::Terms { required, excluded, any_of } => {
                required.iter().all(|t| message.contains(t.as_str()))
                    && !excluded.iter().any(|t| message.contains(t.as_str()))
                    && (any_of.is_empty() || any_of.iter().any(|t| message.contains(t.as_str())))
            }
            Self::Json(JsonPattern(expr)) => match serde_json::from_str::<Value>(message.trim()) {
                Ok(doc @ Value::Object(_)) => expr.eval(&doc),
                _ => false,
            },
        }
    }

    /// Literal substrings every matching message must contain (for a cheap SQL pre-filter by the
    /// caller); empty when none can be derived (JSON patterns, `?` alternatives, exclusions).
    pub fn required_terms(&self) -> Vec<String> {
        match self {
            // Plain terms stay required even next to exclusions or `?` alternatives.
            Self::Terms { required, .. } => required.iter().filter(|t| !t.is_empty()).cloned().collect(),
            Self::All | Self::Json(_) => Vec::new(),
        }
    }
}

fn parse_terms(p: &str) -> Result<FilterPattern, PatternError> {
    let (mut required, mut excluded, mut any_of) = (Vec::new(), Vec::new(), Vec::new());
    let mut it = p.chars().peekable();
    loop {
        while it.next_if(|c| c.is_whitespace()).is_some() {}
        if it.peek().is_none() {
            break;
        }
        let kind = it.next_if(|c| *c == '-' || *c == '?');
        let quoted = it.next_if_eq(&'"').is_some();
        let term =
            if quoted { read_quoted(&mut it)? } else { iter::from_fn(|| it.next_if(|c| !c.is_whitespace())).collect() };
        // A quote anywhere but around a whole term would make the intended phrase a guess.
        if it.peek().is_some_and(|c| !c.is_whitespace()) || (!quoted && term.contains('"')) {
            return Err(invalid("unbalanced or misplaced quotes"));
        }
        match kind {
            // A lone `-` or `?` has nothing to apply to, so it is taken literally.
            Some(k) if !quoted && term.is_empty() => required.push(k.to_string()),
            Some('-') => excluded.push(term),
            Some(_) => any_of.push(term),
            None => required.push(term),
        }
    }
    Ok(FilterPattern::Terms { required, excluded, any_of })
}

/// Reads up to the closing quote (the opening one is already consumed); `\"` and `\\` are escapes.
fn read_quoted(it: &mut Peekable<Chars<'_>>) -> Result<String, PatternError> {
    let mut s = String::new();
    while let Some(c) = it.next() {
        match c {
            '"' => return Ok(s),
            '\\' => match it.next() {
                Some(e @ ('"' | '\\')) => s.push(e),
                Some(e) => s.extend(['\\', e]),
                None => break,
            },
            _ => s.push(c),
        }
    }
    Err(invalid("unbalanced quotes"))
}

struct Parser<'a> {
    it: Peekable<Chars<'a>>,
    depth: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.it.next_if(|c| c.is_whitespace()).is_some() {}
    }

    fn eat(&mut self, c: char) -> bool {
        self.ws();
        self.it.next_if_eq(&c).is_some()
    }

    fn take_while(&mut self, f: impl Fn(char) -> bool) -> String {
        iter::from_fn(|| self.it.next_if(|c| f(*c))).collect()
    }

    /// `&&` or `||`; a single `&` or `|` is an unknown operator, not the start of a value.
    fn eat_double(&mut self, c: char) -> Result<bool, PatternError> {
        if !self.eat(c) {
            return Ok(false);
        }
        self.it.next_if_eq(&c).map(|_| true).ok_or_else(|| invalid(&format!("unknown operator '{c}'")))
    }

    /// The input is trimmed and starts with `{`, so it must end exactly at the matching `}`.
    fn pattern(mut self) -> Result<JsonPattern, PatternError> {
        self.it.next();
        let expr = self.or()?;
        if self.eat('}') && self.it.peek().is_none() {
            Ok(JsonPattern(expr))
        } else {
            Err(invalid("unbalanced braces or unexpected text"))
        }
    }

    /// `||` binds looser than `&&`, as in most languages.
    fn or(&mut self) -> Result<Expr, PatternError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(invalid("parentheses nested too deeply"));
        }
        let mut alts = vec![self.and()?];
        while self.eat_double('|')? {
            alts.push(self.and()?);
        }
        self.depth -= 1;
        Ok(if alts.len() == 1 { alts.swap_remove(0) } else { Expr::Or(alts) })
    }

    fn and(&mut self) -> Result<Expr, PatternError> {
        let mut all = vec![self.atom()?];
        while self.eat_double('&')? {
            all.push(self.atom()?);
        }
        Ok(if all.len() == 1 { all.swap_remove(0) } else { Expr::And(all) })
    }

    fn atom(&mut self) -> Result<Expr, PatternError> {
        if self.eat('(') {
            let e = self.or()?;
            return if self.eat(')') { Ok(e) } else { Err(invalid("unbalanced parentheses")) };
        }
        let sel = self.selector()?;
        self.ws();
        if self.it.peek().is_some_and(|c| c.is_alphabetic()) {
            let first = self.take_while(char::is_alphabetic);
            self.ws();
            let second = self.take_while(char::is_alphabetic);
            return match (first.to_ascii_uppercase().as_str(), second.to_ascii_uppercase().as_str()) {
                ("IS", "NULL") => Ok(Expr::Cmp(sel, Op::Eq, Lit::Null)),
                ("IS", "TRUE") => Ok(Expr::Cmp(sel, Op::Eq, Lit::Bool(true))),
                ("IS", "FALSE") => Ok(Expr::Cmp(sel, Op::Eq, Lit::Bool(false))),
                ("NOT", "EXISTS") => Ok(Expr::NotExists(sel)),
                _ => Err(invalid(&format!("unknown operator '{first} {second}'"))),
            };
        }
        let op = match self.take_while(|c| matches!(c, '=' | '!' | '<' | '>')).as_str() {
            "=" => Op::Eq,
            "!=" => Op::Ne,
            "<" => Op::Lt,
            ">" => Op::Gt,
            "<=" => Op::Le,
            ">=" => Op::Ge,
            "" => return Err(invalid("expected an operator after the selector")),
            other => return Err(invalid(&format!("unknown operator '{other}'"))),
        };
        let lit = self.literal()?;
        if !matches!(op, Op::Eq | Op::Ne) && !matches!(lit, Lit::Num(..)) {
            return Err(invalid("<, >, <= and >= compare numbers only"));
        }
        Ok(Expr::Cmp(sel, op, lit))
    }

    /// `$.a.b[0].c`; `$` alone selects the whole object.
    fn selector(&mut self) -> Result<Vec<Step>, PatternError> {
        if !self.eat('$') {
            return Err(invalid("expected a selector such as $.field"));
        }
        let mut steps = Vec::new();
        loop {
            if self.it.next_if_eq(&'.').is_some() {
                let key = self.take_while(|c| !c.is_whitespace() && !".[]()=!<>&|\"{}".contains(c));
                if key.is_empty() {
                    return Err(invalid("empty field name in selector"));
                }
                steps.push(Step::Key(key));
            } else if self.it.next_if_eq(&'[').is_some() {
                let index = self.take_while(|c| c.is_ascii_digit());
                let index = index.parse().map_err(|_| invalid("array index must be a number"))?;
                if self.it.next_if_eq(&']').is_none() {
                    return Err(invalid("unbalanced brackets in selector"));
                }
                steps.push(Step::Index(index));
            } else {
                return Ok(steps);
            }
        }
    }

    fn literal(&mut self) -> Result<Lit, PatternError> {
        self.ws();
        if self.it.next_if_eq(&'"').is_some() {
            let s = read_quoted(&mut self.it)?;
            // CDK's `FilterPattern.exists` writes the wildcard quoted.
            return Ok(if s == "*" { Lit::Any } else { Lit::Str(s) });
        }
        let raw = self.take_while(|c| !c.is_whitespace() && !"(){}&|\"".contains(c));
        if raw.is_empty() {
            return Err(invalid("expected a value after the operator"));
        }
        // Rejected rather than compared literally, which would silently never match.
        if raw.len() > 1 && raw.starts_with('%') && raw.ends_with('%') {
            return Err(invalid("regular expression values are not supported"));
        }
        Ok(match raw.to_ascii_uppercase().as_str() {
            "*" => Lit::Any,
            "NULL" => Lit::Null,
            "TRUE" => Lit::Bool(true),
            "FALSE" => Lit::Bool(false),
            _ => number(&raw).unwrap_or(Lit::Str(raw)),
        })
    }
}

fn number(raw: &str) -> Option<Lit> {
    // f64's parser also takes "inf" and "NaN", which in a pattern are plain strings.
    let body = raw.strip_prefix('-').unwrap_or(raw);
    if !body.starts_with(|c: char| c.is_ascii_digit() || c == '.') {
        return None;
    }
    let f = raw.parse::<f64>().ok().filter(|f| f.is_finite())?;
    Some(Lit::Num(f, raw.parse().ok()))
}

impl Expr {
    fn eval(&self, doc: &Value) -> bool {
        match self {
            Expr::And(all) => all.iter().all(|e| e.eval(doc)),
            Expr::Or(alts) => alts.iter().any(|e| e.eval(doc)),
            Expr::NotExists(sel) => resolve(doc, sel).is_none(),
            // A comparison, `!=` included, needs the field to exist; NOT EXISTS covers absence.
            Expr::Cmp(sel, op, lit) => resolve(doc, sel).is_some_and(|v| compare(v, *op, lit)),
        }
    }
}

fn resolve<'v>(doc: &'v Value, sel: &[Step]) -> Option<&'v Value> {
    sel.iter().try_fold(doc, |v, step| match step {
        Step::Key(k) => v.get(k.as_str()),
        Step::Index(i) => v.get(*i),
    })
}

fn compare(v: &Value, op: Op, lit: &Lit) -> bool {
    let ord = match (v, lit) {
        (Value::Number(n), Lit::Num(f, i)) => num_cmp(n, *f, *i),
        _ => None,
    };
    match op {
        Op::Eq => equals(v, lit),
        Op::Ne => !equals(v, lit),
        Op::Lt => ord.is_some_and(Ordering::is_lt),
        Op::Gt => ord.is_some_and(Ordering::is_gt),
        Op::Le => ord.is_some_and(Ordering::is_le),
        Op::Ge => ord.is_some_and(Ordering::is_ge),
    }
}

/// Types must agree: `500` does not equal `"500"`, as in CloudWatch.
fn equals(v: &Value, lit: &Lit) -> bool {
    match (lit, v) {
        (Lit::Any, _) | (Lit::Null, Value::Null) => true,
        (Lit::Bool(b), Value::Bool(x)) => b == x,
        (Lit::Num(f, i), Value::Number(n)) => num_cmp(n, *f, *i) == Some(Ordering::Equal),
        (Lit::Str(p), Value::String(s)) => glob(p, s),
        _ => false,
    }
}

fn num_cmp(n: &serde_json::Number, f: f64, int: Option<i128>) -> Option<Ordering> {
    let exact = n.as_i64().map(i128::from).or_else(|| n.as_u64().map(i128::from));
    if let (Some(a), Some(b)) = (exact, int) {
        return Some(a.cmp(&b));
    }
    n.as_f64()?.partial_cmp(&f)
}

/// `*` matches any run of characters; everything else is literal.
fn glob(pattern: &str, s: &str) -> bool {
    let mut parts = pattern.split('*');
    let Some(mut rest) = s.strip_prefix(parts.next().unwrap_or("")) else { return false };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else { return rest.is_empty() };
    // Taking each middle piece at its leftmost spot leaves the most room for the ones after it.
    for m in middle {
        match rest.find(m) {
            Some(i) => rest = &rest[i + m.len()..],
            None => return false,
        }
    }
    rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn m(pattern: &str, message: &str) -> bool {
        FilterPattern::parse(pattern).expect("valid pattern").matches(message)
    }

    fn terms(pattern: &str) -> Vec<String> {
        FilterPattern::parse(pattern).expect("valid pattern").required_terms()
    }

    #[test]
    fn term_patterns() {
        assert!(m("", "anything") && m("   ", ""));
        assert!(m("ERROR Task", "ERROR: Task timed out") && !m("ERROR Task", "ERROR: timed out"));
        assert!(!m("error", "ERROR"), "case-sensitive");
        assert!(m("\"timed out\"", "Task timed out after 3s") && !m("\"timed out\"", "timed  out"));
        assert!(m("ERROR -Exiting", "ERROR x") && !m("ERROR -Exiting", "ERROR Exiting now"));
        assert!(m("?WARN ?ERROR", "an ERROR") && m("?WARN ?ERROR", "WARN") && !m("?WARN ?ERROR", "INFO"));
        assert!(m("-\"not found\" ?a ?b", "b") && !m("-\"not found\" ?a ?b", "a not found"));
        assert!(m("status=500 -", "status=500 - ok"), "lenient unquoted punctuation; a lone - is literal");
        assert!(m(r#""say \"hi\"""#, r#"say "hi""#));
        assert_eq!(terms("ERROR -x ?y \"a b\" \"\""), vec!["ERROR", "a b"]);
        assert!(terms("?a ?b -c").is_empty() && terms("{ $.a = 1 }").is_empty() && terms("").is_empty());
    }

    const DOC: &str = r#"{"status": 500, "code": "500", "path": "/api/users", "ok": false, "gone": null,
        "user": {"roles": ["admin", {"n": 7}]}, "id": 12345678901234567891}"#;

    #[test]
    fn json_patterns_that_match() {
        let yes = r#"{ $.status = 500 } ; {$.status=500.0} ; { $.code = "500" } ; { $.path = /api/users }
            ; { $.path = "/api*" } ; { $.path = *users } ; { $.path = /*/u*s } ; { $.status != 404 }
            ; { $.code != "5*0x" } ; { $.status >= 500 && $.status < 501 } ; { $.user.roles[0] = admin }
            ; { $.user.roles[1].n > 6.5 } ; { $.ok IS FALSE } ; { $.ok = false } ; { $.gone IS NULL }
            ; { $.gone = NULL } ; { $.missing NOT EXISTS } ; { $.user = * } ; { $.code = "*" }
            ; { $.id = 12345678901234567891 } ; { ($.status = 404) || ($.status > 499 && $.path = "/api*") }
            ; { $.status = 1 || $.status = 2 || ($.ok is false && ($.gone IS NULL)) }"#;
        for p in yes.split(';') {
            assert!(m(p, DOC), "{p}");
        }
    }

    #[test]
    fn json_patterns_that_do_not_match() {
        let no = r#"{ $.status = "500" } ; { $.code = 500 } ; { $.path = /api } ; { $.status < 500 }
            ; { $.code > 1 } ; { $.missing != 1 } ; { $.missing IS NULL } ; { $.gone NOT EXISTS }
            ; { $.user.roles[2] = * } ; { $.user[0] = * } ; { $.ok IS TRUE } ; { $.id = 12345678901234567890 }
            ; { $.status = 500 && $.ok IS TRUE } ; { $.status != * }"#;
        for p in no.split(';') {
            assert!(!m(p, DOC), "{p}");
        }
    }

    #[test]
    fn json_pattern_needs_the_whole_message_to_be_a_json_object() {
        assert!(m("{ $.a = 1 }", " {\"a\": 1}\n"));
        assert!(!m("{ $.a = 1 }", "2024-01-01T00:00:00Z\tc0ffee\tINFO\t{\"a\": 1}"));
        assert!(!m("{ $.a = 1 }", "[1]") && !m("{ $ = * }", "1") && !m("{ $.a = 1 }", "a = 1"));
    }

    #[test]
    fn parse_errors() {
        let err = |p: &str| FilterPattern::parse(p).expect_err(p).0;
        assert_eq!(err("[ip, user]"), "space-delimited patterns are not supported");
        let bad = r#""open ; a"b ; "a"b ; { $.a = 1 ; { $.a = 1 }} ; { ($.a = 1 } ; { $.a = 1) } ; { $.a == 1 }
            ; { $.a =< 1 } ; { $.a ~ 1 } ; { $.a < "x" } ; { $.a > b } ; { $.a = 1 & $.b = 2 } ; { $.a IS MAYBE }
            ; { a = 1 } ; { $.a = } ; { $.a[x] = 1 } ; { $.a[0 = 1 } ; { $..a = 1 } ; { $.a = %ab+% } ; { }"#;
        for p in bad.split(';') {
            assert!(err(p).starts_with("Invalid filter pattern: "), "{p}");
        }
        assert!(FilterPattern::parse(&format!("{{ {}$.a = 1{} }}", "(".repeat(200), ")".repeat(200))).is_err());
        assert!(FilterPattern::parse(&"a ".repeat(600)).is_err(), "longer than CloudWatch's 1024 characters");
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in any::<String>(), t in r#"[{}()\[\]$.a0-9 =!<>&|"?*%\\-]{0,60}"#) {
            for p in [&s, &t] {
                if let Ok(f) = FilterPattern::parse(p) {
                    let _ = (f.matches(p), f.matches(r#"{"a": [1, {"b": "x"}]}"#), f.required_terms());
                }
            }
        }

        #[test]
        fn term_patterns_are_substring_conjunctions(
            terms in prop::collection::vec("[ab1]{1,3}", 1..4),
            message in "[ab1 ]{0,20}",
        ) {
            let pattern = FilterPattern::parse(&terms.join(" ")).expect("simple terms parse");
            prop_assert_eq!(pattern.matches(&message), terms.iter().all(|t| message.contains(t.as_str())));
            prop_assert_eq!(pattern.required_terms(), terms);
        }
    }
}
