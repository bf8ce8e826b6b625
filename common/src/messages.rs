//! Every message type on the bus: its schema, subject, type name, version and deterministic
//! message id, declared once with [`message!`](crate::message).
//!
//! Message ids are derived from the order id and the step, so a retried publish inside the
//! duplicate window is dropped by the server, and a redelivered handler that publishes its
//! follow-up again publishes the same id.

use crate::domain::{MAX_LINE_QUANTITY, MAX_ORDER_LINES, OrderStatus};
use crate::message;
use crate::money::{Currency, Money, Quantity};
use crate::shipping::{Shipment, ShippingAddress};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

mod after_sale;
mod fulfilment;
mod outcome;
mod refunds;
pub use after_sale::{
    AfterSale, AfterSaleStep, Fulfilment, FulfilmentChanged, PartLine, Return, ReturnChanged,
};
pub use fulfilment::{DeliverOrder, FulfilOrder};
pub use outcome::{MAX_REPLY_SUBJECT, OutcomeLine, PlacedOutcome, is_reply_subject};
pub use refunds::{RefundChanged, RefundFailed, RefundOrder, RefundPayment, RefundSucceeded};

/// One line of an order request: which product and how many.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LineRequest {
    pub product_id: Uuid,
    #[schema(minimum = 1, maximum = 10000)]
    pub quantity: i32,
}

/// One line of an order, checked: a product and a [`Quantity`] of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    pub product_id: Uuid,
    pub quantity: Quantity,
}

impl From<Line> for LineRequest {
    fn from(line: Line) -> Self {
        LineRequest {
            product_id: line.product_id,
            quantity: line.quantity.get(),
        }
    }
}

/// Merges repeated products and checks the bounds of an order: 1 to 100 distinct lines,
/// each quantity 1 to 10 000. Lines come back sorted by product id (the locking order).
pub fn normalise_lines(lines: &[LineRequest]) -> Result<Vec<Line>, Vec<(String, String)>> {
    let mut errors = Vec::new();
    if lines.is_empty() {
        errors.push((
            "items".to_owned(),
            "an order needs at least one line".to_owned(),
        ));
    }
    for (i, line) in lines.iter().enumerate() {
        if let Err(e) = Quantity::new(i64::from(line.quantity)) {
            errors.push((format!("items[{i}].quantity"), e));
        }
    }
    let mut merged: std::collections::BTreeMap<Uuid, i64> = std::collections::BTreeMap::new();
    for line in lines {
        *merged.entry(line.product_id).or_default() += i64::from(line.quantity);
    }
    let mut checked = Vec::with_capacity(merged.len());
    for (&product_id, &quantity) in &merged {
        match Quantity::new(quantity) {
            Ok(quantity) => checked.push(Line {
                product_id,
                quantity,
            }),
            Err(_) if errors.is_empty() => errors.push((
                "items".to_owned(),
                format!("product {product_id} is ordered {quantity} times in total; at most {MAX_LINE_QUANTITY}"),
            )),
            Err(_) => {}
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
    Ok(checked)
}

/// `orders.cmd.place`: a customer asks for an order. Published by the api or by another system.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlaceOrder {
    pub order_id: Uuid,
    pub user_id: Uuid,
    pub items: Vec<LineRequest>,
    /// Where the order goes, kept with it as a snapshot; absent when it has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipping_address: Option<ShippingAddress>,
}

message!(PlaceOrder {
    subject: "orders.cmd.place",
    kind: "orders.place",
    version: 1,
    id: |m| format!("order:{}:place", m.order_id),
    order: |m| m.order_id,
});

/// `orders.cmd.transition`: move an order along its lifecycle: the order service's own command
/// (staff and customers through the api, the expiry sweeper). The order worker applies it under
/// the state machine. Outside systems ship and deliver over `orders.cmd.fulfil` and
/// `orders.cmd.deliver` instead; NATS refuses their publishes here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransitionOrder {
    pub order_id: Uuid,
    pub to: OrderStatus,
    /// Who asks: `user:<id>`, `system:expiry`, … (1 to 200 characters).
    pub actor: String,
    /// Why (at most 1000 characters).
    pub reason: Option<String>,
    /// The statuses the order may be in for this transition to apply, narrower than the
    /// lifecycle (a customer may cancel only before payment). Absent: any status the lifecycle
    /// allows the move from. An order that has moved on is refused (dead-lettered), never moved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_from: Option<Vec<OrderStatus>>,
    /// Only with `to` SHIPPED, together with `tracking_number`: who carries the parcel
    /// (1 to 100 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub carrier: Option<String>,
    /// Only with `to` SHIPPED, together with `carrier` (1 to 100 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracking_number: Option<String>,
    /// Only with `carrier` and `tracking_number`: an http or https URL (at most 2000
    /// characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracking_url: Option<String>,
    /// The request this command carries out, named by its publisher (the api derives it from
    /// the HTTP request's `Idempotency-Key`, else from its request id). It is part of the
    /// message id, so two requests for the same step are two commands and a retried request
    /// is one. Absent: the command is named by its `actor` (the expiry sweeper's instances all
    /// publish one command per expired order).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<Uuid>,
}

