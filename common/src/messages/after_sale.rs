//! After the sale: the order service's own command for the steps staff and customers take
//! once an order is paid (`orders.cmd.after_sale`: ship some lines, mark a shipment delivered,
//! cancel what is left, ask for a return, receive, reject or cancel it), and the events that
//! follow (`orders.evt.fulfilment_changed`, `orders.evt.return_changed`).
//!
//! A step is named by the request that asked for it (`request_id`, derived by the api from the
//! `Idempotency-Key` or the request id), so a retried publish is dropped inside the duplicate
//! window and a redelivered command changes nothing twice. The order worker records each
//! step's outcome under that id: the step made, or why it was refused.
//!
//! Warehouses and carriers take the shipping steps on subjects of their own
//! (`orders.cmd.fulfil`, `orders.cmd.deliver`), which reach the same steps.

use crate::domain::LineRequest;
use crate::domain::{Actor, FulfilmentStatus, Lines, OrderStatus, Reason, ReturnStatus};
use crate::message;
use crate::shipping::{Shipment, describe, shipment};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// `orders.cmd.after_sale`: one step after the sale, asked for by `actor` through the api.
/// NATS lets only the api (and the order worker, re-driving) publish it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AfterSale {
    pub order_id: Uuid,
    /// The request this step carries out: its outcome is recorded under this id, and the
    /// fulfilment or return it creates takes it as its id.
    pub request_id: Uuid,
    /// Who asks: `user:<id>` (1 to 200 characters).
    #[schema(value_type = String)]
    pub actor: Actor,
    /// Whether the actor is staff: only staff ship, deliver, cancel what is left, receive and
    /// reject returns, and ask for a return past the return window.
    pub staff: bool,
    pub step: AfterSaleStep,
}

/// What is asked for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
// Decoded through `StepFields`: a shipment's carrier and tracking are checked (as
// `shipment` checks them for a move to SHIPPED) and kept trimmed.
#[serde(
    tag = "kind",
    rename_all = "snake_case",
    deny_unknown_fields,
    try_from = "StepFields"
)]
pub enum AfterSaleStep {
    /// Ship these quantities (each at most what is left of its line) in one shipment.
    Fulfil {
        #[schema(value_type = Vec<LineRequest>)]
        lines: Lines,
        carrier: String,
        tracking_number: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tracking_url: Option<String>,
    },
    /// The shipment arrived.
    Deliver { fulfilment_id: Uuid },
    /// Cancel every quantity not shipped: its stock back, its value refunded when paid.
    CancelRemaining {
        /// 1 to 500 characters.
        #[schema(value_type = String)]
        reason: Reason,
    },
    /// Ask to return delivered quantities (each at most what was delivered and is not returned
    /// or asked for yet).
    RequestReturn {
        #[schema(value_type = Vec<LineRequest>)]
        lines: Lines,
        /// 1 to 500 characters.
        #[schema(value_type = String)]
        reason: Reason,
    },
    /// The goods came back: the products named in `restock` go back into stock, the others
    /// are written off; the lines' value is refunded.
    ReceiveReturn {
        return_id: Uuid,
        #[serde(default)]
        restock: Vec<Uuid>,
    },
    /// Staff refuse the return.
    RejectReturn {
        return_id: Uuid,
        /// 1 to 500 characters.
        #[schema(value_type = String)]
        reason: Reason,
    },
    /// The return is withdrawn before it was received.
    CancelReturn { return_id: Uuid },
}

/// An after-sale step as received, a shipment's carrier and tracking not checked yet.
#[derive(Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
enum StepFields {
    Fulfil {
        lines: Lines,
        carrier: String,
        tracking_number: String,
        #[serde(default)]
        tracking_url: Option<String>,
    },
    Deliver {
        fulfilment_id: Uuid,
    },
    CancelRemaining {
        reason: Reason,
    },
    RequestReturn {
        lines: Lines,
        reason: Reason,
    },
    ReceiveReturn {
        return_id: Uuid,
        #[serde(default)]
        restock: Vec<Uuid>,
    },
    RejectReturn {
        return_id: Uuid,
        reason: Reason,
    },
    CancelReturn {
        return_id: Uuid,
    },
}

impl TryFrom<StepFields> for AfterSaleStep {
    type Error = String;
    fn try_from(step: StepFields) -> Result<Self, Self::Error> {
        Ok(match step {
            StepFields::Fulfil {
                lines,
                carrier,
                tracking_number,
                tracking_url,
            } => {
                let checked = shipment(
                    OrderStatus::Shipped,
                    Some(&carrier),
                    Some(&tracking_number),
                    tracking_url.as_deref(),
                )
                .map_err(|errors| describe(&errors))?;
                let Some(checked) = checked else {
                    return Err("carrier: required".to_owned());
                };
                AfterSaleStep::Fulfil {
                    lines,
                    carrier: checked.carrier,
                    tracking_number: checked.tracking_number,
                    tracking_url: checked.tracking_url,
                }
            }
            StepFields::Deliver { fulfilment_id } => AfterSaleStep::Deliver { fulfilment_id },
            StepFields::CancelRemaining { reason } => AfterSaleStep::CancelRemaining { reason },
            StepFields::RequestReturn { lines, reason } => {
                AfterSaleStep::RequestReturn { lines, reason }
            }
            StepFields::ReceiveReturn { return_id, restock } => {
                AfterSaleStep::ReceiveReturn { return_id, restock }
            }
            StepFields::RejectReturn { return_id, reason } => {
                AfterSaleStep::RejectReturn { return_id, reason }
            }
            StepFields::CancelReturn { return_id } => AfterSaleStep::CancelReturn { return_id },
        })
    }
}

