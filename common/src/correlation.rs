//! Correlation ids: the id that follows one request from the api through every message and
//! worker step it leads to, stored on the order and written on every log line of the way.
//!
//! A client chooses it (`X-Request-Id`), and so may any system publishing on the bus, so it
//! is bounded where it enters: at most [`MAX_LEN`] characters of a safe set (letters, digits
//! and `-._:/+=@`, enough for UUIDs, ULIDs, hex and base64 trace ids). An id outside the
//! bound is never refused and never passed on: the api generates a new one, the workers
//! replace one from the bus by a digest of it ([`CorrelationId::bounded`]). The `orders`
//! table checks the same bound (`orders_correlation_id_bounded`).

use std::fmt;
use uuid::Uuid;

/// The longest correlation id kept.
pub const MAX_LEN: usize = 128;

/// Namespace of the ids that replace unacceptable ones (UUID v5).
const REPLACED_NAMESPACE: Uuid = Uuid::from_u128(0x636f_7272_656c_6174_696f_6e2d_6964_7331);

/// A correlation id within the bound.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CorrelationId(String);

/// Whether `c` may appear in a correlation id.
fn allowed(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | ':' | '/' | '+' | '=' | '@')
}

impl CorrelationId {
    /// `raw` if it is 1 to [`MAX_LEN`] characters of the safe set.
    pub fn parse(raw: &str) -> Option<Self> {
        let fits = !raw.is_empty() && raw.len() <= MAX_LEN && raw.chars().all(allowed);
        fits.then(|| CorrelationId(raw.to_owned()))
    }

    /// A new random id (a UUID), for a request that brought none, or none acceptable.
    pub fn generate() -> Self {
        CorrelationId(Uuid::new_v4().to_string())
    }

    /// `raw` if acceptable, else an id derived from it: the same `raw` always gives the same
    /// id (a redelivered message keeps its correlation), and nothing of it is passed on.
    pub fn bounded(raw: &str) -> Self {
        Self::parse(raw).unwrap_or_else(|| {
            CorrelationId(Uuid::new_v5(&REPLACED_NAMESPACE, raw.as_bytes()).to_string())
        })
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CorrelationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for CorrelationId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_printable_ids_are_kept_as_sent() {
        for id in [
            "0192f3c4-5b6a-7c8d-9e0f-1a2b3c4d5e6f",
            "pos-42",
            "Root=1-5759e988-bd862e3fe1be46a994272793",
            "dGhpcyBpcyBiYXNlNjQ+/w==",
            "svc@host:8080/req.7_a",
            &"a".repeat(MAX_LEN),
        ] {
            assert_eq!(CorrelationId::parse(id).map(|c| c.0), Some(id.to_owned()));
        }
    }

    #[test]
    fn long_empty_or_unprintable_ids_are_refused() {
        for id in [
            "",
            &"a".repeat(MAX_LEN + 1),
            "has space",
            "new\nline",
            "tab\t",
            "quote\"",
            "semi;colon",
            "é",
            "<script>",
        ] {
            assert_eq!(CorrelationId::parse(id), None, "{id:?}");
        }
    }

    #[test]
    fn a_replaced_id_is_bounded_and_the_same_for_the_same_input() {
        let huge = "x".repeat(300_000);
        let replaced = CorrelationId::bounded(&huge);
        assert!(CorrelationId::parse(replaced.as_str()).is_some());
        assert_eq!(replaced.as_str().len(), 36);
        assert_eq!(replaced, CorrelationId::bounded(&huge));
        assert_ne!(replaced, CorrelationId::bounded("other\n"));
        assert_eq!(CorrelationId::bounded("pos-42").as_str(), "pos-42");
    }

    #[test]
    fn a_generated_id_is_within_the_bound() {
        assert!(CorrelationId::parse(CorrelationId::generate().as_str()).is_some());
    }
}
