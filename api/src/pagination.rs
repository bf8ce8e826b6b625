//! Keyset (cursor) pagination shared by every list endpoint: `limit` (default 20, max 100) and
//! an opaque `next_cursor` that encodes the sort key of the last item returned.

use crate::error::{ApiError, FieldError};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Serialize, de::DeserializeOwned};
use utoipa::ToSchema;

pub const DEFAULT_LIMIT: u32 = 20;
pub const MAX_LIMIT: u32 = 100;

/// A page of a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// Validates `limit`: absent means the default, otherwise 1 to 100.
pub fn limit(raw: Option<u32>) -> Result<u32, ApiError> {
    match raw {
        None => Ok(DEFAULT_LIMIT),
        Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        Some(_) => Err(ApiError::Validation(vec![FieldError::new(
            "limit",
            format!("must be between 1 and {MAX_LIMIT}"),
        )])),
    }
}

/// Where a page starts: the validated `limit` and the sort key of the last item already seen.
#[derive(Debug, Clone, PartialEq)]
pub struct Keyset<K> {
    pub limit: u32,
    pub after: Option<K>,
}

impl<K: DeserializeOwned> Keyset<K> {
    /// Validates `limit` (a 422) and then decodes `cursor` (a 400), the query of every list.
    pub fn parse(limit: Option<u32>, cursor: Option<&str>) -> Result<Self, ApiError> {
        Ok(Keyset {
            limit: self::limit(limit)?,
            after: cursor.map(decode_cursor).transpose()?,
        })
    }
}

impl<K> Keyset<K> {
    /// How many rows to fetch: one past the page tells whether there is a next one.
    pub fn fetch(&self) -> i64 {
        i64::from(self.limit) + 1
    }

    /// The page of `rows` fetched with [`Keyset::fetch`], its cursor made of `key` of the last.
    pub fn page<T, C: Serialize>(&self, rows: Vec<T>, key: impl Fn(&T) -> C) -> Page<T> {
        page(rows, self.limit, key)
    }
}

pub fn encode_cursor<T: Serialize>(key: &T) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(key).unwrap_or_default())
}

/// Decodes a cursor produced by [`encode_cursor`]; anything else is a 400.
pub fn decode_cursor<T: DeserializeOwned>(cursor: &str) -> Result<T, ApiError> {
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or_else(|| ApiError::BadRequest("invalid cursor".into()))
}

/// Builds a page from `limit + 1` fetched rows: the extra row only tells there is more.
pub fn page<T, K: Serialize>(mut rows: Vec<T>, limit: u32, key: impl Fn(&T) -> K) -> Page<T> {
    let limit = limit as usize;
    let next_cursor = if rows.len() > limit {
        rows.truncate(limit);
        rows.last().map(|last| encode_cursor(&key(last)))
    } else {
        None
    };
    Page {
        items: rows,
        next_cursor,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_round_trips_and_garbage_is_refused() {
        let c = encode_cursor(&("2024-01-01T00:00:00Z", 7));
        let back: (String, i32) = decode_cursor(&c).expect("decodes");
        assert_eq!(back, ("2024-01-01T00:00:00Z".to_owned(), 7));
        assert!(decode_cursor::<(String, i32)>("%%%").is_err());
    }

    #[test]
    fn limits_are_bounded() {
        assert_eq!(limit(None).ok(), Some(20));
        assert!(limit(Some(0)).is_err());
        assert!(limit(Some(101)).is_err());
        assert_eq!(limit(Some(100)).ok(), Some(100));
    }

    #[test]
    fn a_keyset_checks_the_limit_before_the_cursor() {
        let k = Keyset::<i64>::parse(Some(5), Some(&encode_cursor(&7))).expect("parses");
        assert_eq!((k.limit, k.after, k.fetch()), (5, Some(7), 6));
        assert!(matches!(
            Keyset::<i64>::parse(Some(0), Some("%%%")),
            Err(ApiError::Validation(_))
        ));
        assert!(matches!(
            Keyset::<i64>::parse(None, Some("%%%")),
            Err(ApiError::BadRequest(_))
        ));
    }

    #[test]
    fn a_page_has_a_cursor_only_when_more_rows_exist() {
        let p = page(vec![1, 2, 3], 2, |n| *n);
        assert_eq!(p.items, vec![1, 2]);
        assert!(p.next_cursor.is_some());
        let p = page(vec![1, 2], 2, |n| *n);
        assert!(p.next_cursor.is_none());
    }
}
