//! Wildcards (`*`, `?`) and policy variables (`${aws:username}`).
//!
//! Patterns are compiled to tokens and matched with a dynamic programme over
//! (token, character) pairs, so the cost is bounded by the product of the two
//! lengths whatever the pattern: no backtracking blow-up on hostile input.

/// Text a policy variable produced is never a wildcard, while the policy's own
/// `*` and `?` are; a pattern is therefore kept as pieces of both kinds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Piece {
    /// Policy text: `*` and `?` keep their wildcard meaning.
    Raw(String),
    /// A substituted value or an escape (`${*}`): every character is literal.
    Literal(String),
}

/// Why a value holding `${...}` could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VariableError {
    /// The variable names a key the request does not carry (or carries with several values).
    Unresolved(String),
    /// `${` without its `}`, an empty name, or a default not in single quotes.
    Malformed(String),
}

impl std::fmt::Display for VariableError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VariableError::Unresolved(name) => write!(f, "policy variable ${{{name}}} has no value in the request"),
            VariableError::Malformed(text) => write!(f, "malformed policy variable {text}"),
        }
    }
}

/// Splits `template` into raw text and substituted values.
///
/// `lookup` receives the lower-cased key and answers its single value. The
/// escapes `${*}`, `${?}` and `${$}` stand for the literal character, and
/// `${key, 'default'}` falls back to the quoted default (`''` inside it is one
/// quote), as IAM documents.
pub(crate) fn substitute(template: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<Vec<Piece>, VariableError> {
    let mut pieces = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find("${") {
        let (before, from_dollar) = rest.split_at(start);
        if !before.is_empty() {
            pieces.push(Piece::Raw(before.to_string()));
        }
        let inner_and_rest = from_dollar.get(2..).unwrap_or("");
        let Some(end) = closing_brace(inner_and_rest) else {
            return Err(VariableError::Malformed(from_dollar.to_string()));
        };
        let (inner, after) = inner_and_rest.split_at(end);
        pieces.push(Piece::Literal(resolve_variable(inner, lookup)?));
        rest = after.get(1..).unwrap_or("");
    }
    if !rest.is_empty() {
        pieces.push(Piece::Raw(rest.to_string()));
    }
    Ok(pieces)
}

/// Byte offset of the `}` that closes a variable, skipping any inside a quoted default.
fn closing_brace(s: &str) -> Option<usize> {
    let mut quoted = false;
    for (i, b) in s.bytes().enumerate() {
        match b {
            b'\'' => quoted = !quoted,
            b'}' if !quoted => return Some(i),
            _ => {}
        }
    }
    None
}

fn resolve_variable(inner: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, VariableError> {
    let malformed = || VariableError::Malformed(format!("${{{inner}}}"));
    let trimmed = inner.trim();
    if let "*" | "?" | "$" = trimmed {
        return Ok(trimmed.to_string());
    }
    let (name, default) = match split_default(trimmed) {
        Some((name, default)) => (name.trim(), Some(unquote(default.trim()).ok_or_else(malformed)?)),
        None => (trimmed, None),
    };
    if name.is_empty() || name.contains(char::is_whitespace) {
        return Err(malformed());
    }
    match lookup(&name.to_lowercase()) {
        Some(value) => Ok(value),
        None => default.ok_or_else(|| VariableError::Unresolved(name.to_string())),
    }
}

fn split_default(s: &str) -> Option<(&str, &str)> {
    let mut quoted = false;
    for (i, b) in s.bytes().enumerate() {
        match b {
            b'\'' => quoted = !quoted,
            b',' if !quoted => return Some((s.get(..i)?, s.get(i + 1..)?)),
            _ => {}
        }
    }
    None
}

fn unquote(s: &str) -> Option<String> {
    let body = s.strip_prefix('\'')?.strip_suffix('\'')?;
    // Inside the quotes a lone quote would have ended the default early.
    let mut out = String::with_capacity(body.len());
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        if c == '\'' && chars.next() != Some('\'') {
            return None;
        }
        out.push(c);
    }
    Some(out)
}

/// The text of a pattern with every wildcard taken literally, for the operators
/// that compare whole strings (`StringEquals`, `ArnEquals`'s fields...).
pub(crate) fn pieces_text(pieces: &[Piece]) -> String {
    pieces
        .iter()
        .map(|p| match p {
            Piece::Raw(s) | Piece::Literal(s) => s.as_str(),
        })
        .collect()
}

/// Where a `*` or `?` may stand for a `:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Colons {
    /// Anywhere (actions, `StringLike`, the resource field of an ARN).
    Free,
    /// IAM's Resource rule: wildcards stay inside their colon-separated field,
    /// except a `*` that ends its field, which may run on across colons, and
    /// anything in the sixth (resource) field, where colons are ordinary text.
    ArnFields,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok {
    Lit(char),
    One { colon: bool },
    Run { colon: bool },
}

/// A compiled wildcard pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Glob {
    toks: Vec<Tok>,
    fold_case: bool,
}

