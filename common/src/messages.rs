//! Every message type on the bus: its schema, subject, type name, version and deterministic
//! message id, declared once with [`message!`](crate::message).
//!
//! Message ids are derived from the order id and the step, so a retried publish inside the
//! duplicate window is dropped by the server, and a redelivered handler that publishes its
//! follow-up again publishes the same id.

use crate::domain::{Actor, Lines, OrderStatus, Reason, Reference, blank_is_absent};
use crate::message;
use crate::money::{Currency, Money};
use crate::shipping::{Address, ShippingAddress};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

mod after_sale;
mod fulfilment;
mod outcome;
mod refunds;
mod status;
mod transition;
pub use crate::domain::{Line, LineRequest};
pub use after_sale::{
    AfterSale, AfterSaleStep, Fulfilment, FulfilmentChanged, PartLine, Return, ReturnChanged,
};
pub use fulfilment::{DeliverOrder, FulfilOrder};
pub use outcome::{MAX_REPLY_SUBJECT, OutcomeLine, PlacedOutcome, is_reply_subject};
pub use refunds::{RefundChanged, RefundFailed, RefundOrder, RefundPayment, RefundSucceeded};
pub use status::OrderStatusChanged;

/// `orders.cmd.place`: a customer asks for an order. Published by the api or by another system.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlaceOrder {
    pub order_id: Uuid,
    pub user_id: Uuid,
    #[schema(value_type = Vec<LineRequest>)]
    pub items: Lines,
    /// Where the order goes, kept with it as a snapshot; absent when it has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<ShippingAddress>)]
    pub shipping_address: Option<Address>,
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
// Decoded through its fields as received, its shipment checked (`transition.rs`).
#[serde(deny_unknown_fields, try_from = "transition::TransitionFields")]
pub struct TransitionOrder {
    pub order_id: Uuid,
    pub to: OrderStatus,
    /// Who asks: `user:<id>`, `system:expiry`, … (1 to 200 characters).
    #[schema(value_type = String)]
    pub actor: Actor,
    /// Why (1 to 500 characters; blank is none).
    #[serde(default, deserialize_with = "blank_is_absent")]
    #[schema(value_type = Option<String>)]
    pub reason: Option<Reason>,
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
    pub fn new(order_id: Uuid, to: OrderStatus, actor: Actor) -> Self {
        TransitionOrder {
            order_id,
            to,
            actor,
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
    #[schema(value_type = String)]
    pub reason: Reason,
    /// The publisher's unique id of this adjustment (a receipt or count number, 1 to 200
    /// characters). An adjustment is applied once per reference, however often it arrives.
    #[schema(value_type = String)]
    pub reference: Reference,
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
    #[schema(value_type = String)]
    pub provider_reference: Reference,
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
    #[schema(value_type = String)]
    pub provider_reference: Reference,
    /// The provider's explanation (1 to 500 characters; blank is none).
    #[serde(default, deserialize_with = "blank_is_absent")]
    #[schema(value_type = Option<String>)]
    pub reason: Option<Reason>,
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

    fn lines() -> Lines {
        Lines::merging(&[LineRequest {
            product_id: Uuid::from_u128(1),
            quantity: 2,
        }])
        .expect("valid")
    }

    fn actor(name: &str) -> Actor {
        Actor::new(name).expect("valid")
    }

    #[test]
    fn message_ids_are_derived_from_order_and_step() {
        let id = Uuid::from_u128(9);
        let place = PlaceOrder {
            order_id: id,
            user_id: id,
            items: lines(),
            shipping_address: None,
        };
        assert_eq!(place.message_id(), format!("order:{id}:place"));
        assert_eq!(place.order_id(), Some(id));
        let expired = TransitionOrder::new(id, OrderStatus::Cancelled, actor("system:expiry"));
        assert_eq!(
            expired.message_id(),
            format!("order:{id}:to:CANCELLED:system:expiry")
        );
        let request = Uuid::from_u128(7);
        let cancel = TransitionOrder {
            request: Some(request),
            ..TransitionOrder::new(id, OrderStatus::Cancelled, actor("user:x"))
        };
        assert_eq!(
            cancel.message_id(),
            format!("order:{id}:to:CANCELLED:request:{request}")
        );
    }

    #[test]
    fn a_transition_without_allowed_statuses_keeps_the_published_shape() {
        let command = TransitionOrder::new(Uuid::nil(), OrderStatus::Paid, actor("system:test"));
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
            items: lines(),
            shipping_address: None,
        };
        let json = serde_json::to_value(&command).expect("encodes");
        assert!(json.get("shipping_address").is_none(), "{json}");
        let old: PlaceOrder = serde_json::from_value(serde_json::json!({
            "order_id": Uuid::nil(), "user_id": Uuid::nil(),
            "items": [{"product_id": Uuid::from_u128(1), "quantity": 2}]
        }))
        .expect("a publisher unaware of shipping_address is still understood");
        assert_eq!(old, command);
    }

    #[test]
    fn a_command_with_a_bad_text_or_bad_lines_is_refused_naming_the_field() {
        use crate::domain::MAX_REASON_CHARS;
        use crate::messaging::decode;
        let envelope = |kind: &str, data: serde_json::Value| {
            serde_json::json!({"id": Uuid::nil(), "type": kind, "version": 1,
                "occurred_at": "2026-01-01T00:00:00Z", "correlation_id": "c", "data": data})
            .to_string()
        };
        let transition = |reason: String| {
            let data = serde_json::json!({"order_id": Uuid::nil(), "to": "PAID",
                "actor": "system:test", "reason": reason});
            decode::<TransitionOrder>(envelope("orders.transition", data).as_bytes())
        };
        let longest = transition("r".repeat(MAX_REASON_CHARS)).expect("valid");
        assert_eq!(longest.data.reason.map(|r| r.len()), Some(MAX_REASON_CHARS));
        let blank = transition(" ".into()).expect("blank is no reason");
        assert_eq!(blank.data.reason, None);
        let long = transition("r".repeat(MAX_REASON_CHARS + 1))
            .expect_err("too long")
            .to_string();
        assert!(
            long.contains(&format!(
                "reason: must be 1 to {MAX_REASON_CHARS} characters"
            )),
            "{long}"
        );
        let place = |items: serde_json::Value| {
            let data = serde_json::json!({"order_id": Uuid::nil(), "user_id": Uuid::nil(), "items": items});
            decode::<PlaceOrder>(envelope("orders.place", data).as_bytes())
                .expect_err("refused")
                .to_string()
        };
        let zero = place(serde_json::json!([{"product_id": Uuid::nil(), "quantity": 0}]));
        assert!(
            zero.contains("items[0].quantity: must be between 1 and"),
            "{zero}"
        );
        let twice = place(
            serde_json::json!([{"product_id": Uuid::nil(), "quantity": 1},
            {"product_id": Uuid::nil(), "quantity": 1}]),
        );
        assert!(twice.contains("items: product"), "{twice}");
        let none = place(serde_json::json!([]));
        assert!(
            none.contains("items: an order needs at least one line"),
            "{none}"
        );
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
