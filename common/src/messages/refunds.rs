//! The refund messages: the api's request to the order worker, the worker's command to the
//! payment system, the payment system's outcomes, and the order event that follows each change.
//!
//! A refund's id is chosen by whoever asks for it (the api derives it from the request's
//! `Idempotency-Key`; a cancellation from the order id), so every message about one refund
//! carries the same id and a retried step is the same refund.

use crate::domain::{Actor, PaymentStatus, Reason, Reference, RefundStatus, blank_is_absent};
use crate::message;
use crate::money::{Currency, Money};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// `orders.cmd.refund`: give back part or all of an order's money (an ADMIN, through the api).
/// The order worker records the refund `REQUESTED` and asks the payment system for it; a
/// refund that would take more than is left to refund is recorded `REFUSED` with the reason.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundOrder {
    pub refund_id: Uuid,
    pub order_id: Uuid,
    /// Minor units of the order's currency, at least 1.
    #[schema(value_type = i64)]
    pub amount: Money,
    /// Why (1 to 500 characters), shown in the order's refunds.
    #[schema(value_type = String)]
    pub reason: Reason,
    /// Who asks: `user:<id>` (1 to 200 characters).
    #[schema(value_type = String)]
    pub actor: Actor,
    /// A payment of the order recorded `refund_required` (wrong amount, paid twice, paid after
    /// cancel) that this refund returns. Absent: the refund returns the order's captured money.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub payment_reference: Option<Reference>,
}

message!(RefundOrder {
    subject: "orders.cmd.refund",
    kind: "orders.refund",
    version: 1,
    id: |m| format!("refund:{}:request", m.refund_id),
    order: |m| m.order_id,
});

/// `payments.cmd.refund`: the order service asks the payment system to give money back. The
/// payment system answers `payments.evt.refunded` or `payments.evt.refund_failed` with the same
/// `refund_id`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundPayment {
    pub refund_id: Uuid,
    pub order_id: Uuid,
    /// Minor units.
    #[schema(value_type = i64)]
    pub amount: Money,
    /// ISO 4217.
    #[schema(value_type = String)]
    pub currency: Currency,
    /// The payment the money came from (its provider reference), when the order has one.
    pub payment_reference: Option<String>,
    pub reason: String,
}

message!(RefundPayment {
    subject: "payments.cmd.refund",
    kind: "payments.refund",
    version: 1,
    id: |m| format!("refund-{}", m.refund_id),
    order: |m| m.order_id,
});

/// `payments.evt.refunded`: the payment system gave a refund's money back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundSucceeded {
    pub refund_id: Uuid,
    pub order_id: Uuid,
    /// Minor units; the refund's amount.
    #[schema(value_type = i64)]
    pub amount: Money,
    #[schema(value_type = String)]
    pub currency: Currency,
    /// The provider's id of the refund; an outcome is recorded once per reference.
    #[schema(value_type = String)]
    pub provider_reference: Reference,
}

message!(RefundSucceeded {
    subject: "payments.evt.refunded",
    kind: "payments.refunded",
    version: 1,
    id: |m| format!("refund:{}:refunded", m.provider_reference),
    order: |m| m.order_id,
});

/// `payments.evt.refund_failed`: the payment system could not give a refund's money back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundFailed {
    pub refund_id: Uuid,
    pub order_id: Uuid,
    /// The provider's id of the attempt; an outcome is recorded once per reference.
    #[schema(value_type = String)]
    pub provider_reference: Reference,
    /// The provider's explanation (1 to 500 characters; blank is none).
    #[serde(default, deserialize_with = "blank_is_absent")]
    #[schema(value_type = Option<String>)]
    pub reason: Option<Reason>,
}

message!(RefundFailed {
    subject: "payments.evt.refund_failed",
    kind: "payments.refund_failed",
    version: 1,
    id: |m| format!("refund:{}:failed", m.provider_reference),
    order: |m| m.order_id,
});

/// `orders.evt.refund_changed`: a refund of an order was requested, succeeded, failed or was
/// refused, with the order's money as it then stood.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundChanged {
    pub order_id: Uuid,
    pub user_id: Uuid,
    pub refund_id: Uuid,
    pub status: RefundStatus,
    /// Minor units.
    #[schema(value_type = i64)]
    pub amount: Money,
    #[schema(value_type = String)]
    pub currency: Currency,
    /// The `refund_required` payment the refund returns, if any.
    pub payment_reference: Option<String>,
    pub at: DateTime<Utc>,
    /// Who asked for the refund (`user:<id>`).
    pub actor: String,
    /// Why it was asked for; once `FAILED`, why it failed; when `REFUSED`, why the order
    /// worker refused it (more than is left to refund, nothing captured).
    pub reason: Option<String>,
    pub payment_status: PaymentStatus,
    /// Minor units: the sum of the order's captured payments (not bounded as one amount is).
    pub amount_paid: i64,
    /// Minor units: the sum of its succeeded refunds.
    pub amount_refunded: i64,
    /// The id of the timeline entry this change recorded: drawn from the same sequence as
    /// the status changes' entries, so one id orders both kinds of an order's entries.
    #[serde(default)]
    pub entry_id: Option<i64>,
}

message!(RefundChanged {
    subject: "orders.evt.refund_changed",
    kind: "orders.refund_changed",
    version: 1,
    id: |m| format!("refund:{}:{}", m.refund_id, m.status.as_str()),
    order: |m| m.order_id,
});

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messaging::Message;

    #[test]
    fn a_refund_command_for_the_payment_system_has_a_message_id_from_its_refund() {
        let id = Uuid::from_u128(7);
        let command = RefundPayment {
            refund_id: id,
            order_id: Uuid::nil(),
            amount: crate::money::Money::new(100).unwrap(),
            currency: crate::money::Currency::new("USD").unwrap(),
            payment_reference: None,
            reason: "damaged".into(),
        };
        assert_eq!(command.message_id(), format!("refund-{id}"));
        let request = RefundOrder {
            refund_id: id,
            order_id: Uuid::nil(),
            amount: crate::money::Money::new(100).unwrap(),
            reason: Reason::new("damaged").unwrap(),
            actor: Actor::new("user:x").unwrap(),
            payment_reference: None,
        };
        let json = serde_json::to_value(&request).expect("encodes");
        assert!(json.get("payment_reference").is_none(), "{json}");
    }
}
