//! Every message type on the bus: its schema, subject and deterministic message id.
//!
//! Message ids are derived from the order id and the step, so a retried publish inside the
//! duplicate window is dropped by the server, and a redelivered handler that publishes its
//! follow-up again publishes the same id.

use crate::domain::{MAX_LINE_QUANTITY, MAX_ORDER_LINES, OrderStatus};
use crate::messaging::Message;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// One line of an order request: which product and how many.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LineRequest {
    pub product_id: Uuid,
    #[schema(minimum = 1, maximum = 10000)]
    pub quantity: i32,
}

/// Merges repeated products and checks the bounds of an order: 1 to 100 distinct lines,
/// each quantity 1 to 10 000. Lines come back sorted by product id (the locking order).
pub fn normalise_lines(lines: &[LineRequest]) -> Result<Vec<LineRequest>, Vec<(String, String)>> {
    let mut errors = Vec::new();
    if lines.is_empty() {
        errors.push((
            "items".to_owned(),
            "an order needs at least one line".to_owned(),
        ));
    }
    for (i, line) in lines.iter().enumerate() {
        if !(1..=MAX_LINE_QUANTITY).contains(&line.quantity) {
            errors.push((
                format!("items[{i}].quantity"),
                format!("must be between 1 and {MAX_LINE_QUANTITY}"),
            ));
        }
    }
    let mut merged: std::collections::BTreeMap<Uuid, i64> = std::collections::BTreeMap::new();
    for line in lines {
        *merged.entry(line.product_id).or_default() += i64::from(line.quantity);
    }
    for (product_id, quantity) in &merged {
        if *quantity > i64::from(MAX_LINE_QUANTITY) && errors.is_empty() {
            errors.push((
                "items".to_owned(),
                format!("product {product_id} is ordered {quantity} times in total; at most {MAX_LINE_QUANTITY}"),
            ));
        }
    }
    if merged.len() > MAX_ORDER_LINES {
        errors.push((
            "items".to_owned(),
            format!(
                "at most {MAX_ORDER_LINES} distinct products per order, got {}",
                merged.len()
            ),
        ));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(merged
        .into_iter()
        .map(|(product_id, quantity)| LineRequest {
            product_id,
            // Bounded above by MAX_LINE_QUANTITY, so it fits.
            quantity: i32::try_from(quantity).unwrap_or(MAX_LINE_QUANTITY),
        })
        .collect())
}

/// `orders.cmd.place`: a customer asks for an order. Published by the api or by another system.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlaceOrder {
    pub order_id: Uuid,
    pub user_id: Uuid,
    pub items: Vec<LineRequest>,
}

impl Message for PlaceOrder {
    const TYPE: &'static str = "orders.place";
    const VERSION: u32 = 1;
    fn subject(&self) -> String {
        "orders.cmd.place".into()
    }
    fn message_id(&self) -> String {
        format!("order:{}:place", self.order_id)
    }
}

/// `inventory.cmd.reserve`: reserve every line of an order, or none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReserveStock {
    pub order_id: Uuid,
    pub items: Vec<LineRequest>,
}

impl Message for ReserveStock {
    const TYPE: &'static str = "inventory.reserve";
    const VERSION: u32 = 1;
    fn subject(&self) -> String {
        "inventory.cmd.reserve".into()
    }
    fn message_id(&self) -> String {
        format!("order:{}:reserve", self.order_id)
    }
}

/// `inventory.evt.reserved`: every line of the order is reserved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StockReserved {
    pub order_id: Uuid,
}

impl Message for StockReserved {
    const TYPE: &'static str = "inventory.reserved";
    const VERSION: u32 = 1;
    fn subject(&self) -> String {
        "inventory.evt.reserved".into()
    }
    fn message_id(&self) -> String {
        format!("order:{}:reserved", self.order_id)
    }
}

/// `inventory.evt.rejected`: the order cannot be reserved; nothing was reserved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StockRejected {
    pub order_id: Uuid,
    /// Human-readable, naming each line at fault.
    pub reason: String,
}

impl Message for StockRejected {
    const TYPE: &'static str = "inventory.rejected";
    const VERSION: u32 = 1;
    fn subject(&self) -> String {
        "inventory.evt.rejected".into()
    }
    fn message_id(&self) -> String {
        format!("order:{}:rejected", self.order_id)
    }
}

/// `orders.evt.status_changed`: an order moved in its lifecycle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderStatusChanged {
    pub order_id: Uuid,
    pub user_id: Uuid,
    pub from: Option<OrderStatus>,
    pub to: OrderStatus,
    pub at: DateTime<Utc>,
    /// Who or which system made the change (`user:<id>`, `system:inventory`, …).
    pub actor: String,
    pub reason: Option<String>,
    /// The id of the order's timeline entry this change recorded (absent in events published
    /// before it was added).
    #[serde(default)]
    pub entry_id: Option<i64>,
}

