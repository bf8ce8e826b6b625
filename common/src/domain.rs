//! Domain types shared by the api and the workers, parsed at the edge so the inside never
//! re-validates strings.

use serde::{Deserialize, Serialize};

pub mod bounds;
mod lines;
mod text;
pub use bounds::*;
pub use lines::{Line, LineRequest, Lines};
pub use text::{Actor, Reason, Reference, blank_is_absent};

/// What an account may do.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema, sqlx::Type,
)]
#[serde(rename_all = "UPPERCASE")]
#[sqlx(type_name = "user_role", rename_all = "UPPERCASE")]
pub enum Role {
    Client,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Client => "CLIENT",
            Role::Admin => "ADMIN",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "CLIENT" => Ok(Role::Client),
            "ADMIN" => Ok(Role::Admin),
            other => Err(format!("unknown role {other:?}")),
        }
    }
}

/// Where an order stands in its lifecycle.
///
/// ```text
/// PENDING ──reserved──▶ CONFIRMED ──paid──▶ PAID ──▶ PARTIALLY_SHIPPED ──▶ SHIPPED ──▶ DELIVERED
///    │                      │                 │ └──────────────────────────────▲
///    └──▶ REJECTED          └──▶ CANCELLED ◀──┘
/// ```
///
/// `PARTIALLY_SHIPPED` and `SHIPPED` after it are derived from the lines: some quantities
/// fulfilled and some left, then nothing left (fulfilled or cancelled).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema, sqlx::Type,
)]
#[serde(rename_all = "UPPERCASE")]
#[sqlx(type_name = "order_status", rename_all = "UPPERCASE")]
pub enum OrderStatus {
    Pending,
    Confirmed,
    Rejected,
    Paid,
    #[serde(rename = "PARTIALLY_SHIPPED")]
    #[sqlx(rename = "PARTIALLY_SHIPPED")]
    PartiallyShipped,
    Shipped,
    Delivered,
    Cancelled,
}

impl OrderStatus {
    pub const ALL: [OrderStatus; 8] = [
        OrderStatus::Pending,
        OrderStatus::Confirmed,
        OrderStatus::Rejected,
        OrderStatus::Paid,
        OrderStatus::PartiallyShipped,
        OrderStatus::Shipped,
        OrderStatus::Delivered,
        OrderStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Pending => "PENDING",
            OrderStatus::Confirmed => "CONFIRMED",
            OrderStatus::Rejected => "REJECTED",
            OrderStatus::Paid => "PAID",
            OrderStatus::PartiallyShipped => "PARTIALLY_SHIPPED",
            OrderStatus::Shipped => "SHIPPED",
            OrderStatus::Delivered => "DELIVERED",
            OrderStatus::Cancelled => "CANCELLED",
        }
    }

    /// The statuses a caller may ask an order to move to (staff over HTTP, the transition
    /// command on the bus); the others are set by the system as it records an order and
    /// ships some of its lines.
    pub const STAFF_TARGETS: [OrderStatus; 4] = [
        OrderStatus::Paid,
        OrderStatus::Shipped,
        OrderStatus::Delivered,
        OrderStatus::Cancelled,
    ];

    /// Whether a caller may ask for this status ([`OrderStatus::STAFF_TARGETS`]).
    pub fn is_staff_target(self) -> bool {
        OrderStatus::STAFF_TARGETS.contains(&self)
    }

    /// The transition table: whether `self → to` is a legal move.
    pub fn can_become(self, to: OrderStatus) -> bool {
        use OrderStatus::*;
        matches!(
            (self, to),
            (Pending, Confirmed)
                | (Pending, Rejected)
                | (Confirmed, Paid)
                | (Confirmed, Cancelled)
                | (Paid, Shipped)
                | (Paid, PartiallyShipped)
                | (PartiallyShipped, Shipped)
                | (Paid, Cancelled)
                | (Shipped, Delivered)
        )
    }

    /// The placement's outcome is in: the order is recorded with the outcome of reserving its
    /// stock.
    pub fn is_recorded(self) -> bool {
        self != OrderStatus::Pending
    }

    /// No transition leaves this status.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            OrderStatus::Rejected | OrderStatus::Cancelled | OrderStatus::Delivered
        )
    }

    /// Statuses whose stock is held by the order (reserved, or committed once shipped).
    pub fn holds_stock(self) -> bool {
        matches!(
            self,
            OrderStatus::Confirmed
                | OrderStatus::Paid
                | OrderStatus::PartiallyShipped
                | OrderStatus::Shipped
                | OrderStatus::Delivered
        )
    }
}

impl std::fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for OrderStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        OrderStatus::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| format!("unknown order status {s:?}"))
    }
}

/// Where an order's hold on a product's stock stands: `Reserved` at placement, then
/// `Committed` (a sale, at SHIPPED) or `Released` (back to available stock, on CANCELLED),
/// each once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, sqlx::Type)]
#[serde(rename_all = "lowercase")]
#[sqlx(type_name = "reservation_state", rename_all = "lowercase")]
pub enum ReservationState {
    Reserved,
    Committed,
    Released,
}

/// Where one shipment of an order stands: on its way, then delivered (once).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema, sqlx::Type,
)]
#[serde(rename_all = "UPPERCASE")]
#[sqlx(type_name = "fulfilment_status", rename_all = "UPPERCASE")]
pub enum FulfilmentStatus {
    Shipped,
    Delivered,
}