impl TransitionOrder {
    /// A command from `actor` to move the order to `to`, with no reason, no narrowing of the
    /// statuses it may move from and no shipment.
    pub fn new(order_id: Uuid, to: OrderStatus, actor: impl Into<String>) -> Self {
        TransitionOrder {
            order_id,
            to,
            actor: actor.into(),
            reason: None,
            allowed_from: None,
            carrier: None,
            tracking_number: None,
            tracking_url: None,
            request: None,
        }
    }
}

message!(TransitionOrder {
    subject: "orders.cmd.transition",
    kind: "orders.transition",
    version: 1,
    // The order, the step and who asks: a customer's cancel that the worker refuses (the order
    // was paid meanwhile) never swallows a staff cancel sent inside the duplicate window.
    id: |m| match m.request {
        Some(request) => format!("order:{}:to:{}:request:{request}", m.order_id, m.to),
        None => format!("order:{}:to:{}:{}", m.order_id, m.to, m.actor),
    },
    order: |m| m.order_id,
});

/// `orders.evt.status_changed`: an order was recorded (`from` is null) or moved in its
/// lifecycle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderStatusChanged {
    pub order_id: Uuid,
    pub user_id: Uuid,
    /// The previous status; null when the order was just recorded (`CONFIRMED` or `REJECTED`).
    pub from: Option<OrderStatus>,
    pub to: OrderStatus,
    pub at: DateTime<Utc>,
    /// Who or which system made the change (`user:<id>`, `system:inventory`, …).
    pub actor: String,
    pub reason: Option<String>,
    /// The id of the timeline entry this change recorded (ordered per order).
    #[serde(default)]
    pub entry_id: Option<i64>,
    /// On a move to `SHIPPED` made with tracking: the carrier and tracking. Absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipment: Option<Shipment>,
}

message!(OrderStatusChanged {
    subject: "orders.evt.status_changed",
    kind: "orders.status_changed",
    version: 1,
    id: |m| format!("order:{}:status:{}", m.order_id, m.to),
    order: |m| m.order_id,
});

/// `inventory.cmd.adjust`: a warehouse or ERP system adds or removes stock (a receipt, a
/// count, breakage). Recorded in the same ledger as the api's stock adjustments, once per
/// `reference`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdjustStock {
    pub product_id: Uuid,
    /// Added to the available stock (negative removes); not 0. Stock never goes below zero:
    /// an adjustment that would take it there is refused (dead-lettered).
    pub delta: i32,
    /// Why, for the ledger (1 to 500 characters).
    pub reason: String,
    /// The publisher's unique id of this adjustment (a receipt or count number, 1 to 200
    /// characters). An adjustment is applied once per reference, however often it arrives.
    pub reference: String,
}

message!(AdjustStock {
    subject: "inventory.cmd.adjust",
    kind: "inventory.adjust",
    version: 1,
    id: |m| format!("adjustment:{}", m.reference),
});

/// `payments.evt.succeeded`: a payment provider captured a payment for an order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PaymentSucceeded {
    pub order_id: Uuid,
    /// Minor units.
    #[schema(value_type = i64)]
    pub amount: Money,
    /// ISO 4217.
    #[schema(value_type = String)]
    pub currency: Currency,
    /// The provider's id of the payment; unique per payment.
    pub provider_reference: String,
}

message!(PaymentSucceeded {
    subject: "payments.evt.succeeded",
    kind: "payments.succeeded",
    version: 1,
    id: |m| format!("payment:{}:succeeded", m.provider_reference),
    order: |m| m.order_id,
});

/// `payments.evt.failed`: a payment for an order failed for good.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PaymentFailed {
    pub order_id: Uuid,
    #[schema(value_type = i64)]
    pub amount: Money,
    #[schema(value_type = String)]
    pub currency: Currency,
    pub provider_reference: String,
    /// The provider's explanation (at most 1000 characters).
    pub reason: Option<String>,
}

message!(PaymentFailed {
    subject: "payments.evt.failed",
    kind: "payments.failed",
    version: 1,
    id: |m| format!("payment:{}:failed", m.provider_reference),
    order: |m| m.order_id,
});

