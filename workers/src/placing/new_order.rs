//! A place command as the inventory worker records it, and the names its timeline entry
//! carries.

use common::messages::Line;
use common::shipping::ShippingAddress;
use uuid::Uuid;

/// Who records orders, in their timeline.
pub const ACTOR: &str = "system:inventory";
/// The reason of a confirmed order's first timeline entry.
pub const RESERVED: &str = "stock reserved";

/// A place command, checked: its lines merged and sorted by product id, its address
/// normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOrder {
    pub order_id: Uuid,
    pub user_id: Uuid,
    pub lines: Vec<Line>,
    pub shipping_address: Option<ShippingAddress>,
    pub correlation_id: common::correlation::CorrelationId,
}

impl NewOrder {
    /// Whether `other` asks for the same order (a copy of its command, whatever its
    /// correlation id).
    pub fn same_as(&self, other: &NewOrder) -> bool {
        self.order_id == other.order_id
            && self.user_id == other.user_id
            && self.lines == other.lines
            && self.shipping_address == other.shipping_address
    }
}