impl Glob {
    /// A pattern with no variables.
    pub(crate) fn raw(pattern: &str, colons: Colons, fold_case: bool) -> Glob {
        Glob::new(&[Piece::Raw(pattern.to_string())], colons, fold_case)
    }

    pub(crate) fn new(pieces: &[Piece], colons: Colons, fold_case: bool) -> Glob {
        let mut toks = Vec::new();
        for piece in pieces {
            let (text, live) = match piece {
                Piece::Raw(s) => (s, true),
                Piece::Literal(s) => (s, false),
            };
            let folded;
            let text = if fold_case {
                folded = text.to_lowercase();
                &folded
            } else {
                text
            };
            for c in text.chars() {
                toks.push(match c {
                    '*' if live => Tok::Run { colon: true },
                    '?' if live => Tok::One { colon: true },
                    c => Tok::Lit(c),
                });
            }
        }
        if colons == Colons::ArnFields && starts_with_arn(&toks) {
            confine_to_fields(&mut toks);
        }
        Glob { toks, fold_case }
    }

    pub(crate) fn has_wildcards(&self) -> bool {
        self.toks.iter().any(|t| !matches!(t, Tok::Lit(_)))
    }

    pub(crate) fn is_match(&self, text: &str) -> bool {
        let folded;
        let text = if self.fold_case {
            folded = text.to_lowercase();
            &folded
        } else {
            text
        };
        let chars: Vec<char> = text.chars().collect();
        if !self.has_wildcards() {
            return self.toks.len() == chars.len()
                && self.toks.iter().zip(&chars).all(|(t, c)| matches!(t, Tok::Lit(l) if l == c));
        }
        // reachable[j]: the tokens seen so far can consume exactly chars[..j].
        let mut reachable = vec![false; chars.len() + 1];
        reachable[0] = true;
        let mut next = vec![false; chars.len() + 1];
        for tok in &self.toks {
            next.iter_mut().for_each(|r| *r = false);
            match *tok {
                Tok::Lit(l) => {
                    for (j, c) in chars.iter().enumerate() {
                        next[j + 1] = reachable[j] && *c == l;
                    }
                }
                Tok::One { colon } => {
                    for (j, c) in chars.iter().enumerate() {
                        next[j + 1] = reachable[j] && (colon || *c != ':');
                    }
                }
                Tok::Run { colon } => {
                    next[0] = reachable[0];
                    for (j, c) in chars.iter().enumerate() {
                        next[j + 1] = reachable[j + 1] || (next[j] && (colon || *c != ':'));
                    }
                }
            }
            std::mem::swap(&mut reachable, &mut next);
            if !reachable.iter().any(|r| *r) {
                return false;
            }
        }
        reachable[chars.len()]
    }
}

fn starts_with_arn(toks: &[Tok]) -> bool {
    let prefix = [Tok::Lit('a'), Tok::Lit('r'), Tok::Lit('n'), Tok::Lit(':')];
    toks.len() >= prefix.len() && toks.iter().zip(prefix.iter()).all(|(a, b)| a == b)
}

/// Applies IAM's per-field wildcard rule to an ARN pattern.
fn confine_to_fields(toks: &mut [Tok]) {
    let mut colons_seen = 0;
    for i in 0..toks.len() {
        let in_resource_field = colons_seen >= 5;
        match toks[i] {
            Tok::Lit(':') => colons_seen += 1,
            Tok::Lit(_) => {}
            Tok::One { .. } => toks[i] = Tok::One { colon: in_resource_field },
            Tok::Run { .. } => {
                // A run of stars ends its field when what follows is a `:` or nothing.
                let ends_field =
                    toks[i..].iter().find(|t| !matches!(t, Tok::Run { .. })).is_none_or(|t| *t == Tok::Lit(':'));
                toks[i] = Tok::Run { colon: in_resource_field || ends_field };
            }
        }
    }
}