/// Every subject the service defines, each declared once by its message type.
pub const SUBJECTS: [&str; 16] = [
    <PlaceOrder as crate::messaging::Message>::SUBJECT,
    <TransitionOrder as crate::messaging::Message>::SUBJECT,
    <FulfilOrder as crate::messaging::Message>::SUBJECT,
    <DeliverOrder as crate::messaging::Message>::SUBJECT,
    <OrderStatusChanged as crate::messaging::Message>::SUBJECT,
    <AdjustStock as crate::messaging::Message>::SUBJECT,
    <PaymentSucceeded as crate::messaging::Message>::SUBJECT,
    <PaymentFailed as crate::messaging::Message>::SUBJECT,
    <RefundOrder as crate::messaging::Message>::SUBJECT,
    <RefundPayment as crate::messaging::Message>::SUBJECT,
    <RefundSucceeded as crate::messaging::Message>::SUBJECT,
    <RefundFailed as crate::messaging::Message>::SUBJECT,
    <RefundChanged as crate::messaging::Message>::SUBJECT,
    <AfterSale as crate::messaging::Message>::SUBJECT,
    <FulfilmentChanged as crate::messaging::Message>::SUBJECT,
    <ReturnChanged as crate::messaging::Message>::SUBJECT,
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messaging::Message;

    fn line(id: u128, quantity: i32) -> LineRequest {
        LineRequest {
            product_id: Uuid::from_u128(id),
            quantity,
        }
    }

    #[test]
    fn repeated_products_are_merged_and_sorted_by_id() {
        let lines = normalise_lines(&[line(2, 1), line(1, 2), line(2, 3)]).expect("valid");
        let lines: Vec<LineRequest> = lines.into_iter().map(LineRequest::from).collect();
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
            shipping_address: None,
        };
        assert_eq!(place.message_id(), format!("order:{id}:place"));
        assert_eq!(place.order_id(), Some(id));
        let expired = TransitionOrder::new(id, OrderStatus::Cancelled, "system:expiry");
        assert_eq!(
            expired.message_id(),
            format!("order:{id}:to:CANCELLED:system:expiry")
        );
        let request = Uuid::from_u128(7);
        let cancel = TransitionOrder {
            request: Some(request),
            ..TransitionOrder::new(id, OrderStatus::Cancelled, "user:x")
        };
        assert_eq!(
            cancel.message_id(),
            format!("order:{id}:to:CANCELLED:request:{request}")
        );
    }

    #[test]
    fn a_transition_without_allowed_statuses_keeps_the_published_shape() {
        let command = TransitionOrder::new(Uuid::nil(), OrderStatus::Paid, "system:test");
        let json = serde_json::to_value(&command).expect("encodes");
        for absent in [
            "allowed_from",
            "carrier",
            "tracking_number",
            "tracking_url",
            "request",
        ] {
            assert!(json.get(absent).is_none(), "{json}");
        }
        let old: TransitionOrder = serde_json::from_value(serde_json::json!({
            "order_id": Uuid::nil(), "to": "PAID", "actor": "system:test", "reason": null
        }))
        .expect("a publisher unaware of allowed_from is still understood");
        assert_eq!(old, command);
    }

    #[test]
    fn a_place_command_without_an_address_keeps_the_published_shape() {
        let command = PlaceOrder {
            order_id: Uuid::nil(),
            user_id: Uuid::nil(),
            items: vec![],
            shipping_address: None,
        };
        let json = serde_json::to_value(&command).expect("encodes");
        assert!(json.get("shipping_address").is_none(), "{json}");
        let old: PlaceOrder = serde_json::from_value(serde_json::json!({
            "order_id": Uuid::nil(), "user_id": Uuid::nil(), "items": []
        }))
        .expect("a publisher unaware of shipping_address is still understood");
        assert_eq!(old, command);
    }

    #[test]
    fn a_status_event_without_a_shipment_keeps_the_published_shape() {
        let event = OrderStatusChanged {
            order_id: Uuid::nil(),
            user_id: Uuid::nil(),
            from: Some(OrderStatus::Paid),
            to: OrderStatus::Shipped,
            at: chrono::DateTime::UNIX_EPOCH,
            actor: "system:test".into(),
            reason: None,
            entry_id: Some(1),
            shipment: None,
        };
        let json = serde_json::to_value(&event).expect("encodes");
        assert!(json.get("shipment").is_none(), "{json}");
        let back: OrderStatusChanged = serde_json::from_value(json).expect("decodes");
        assert_eq!(back, event);
    }
}