impl Message for OrderStatusChanged {
    const TYPE: &'static str = "orders.status_changed";
    const VERSION: u32 = 1;
    fn subject(&self) -> String {
        "orders.evt.status_changed".into()
    }
    fn message_id(&self) -> String {
        format!("order:{}:status:{}", self.order_id, self.to)
    }
}

/// `orders.cmd.transition`: move an order along its lifecycle (staff, the expiry sweeper, or
/// another system). The order worker applies it under the state machine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransitionOrder {
    pub order_id: Uuid,
    pub to: OrderStatus,
    /// Who asks: `user:<id>`, `system:expiry`, …
    pub actor: String,
    pub reason: Option<String>,
}

impl Message for TransitionOrder {
    const TYPE: &'static str = "orders.transition";
    const VERSION: u32 = 1;
    fn subject(&self) -> String {
        "orders.cmd.transition".into()
    }
    /// One id per target status: each status is reached at most once, so two requests for the
    /// same move (an admin's cancel and an expiry, say) are one command.
    fn message_id(&self) -> String {
        format!("order:{}:to:{}", self.order_id, self.to)
    }
}

/// `inventory.cmd.release`: give an order's reserved stock back (it was cancelled).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReleaseStock {
    pub order_id: Uuid,
}

impl Message for ReleaseStock {
    const TYPE: &'static str = "inventory.release";
    const VERSION: u32 = 1;
    fn subject(&self) -> String {
        "inventory.cmd.release".into()
    }
    fn message_id(&self) -> String {
        format!("order:{}:release", self.order_id)
    }
}

/// `inventory.cmd.commit`: the order shipped; its reservation becomes a sale for good.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommitStock {
    pub order_id: Uuid,
}

impl Message for CommitStock {
    const TYPE: &'static str = "inventory.commit";
    const VERSION: u32 = 1;
    fn subject(&self) -> String {
        "inventory.cmd.commit".into()
    }
    fn message_id(&self) -> String {
        format!("order:{}:commit", self.order_id)
    }
}

/// `payments.evt.succeeded`: a payment provider captured a payment for an order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PaymentSucceeded {
    pub order_id: Uuid,
    /// Minor units.
    pub amount: i64,
    /// ISO 4217.
    pub currency: String,
    /// The provider's id of the payment; unique per payment.
    pub provider_reference: String,
}

impl Message for PaymentSucceeded {
    const TYPE: &'static str = "payments.succeeded";
    const VERSION: u32 = 1;
    fn subject(&self) -> String {
        "payments.evt.succeeded".into()
    }
    fn message_id(&self) -> String {
        format!("payment:{}:succeeded", self.provider_reference)
    }
}

/// `payments.evt.failed`: a payment for an order failed for good.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PaymentFailed {
    pub order_id: Uuid,
    pub amount: i64,
    pub currency: String,
    pub provider_reference: String,
    /// The provider's explanation.
    pub reason: Option<String>,
}

impl Message for PaymentFailed {
    const TYPE: &'static str = "payments.failed";
    const VERSION: u32 = 1;
    fn subject(&self) -> String {
        "payments.evt.failed".into()
    }
    fn message_id(&self) -> String {
        format!("payment:{}:failed", self.provider_reference)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(id: u128, quantity: i32) -> LineRequest {
        LineRequest {
            product_id: Uuid::from_u128(id),
            quantity,
        }
    }

    #[test]
    fn repeated_products_are_merged_and_sorted_by_id() {
        let lines = normalise_lines(&[line(2, 1), line(1, 2), line(2, 3)]).expect("valid");
        assert_eq!(lines, vec![line(1, 2), line(2, 4)]);
    }

    #[test]
    fn bounds_are_enforced_with_field_paths() {
        let errors = normalise_lines(&[line(1, 0), line(2, 10_001)]).unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(fields, vec!["items[0].quantity", "items[1].quantity"]);
        assert!(normalise_lines(&[]).is_err());
        let many: Vec<LineRequest> = (0..101).map(|i| line(i, 1)).collect();
        assert!(normalise_lines(&many).is_err());
        assert!(normalise_lines(&[line(1, 6000), line(1, 6000)]).is_err());
    }

    #[test]
    fn message_ids_are_derived_from_order_and_step() {
        let id = Uuid::from_u128(9);
        let place = PlaceOrder {
            order_id: id,
            user_id: id,
            items: vec![],
        };
        assert_eq!(place.message_id(), format!("order:{id}:place"));
        let reserve = ReserveStock {
            order_id: id,
            items: vec![],
        };
        assert_ne!(place.message_id(), reserve.message_id());
    }
}
