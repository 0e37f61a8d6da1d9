//! IAM's list pagination: `MaxItems` (1-1000, 100 by default) and an opaque
//! `Marker` that starts the next page. Kumo's marker is the sort key of the
//! next page's first item, so a page boundary survives items being added or
//! deleted between calls.

use super::{IamError, validate};

/// `MaxItems` when the caller does not say.
pub const DEFAULT_MAX_ITEMS: i64 = 100;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Set when there are more: the next call's `Marker` (`IsTruncated` true).
    pub next_marker: Option<String>,
}

impl<T> Page<T> {
    pub fn is_truncated(&self) -> bool {
        self.next_marker.is_some()
    }

    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page { items: self.items.into_iter().map(f).collect(), next_marker: self.next_marker }
    }
}

/// One page of `items`, which must be sorted by their keys.
pub fn paginate<T>(items: Vec<(String, T)>, marker: Option<&str>, max_items: Option<i64>) -> Result<Page<T>, IamError> {
    let max = max_items.unwrap_or(DEFAULT_MAX_ITEMS);
    validate::max_items(max)?;
    let max = max as usize;
    let mut rest = items.into_iter().filter(|(key, _)| marker.is_none_or(|m| key.as_str() >= m)).peekable();
    let mut page = Vec::new();
    while page.len() < max {
        match rest.next() {
            Some((_, item)) => page.push(item),
            None => break,
        }
    }
    let next_marker = rest.peek().map(|(key, _)| key.clone());
    Ok(Page { items: page, next_marker })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keyed(names: &[&str]) -> Vec<(String, String)> {
        names.iter().map(|n| (n.to_string(), n.to_uppercase())).collect()
    }

    #[test]
    fn pages_walk_the_whole_list_once() -> Result<(), IamError> {
        let all = keyed(&["a", "b", "c", "d", "e"]);
        let first = paginate(all.clone(), None, Some(2))?;
        assert_eq!(first.items, vec!["A", "B"]);
        assert_eq!(first.next_marker.as_deref(), Some("c"));
        let second = paginate(all.clone(), first.next_marker.as_deref(), Some(2))?;
        assert_eq!(second.items, vec!["C", "D"]);
        let third = paginate(all.clone(), second.next_marker.as_deref(), Some(2))?;
        assert_eq!(third.items, vec!["E"]);
        assert!(!third.is_truncated());
        // Exactly full: no further page.
        assert!(!paginate(all.clone(), None, Some(5))?.is_truncated());
        assert_eq!(paginate(all, None, None)?.items.len(), 5);
        Ok(())
    }

    #[test]
    fn a_deleted_marker_item_does_not_lose_the_place() -> Result<(), IamError> {
        let page = paginate(keyed(&["a", "b", "d"]), Some("c"), Some(10))?;
        assert_eq!(page.items, vec!["D"]);
        Ok(())
    }

    #[test]
    fn max_items_is_checked() {
        assert!(paginate(keyed(&["a"]), None, Some(0)).is_err());
        assert!(paginate(keyed(&["a"]), None, Some(1001)).is_err());
    }
}