message!(AfterSale {
    subject: "orders.cmd.after_sale",
    kind: "orders.after_sale",
    version: 1,
    id: |m| format!("order:{}:after-sale:{}", m.order_id, m.request_id),
    order: |m| m.order_id,
});

/// One line of a shipment or a return: a product of the order and a quantity of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PartLine {
    pub product_id: Uuid,
    pub quantity: i32,
    /// On a received return's line: whether it went back into stock. Absent elsewhere.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restock: Option<bool>,
}

/// One shipment of an order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Fulfilment {
    pub id: Uuid,
    pub lines: Vec<PartLine>,
    /// Carrier and tracking; absent only on a shipment recorded without them.
    pub shipment: Option<Shipment>,
    pub status: FulfilmentStatus,
    pub shipped_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}

/// One return of an order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Return {
    pub id: Uuid,
    pub lines: Vec<PartLine>,
    pub reason: String,
    pub status: ReturnStatus,
    pub requested_at: DateTime<Utc>,
    /// When it was received, rejected or cancelled.
    pub decided_at: Option<DateTime<Utc>>,
    /// Why staff rejected it.
    pub rejection_reason: Option<String>,
    /// The refund its receipt asked for (none when nothing was left to refund).
    pub refund_id: Option<Uuid>,
}

/// `orders.evt.fulfilment_changed`: a shipment of an order was made or delivered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FulfilmentChanged {
    pub order_id: Uuid,
    pub user_id: Uuid,
    /// The timeline entry this change recorded (one sequence with the order's other entries).
    pub entry_id: i64,
    pub at: DateTime<Utc>,
    /// Who made the change (`user:<id>`, `system:warehouse`, `system:carrier`).
    pub actor: String,
    pub fulfilment: Fulfilment,
    /// The order's status after the change.
    pub order_status: OrderStatus,
}

message!(FulfilmentChanged {
    subject: "orders.evt.fulfilment_changed",
    kind: "orders.fulfilment_changed",
    version: 1,
    id: |m| format!("fulfilment:{}:{:?}", m.fulfilment.id, m.fulfilment.status),
    order: |m| m.order_id,
});

/// `orders.evt.return_changed`: a return of an order was requested, received, rejected or
/// cancelled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReturnChanged {
    pub order_id: Uuid,
    pub user_id: Uuid,
    /// The timeline entry this change recorded (one sequence with the order's other entries).
    pub entry_id: i64,
    pub at: DateTime<Utc>,
    /// Who made the change (`user:<id>`).
    pub actor: String,
    #[serde(rename = "return")]
    pub return_: Return,
}

message!(ReturnChanged {
    subject: "orders.evt.return_changed",
    kind: "orders.return_changed",
    version: 1,
    id: |m| format!("return:{}:{:?}", m.return_.id, m.return_.status),
    order: |m| m.order_id,
});

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messaging::Message;

    #[test]
    fn a_step_is_named_by_its_order_and_request_and_refuses_unknown_fields() {
        let step = AfterSale {
            order_id: Uuid::nil(),
            request_id: Uuid::max(),
            actor: Actor::new("user:1").expect("valid"),
            staff: true,
            step: AfterSaleStep::CancelRemaining {
                reason: Reason::new("out of stock").expect("valid"),
            },
        };
        assert_eq!(
            step.message_id(),
            format!("order:{}:after-sale:{}", Uuid::nil(), Uuid::max())
        );
        let json = serde_json::to_value(&step).expect("encodes");
        assert_eq!(json["step"]["kind"], "cancel_remaining");
        let mut extra = json.clone();
        extra["step"]["surprise"] = serde_json::json!(1);
        assert!(serde_json::from_value::<AfterSale>(extra).is_err());
        assert_eq!(
            serde_json::from_value::<AfterSale>(json).expect("decodes"),
            step
        );
        let mut ship = serde_json::to_value(&step).expect("encodes");
        ship["step"] = serde_json::json!({"kind": "fulfil", "carrier": " UPS ",
            "tracking_number": "1Z", "lines": [{"product_id": Uuid::nil(), "quantity": 1}]});
        let shipped = serde_json::from_value::<AfterSale>(ship.clone()).expect("decodes");
        assert!(matches!(&shipped.step, AfterSaleStep::Fulfil { carrier, .. } if carrier == "UPS"));
        ship["step"]["tracking_url"] = serde_json::json!("ftp://ups.example/1Z");
        let refused = serde_json::from_value::<AfterSale>(ship)
            .expect_err("refused")
            .to_string();
        assert!(
            refused.contains("tracking_url: must be an http"),
            "{refused}"
        );
    }
}