/// Where a return stands: `Requested` by the customer or staff, then once `Received` (its
/// lines restocked or written off, its value refunded), `Rejected` by staff, or `Cancelled`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema, sqlx::Type,
)]
#[serde(rename_all = "UPPERCASE")]
#[sqlx(type_name = "return_status", rename_all = "UPPERCASE")]
pub enum ReturnStatus {
    Requested,
    Received,
    Rejected,
    Cancelled,
}

/// What a payment system reported.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema, sqlx::Type,
)]
#[serde(rename_all = "lowercase")]
#[sqlx(type_name = "payment_kind", rename_all = "lowercase")]
pub enum PaymentKind {
    Succeeded,
    Failed,
}

/// What was done with a payment: `Applied` moved the order; `RefundRequired` is money to
/// return (wrong amount, order no longer payable, paid twice); `Ignored` needed nothing (a
/// failure for an order no longer waiting for payment).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema, sqlx::Type,
)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "payment_outcome", rename_all = "snake_case")]
pub enum PaymentOutcome {
    Applied,
    RefundRequired,
    Ignored,
}

/// Where a refund stands: `Requested` of the payment system, then `Succeeded` (the money went
/// back) or `Failed` (it did not; the amount counts as paid again), each once; or `Refused` by
/// the order worker (more than is left to refund, nothing captured), never asked of the
/// payment system.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema, sqlx::Type,
)]
#[serde(rename_all = "UPPERCASE")]
#[sqlx(type_name = "refund_status", rename_all = "UPPERCASE")]
pub enum RefundStatus {
    Requested,
    Succeeded,
    Failed,
    Refused,
}

/// Where a webhook delivery stands: `Pending` while attempts are due, then `Succeeded` (a 2xx
/// answer) or `Failed` (its schedule ran out, or its endpoint was disabled); a retry or a
/// replay makes it `Pending` again.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema, sqlx::Type,
)]
#[serde(rename_all = "UPPERCASE")]
#[sqlx(type_name = "webhook_delivery_status", rename_all = "UPPERCASE")]
pub enum WebhookDeliveryStatus {
    Pending,
    Succeeded,
    Failed,
}

impl WebhookDeliveryStatus {
    /// The `outcome` label of the delivery metrics.
    pub fn label(self) -> &'static str {
        match self {
            WebhookDeliveryStatus::Pending => "retrying",
            WebhookDeliveryStatus::Succeeded => "succeeded",
            WebhookDeliveryStatus::Failed => "failed",
        }
    }
}

/// Where an order's money stands, beside its lifecycle: derived from what was captured and
/// what was given back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PaymentStatus {
    Unpaid,
    Paid,
    PartiallyRefunded,
    Refunded,
}

impl RefundStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RefundStatus::Requested => "REQUESTED",
            RefundStatus::Succeeded => "SUCCEEDED",
            RefundStatus::Failed => "FAILED",
            RefundStatus::Refused => "REFUSED",
        }
    }
}

impl PaymentStatus {
    /// The status of an order that captured `paid` and gave back `refunded` (minor units).
    pub fn of(paid: i64, refunded: i64) -> Self {
        match (paid, refunded) {
            (p, _) if p <= 0 => PaymentStatus::Unpaid,
            (_, r) if r <= 0 => PaymentStatus::Paid,
            (p, r) if r < p => PaymentStatus::PartiallyRefunded,
            _ => PaymentStatus::Refunded,
        }
    }
}

/// How a rejection for the bound on unpaid orders per account (`MAX_UNPAID_ORDERS_PER_USER`)
/// starts: the inventory worker writes it, the api answers such an order 429.
pub const UNPAID_LIMIT_REJECTION: &str = "too many unpaid orders";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lifecycle_allows_only_the_designed_moves() {
        use OrderStatus::*;
        let legal = [
            (Pending, Confirmed),
            (Pending, Rejected),
            (Confirmed, Paid),
            (Confirmed, Cancelled),
            (Paid, Shipped),
            (Paid, PartiallyShipped),
            (PartiallyShipped, Shipped),
            (Paid, Cancelled),
            (Shipped, Delivered),
        ];
        for from in OrderStatus::ALL {
            for to in OrderStatus::ALL {
                assert_eq!(
                    from.can_become(to),
                    legal.contains(&(from, to)),
                    "{from} -> {to}"
                );
            }
        }
    }

    #[test]
    fn the_payment_status_follows_the_money() {
        assert_eq!(PaymentStatus::of(0, 0), PaymentStatus::Unpaid);
        assert_eq!(PaymentStatus::of(1000, 0), PaymentStatus::Paid);
        assert_eq!(PaymentStatus::of(1000, 1), PaymentStatus::PartiallyRefunded);
        assert_eq!(PaymentStatus::of(1000, 1000), PaymentStatus::Refunded);
    }

    #[test]
    fn only_the_statuses_staff_may_ask_for_are_staff_targets() {
        let targets: Vec<OrderStatus> = OrderStatus::ALL
            .into_iter()
            .filter(|s| s.is_staff_target())
            .collect();
        assert_eq!(targets, OrderStatus::STAFF_TARGETS);
        for system in [
            OrderStatus::Pending,
            OrderStatus::Confirmed,
            OrderStatus::Rejected,
            OrderStatus::PartiallyShipped,
        ] {
            assert!(!system.is_staff_target(), "{system}");
        }
    }

    #[test]
    fn statuses_round_trip_through_text() {
        for s in OrderStatus::ALL {
            assert_eq!(s.as_str().parse::<OrderStatus>(), Ok(s));
        }
        assert!("paid".parse::<OrderStatus>().is_err());
    }
}
