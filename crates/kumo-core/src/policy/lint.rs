//! Warnings about grants broader than least privilege: an `Allow` of every
//! action or on every resource (or the `Not…` forms that come to the same).

use super::document::{Effect, Policy};

/// One warning per over-broad statement of `policy`, named by `label` and its Sid.
pub fn broad_grants(label: &str, policy: &Policy) -> Vec<String> {
    let mut out = Vec::new();
    for (i, s) in policy.statements.iter().enumerate() {
        if s.effect != Effect::Allow {
            continue;
        }
        let name = match &s.sid {
            Some(sid) => format!("{label}, statement {sid}"),
            None => format!("{label}, statement {}", i + 1),
        };
        let every_action =
            if s.actions.negated { true } else { s.actions.patterns.iter().any(|p| p == "*" || p.ends_with(":*")) };
        let every_resource = s.resources.as_ref().is_some_and(|r| r.negated || r.patterns.iter().any(|p| p == "*"));
        let actions: Vec<&str> = s.actions.patterns.iter().map(String::as_str).collect();
        match (every_action, every_resource) {
            (true, true) => out.push(format!(
                "{name} allows {} on every resource (\"*\"): least privilege names the actions and resources the function needs",
                describe(&actions, s.actions.negated)
            )),
            (true, false) => out.push(format!(
                "{name} allows {}: least privilege names the actions the function needs",
                describe(&actions, s.actions.negated)
            )),
            (false, true) => out.push(format!(
                "{name} allows {} on every resource (\"*\"): least privilege names the resources the function needs",
                actions.join(", ")
            )),
            (false, false) => {}
        }
    }
    out
}

fn describe(actions: &[&str], negated: bool) -> String {
    if negated {
        format!("every action except {}", actions.join(", "))
    } else if actions.contains(&"*") {
        "every action (\"*\")".to_string()
    } else {
        format!(
            "every action of {}",
            actions.iter().filter(|a| a.ends_with(":*")).copied().collect::<Vec<_>>().join(", ")
        )
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::{Policy, PolicyKind};
    use super::*;

    fn lint(doc: &str) -> Vec<String> {
        broad_grants("inline policy p", &Policy::parse(doc, PolicyKind::Identity).unwrap())
    }

    #[test]
    fn broad_grants_are_named_and_narrow_ones_are_not() {
        let all = lint(
            r#"{"Version":"2012-10-17","Statement":[{"Sid":"All","Effect":"Allow","Action":"*","Resource":"*"}]}"#,
        );
        assert_eq!(all.len(), 1);
        assert!(
            all[0].starts_with("inline policy p, statement All allows every action (\"*\") on every resource"),
            "{all:?}"
        );
        let service = lint(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::b/*"}]}"#,
        );
        assert!(service[0].contains("every action of s3:*"), "{service:?}");
        let resource = lint(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"lambda:ListFunctions","Resource":"*"}]}"#,
        );
        assert!(resource[0].contains("allows lambda:ListFunctions on every resource"), "{resource:?}");
        let narrow = lint(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"logs:PutLogEvents","Resource":"arn:aws:logs:us-east-1:000000000000:log-group:/aws/lambda/f:*"},{"Effect":"Deny","Action":"*","Resource":"*"}]}"#,
        );
        assert!(narrow.is_empty(), "{narrow:?}");
    }
}
