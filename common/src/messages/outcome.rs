//! The outcome of a placement as the inventory worker recorded it, sent at once (core NATS,
//! not stored) to the reply subject a place command names in its [`OUTCOME_REPLY_HEADER`]
//! header: the api that waits for the order answers from it without reading the order back.
//! The acknowledged `orders.evt.status_changed` follows for everyone else; an api whose reply
//! is lost answers from that event, as it would without a reply.
//!
//! [`OUTCOME_REPLY_HEADER`]: crate::messaging::OUTCOME_REPLY_HEADER

use super::status::OrderStatusChanged;
use crate::money::Quantity;
use crate::shipping::ShippingAddress;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A freshly recorded order, as whoever placed it reads it right after the commit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlacedOutcome {
    /// The status event the order's recording publishes (`from` null, `to` `CONFIRMED` or
    /// `REJECTED`; its `at` is the order's creation).
    pub event: OrderStatusChanged,
    /// The lines as recorded, in their order.
    pub items: Vec<OutcomeLine>,
    /// Minor units.
    pub total: i64,
    pub currency: String,
    /// Present when `REJECTED`: what was wrong, line by line.
    pub rejection_reason: Option<String>,
    pub shipping_address: Option<ShippingAddress>,
}

/// One recorded line: the product's name and unit price at order time (`null` for a product
/// that does not exist).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutcomeLine {
    pub product_id: Uuid,
    pub name: Option<String>,
    pub unit_price: Option<i64>,
    pub quantity: Quantity,
    pub subtotal: Option<i64>,
}

/// Longest reply subject a worker sends an outcome to; a longer one is ignored.
pub const MAX_REPLY_SUBJECT: usize = 256;

/// Whether `subject` can be published to as it is: dot-separated tokens of printable
/// characters, no wildcard, within [`MAX_REPLY_SUBJECT`].
pub fn is_reply_subject(subject: &str) -> bool {
    !subject.is_empty()
        && subject.len() <= MAX_REPLY_SUBJECT
        && subject.split('.').all(|token| {
            !token.is_empty()
                && token != "*"
                && token != ">"
                && token.bytes().all(|b| b.is_ascii_graphic())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_subjects_are_plain_subjects() {
        assert!(is_reply_subject("_INBOX_api.placed.abc.0192f3c4"));
        for bad in [
            "",
            "a..b",
            "a.*",
            "a.>",
            "a b",
            ".a",
            "a.",
            &"x".repeat(300),
        ] {
            assert!(!is_reply_subject(bad), "{bad:?}");
        }
    }
}
