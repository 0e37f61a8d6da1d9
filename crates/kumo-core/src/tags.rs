//! Resource tags as Lambda and CloudWatch Logs keep them: validation of a set
//! of tags and the merge and removal that TagResource / UntagResource make.

use std::collections::BTreeMap;

use crate::ApiError;

/// The most tags one resource may carry.
pub const MAX_TAGS: usize = 50;
const MAX_KEY: usize = 128;
const MAX_VALUE: usize = 256;

/// Checks one key and value against AWS's tagging limits.
fn check(key: &str, value: &str) -> Result<(), ApiError> {
    if key.is_empty() || key.chars().count() > MAX_KEY {
        return Err(ApiError::invalid_parameter(format!(
            "Tag key '{key}' must be between 1 and {MAX_KEY} characters long."
        )));
    }
    if value.chars().count() > MAX_VALUE {
        return Err(ApiError::invalid_parameter(format!(
            "Tag value for key '{key}' must be at most {MAX_VALUE} characters long."
        )));
    }
    if key.to_ascii_lowercase().starts_with("aws:") {
        return Err(ApiError::invalid_parameter(format!("Tag keys starting with 'aws:' are reserved: '{key}'.")));
    }
    Ok(())
}

/// Validates a complete set of tags (as CreateFunction or CreateLogGroup sends it).
pub fn validate(tags: &BTreeMap<String, String>) -> Result<(), ApiError> {
    if tags.len() > MAX_TAGS {
        return Err(ApiError::invalid_parameter(format!("A resource can have at most {MAX_TAGS} tags.")));
    }
    tags.iter().try_for_each(|(k, v)| check(k, v))
}

/// `current` with `added` merged in (an existing key takes the new value).
pub fn merged(
    current: &BTreeMap<String, String>,
    added: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, ApiError> {
    let mut out = current.clone();
    out.extend(added.iter().map(|(k, v)| (k.clone(), v.clone())));
    validate(&out)?;
    Ok(out)
}

/// `current` without `keys` (absent keys are ignored, as AWS ignores them).
pub fn without(current: &BTreeMap<String, String>, keys: &[String]) -> BTreeMap<String, String> {
    current.iter().filter(|(k, _)| !keys.contains(k)).map(|(k, v)| (k.clone(), v.clone())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn merging_overwrites_and_adds() {
        let out = merged(&tags(&[("a", "1"), ("b", "2")]), &tags(&[("b", "3"), ("c", "4")])).expect("within limits");
        assert_eq!(out, tags(&[("a", "1"), ("b", "3"), ("c", "4")]));
    }

    #[test]
    fn removing_ignores_absent_keys() {
        let out = without(&tags(&[("a", "1"), ("b", "2")]), &["b".into(), "zz".into()]);
        assert_eq!(out, tags(&[("a", "1")]));
    }

    #[test]
    fn limits_are_enforced() {
        assert!(validate(&tags(&[("", "x")])).is_err());
        assert!(validate(&tags(&[("aws:owner", "x")])).is_err());
        assert!(validate(&tags(&[(&"k".repeat(129), "x")])).is_err());
        assert!(validate(&tags(&[("k", &"v".repeat(257))])).is_err());
        assert!(validate(&tags(&[("k", "")])).is_ok());
        let many: BTreeMap<String, String> = (0..51).map(|i| (format!("k{i}"), String::new())).collect();
        assert!(validate(&many).is_err());
        let current: BTreeMap<String, String> = (0..50).map(|i| (format!("k{i}"), String::new())).collect();
        assert!(merged(&current, &tags(&[("one-more", "")])).is_err());
    }
}
