//! The event every status change of an order announces.

use crate::domain::OrderStatus;
use crate::message;
use crate::shipping::Shipment;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

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