/// `ArnEquals` / `ArnLike`: the six colon-separated fields are matched one by
/// one (each may hold wildcards); the sixth keeps its own colons.
pub(crate) fn arn_like(pattern: &[Piece], value: &str) -> bool {
    let text = pieces_text(pattern);
    if !text.starts_with("arn:") {
        // Not an ARN pattern (`*` most often): compare it as one glob.
        return Glob::new(pattern, Colons::Free, false).is_match(value);
    }
    let pattern_fields = split_pieces(pattern, 6);
    let value_fields: Vec<&str> = value.splitn(6, ':').collect();
    pattern_fields.len() == 6
        && value_fields.len() == 6
        && pattern_fields.iter().zip(&value_fields).all(|(p, v)| Glob::new(p, Colons::Free, false).is_match(v))
}

/// Splits pieces at their first `max - 1` colons (in raw or literal text alike).
fn split_pieces(pieces: &[Piece], max: usize) -> Vec<Vec<Piece>> {
    let mut fields: Vec<Vec<Piece>> = vec![Vec::new()];
    for piece in pieces {
        let (text, raw) = match piece {
            Piece::Raw(s) => (s.as_str(), true),
            Piece::Literal(s) => (s.as_str(), false),
        };
        let mut current = String::new();
        for c in text.chars() {
            if c == ':' && fields.len() < max {
                push_piece(&mut fields, std::mem::take(&mut current), raw);
                fields.push(Vec::new());
            } else {
                current.push(c);
            }
        }
        push_piece(&mut fields, current, raw);
    }
    fields
}

fn push_piece(fields: &mut [Vec<Piece>], text: String, raw: bool) {
    if text.is_empty() {
        return;
    }
    if let Some(last) = fields.last_mut() {
        last.push(if raw { Piece::Raw(text) } else { Piece::Literal(text) });
    }
}

