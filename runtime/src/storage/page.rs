//! One keyset page for every listing: the rows of a `LIMIT n + 1` query become at most `n`
//! items and the cursor of the next page (the last item's key) when there was an extra row.
//! Each listing names its items' field (`users`, `sessions`, `entries`, `clients`), which is
//! what flows and the admin API read.

use serde::ser::{Serialize, SerializeMap, Serializer};

/// The most items one page may hold.
pub const MAX_PAGE: i64 = 200;

#[derive(Debug, Clone)]
pub struct Page<T> {
    /// The field the items are listed under.
    pub key: &'static str,
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// `rows` fetched with `LIMIT limit + 1`: at most `limit` of them, and the cursor of the
    /// next page (`cursor_of` the last one kept) when there were more.
    pub fn from_overfetch(key: &'static str, mut rows: Vec<T>, limit: i64, cursor_of: impl Fn(&T) -> String) -> Page<T> {
        let limit = usize::try_from(limit.max(0)).unwrap_or(0);
        let next_cursor = if rows.len() > limit {
            rows.truncate(limit);
            rows.last().map(cursor_of)
        } else {
            None
        };
        Page { key, items: rows, next_cursor }
    }
}

impl<T: Serialize> Serialize for Page<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(if self.next_cursor.is_some() { 2 } else { 1 }))?;
        map.serialize_entry(self.key, &self.items)?;
        if let Some(c) = &self.next_cursor {
            map.serialize_entry("next_cursor", c)?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::Page;

    #[test]
    fn an_extra_row_means_a_next_page() {
        let p = Page::from_overfetch("users", vec![5, 4, 3], 2, |n| n.to_string());
        assert_eq!(serde_json::to_value(&p).ok(), Some(serde_json::json!({ "users": [5, 4], "next_cursor": "4" })));
        let p = Page::from_overfetch("users", vec![5, 4], 2, |n| n.to_string());
        assert_eq!(serde_json::to_value(&p).ok(), Some(serde_json::json!({ "users": [5, 4] })));
    }
}