/// Action patterns: `*` and `?` anywhere, case-insensitive.
pub(crate) fn action_matches(pattern: &str, action: &str) -> bool {
    Glob::raw(pattern, Colons::Free, true).is_match(action)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn resource(pattern: &str, text: &str) -> bool {
        Glob::raw(pattern, Colons::ArnFields, false).is_match(text)
    }

    fn vars(key: &str) -> Option<String> {
        match key {
            "aws:username" => Some("alice".into()),
            "aws:principaltag/team" => Some("blue*".into()),
            _ => None,
        }
    }

    #[test]
    fn actions_are_case_insensitive_globs() {
        assert!(action_matches("lambda:Get*", "lambda:GetFunction"));
        assert!(action_matches("LAMBDA:getfunction", "lambda:GetFunction"));
        assert!(action_matches("lambda:?etFunction", "lambda:GetFunction"));
        assert!(action_matches("*", "s3:GetObject"));
        assert!(!action_matches("lambda:Get*", "lambda:ListFunctions"));
        assert!(!action_matches("lambda:Invoke", "lambda:InvokeFunction"));
        assert!(action_matches("lambda:*Function*", "lambda:InvokeFunctionUrl"));
    }

    #[test]
    fn lambda_function_resource_rules() {
        let base = "arn:aws:lambda:us-west-2:123456789012:function:my-function";
        let v1 = format!("{base}:1");
        // Unqualified ARN in the policy: only unqualified requests.
        assert!(resource(base, base));
        assert!(!resource(base, &v1));
        // `:*`: every qualified ARN, not the unqualified one.
        assert!(resource(&format!("{base}:*"), &v1));
        assert!(resource(&format!("{base}:*"), &format!("{base}:$LATEST")));
        assert!(!resource(&format!("{base}:*"), base));
        // `*` glued to the name: both.
        assert!(resource(&format!("{base}*"), base));
        assert!(resource(&format!("{base}*"), &v1));
        // A version only matches itself.
        assert!(resource(&v1, &v1));
        assert!(!resource(&v1, &format!("{base}:10")));
    }

    #[test]
    fn wildcards_stay_inside_their_field_unless_they_end_it() {
        assert!(resource(
            "arn:aws:lambda:*:123456789012:function:f",
            "arn:aws:lambda:us-east-1:123456789012:function:f"
        ));
        // `us-*-1` does not end its field: its star may not eat a colon.
        assert!(!resource("arn:aws:lambda:us-*-1:1:function:f", "arn:aws:lambda:us-x:y-1:1:function:f"));
        assert!(resource("arn:aws:lambda:us-*-1:1:function:f", "arn:aws:lambda:us-east-1:1:function:f"));
        // A trailing `*` may run across the remaining fields.
        assert!(resource("arn:aws:lambda:*", "arn:aws:lambda:us-east-1:1:function:f"));
        // `?` is one character, never a colon, outside the resource field.
        assert!(!resource("arn:aws:lambda:us-east-?:1:function:f", "arn:aws:lambda:us-east-:1:function:f"));
        assert!(resource("arn:aws:s3:::bucket/a?c", "arn:aws:s3:::bucket/a:c"));
        // Colons are plain text in the resource field.
        assert!(resource("arn:aws:s3:::bucket/a*b", "arn:aws:s3:::bucket/a:x:b"));
        // Resources are case-sensitive.
        assert!(!resource("arn:aws:iam::1:user/Bob", "arn:aws:iam::1:user/bob"));
        assert!(resource("*", "anything:at:all"));
    }

    #[test]
    fn variables_substitute_literally() {
        let pieces = substitute("arn:aws:s3:::bucket/${aws:username}/*", &vars).unwrap();
        let glob = Glob::new(&pieces, Colons::ArnFields, false);
        assert!(glob.is_match("arn:aws:s3:::bucket/alice/x"));
        assert!(!glob.is_match("arn:aws:s3:::bucket/bob/x"));
        // A `*` inside a substituted value is not a wildcard.
        let pieces = substitute("team-${aws:PrincipalTag/team}", &vars).unwrap();
        let glob = Glob::new(&pieces, Colons::Free, false);
        assert!(glob.is_match("team-blue*"));
        assert!(!glob.is_match("team-blueberry"));
    }

    #[test]
    fn escapes_and_defaults() {
        let pieces = substitute("a${*}b${?}c${$}d", &vars).unwrap();
        assert_eq!(pieces_text(&pieces), "a*b?c$d");
        let glob = Glob::new(&pieces, Colons::Free, false);
        assert!(glob.is_match("a*b?c$d"));
        assert!(!glob.is_match("axb?c$d"));
        let pieces = substitute("${aws:PrincipalTag/missing, 'it''s'}", &vars).unwrap();
        assert_eq!(pieces_text(&pieces), "it's");
        let pieces = substitute("${ aws:username , 'x}y' }!", &vars).unwrap();
        assert_eq!(pieces_text(&pieces), "alice!");
    }

    #[test]
    fn unknown_or_broken_variables_are_errors() {
        assert_eq!(substitute("${aws:userid}", &vars), Err(VariableError::Unresolved("aws:userid".into())));
        assert!(matches!(substitute("x${aws:username", &vars), Err(VariableError::Malformed(_))));
        assert!(matches!(substitute("${}", &vars), Err(VariableError::Malformed(_))));
        assert!(matches!(substitute("${a, unquoted}", &vars), Err(VariableError::Malformed(_))));
        assert!(matches!(substitute("${a, 'x'y'}", &vars), Err(VariableError::Malformed(_))));
    }

    #[test]
    fn arn_condition_matching_is_per_field() {
        let p = |s: &str| vec![Piece::Raw(s.to_string())];
        assert!(arn_like(&p("arn:aws:s3:::my-bucket/*"), "arn:aws:s3:::my-bucket/a/b"));
        assert!(arn_like(&p("arn:aws:lambda:*:*:function:*"), "arn:aws:lambda:us-east-1:1:function:f:1"));
        // A star in the region field does not reach into the account.
        assert!(!arn_like(&p("arn:aws:lambda:*:function:f"), "arn:aws:lambda:us-east-1:1:function:f"));
        assert!(!arn_like(&p("arn:aws:sns:us-east-1:1:topic"), "not-an-arn"));
        assert!(arn_like(&p("*"), "arn:aws:sns:us-east-1:1:topic"));
    }
}
