//! Request and response shapes of the orders domain.

use chrono::{DateTime, Utc};
use common::domain::{OrderStatus, PaymentKind, PaymentOutcome, PaymentStatus, RefundStatus};
use common::messages::{Fulfilment, LineRequest, Return};
use common::money::{Currency, Money, Quantity};
use common::shipping::{Shipment, ShippingAddress};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// `POST /orders` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"items": [{"product_id": "0192f3c4-5b6a-7c8d-9e0f-1a2b3c4d5e6f", "quantity": 2}],
    "shipping_address": {"name": "Ada Lovelace", "line1": "12 St James's Square", "city": "London",
        "postal_code": "SW1Y 4JH", "country": "GB"}}))]
pub struct PlaceOrderRequest {
    /// 1 to 100 lines; a product listed twice is merged into one line.
    #[schema(min_items = 1, max_items = 100)]
    pub items: Vec<LineRequest>,
    /// Where to ship the order; kept with it as a snapshot. Optional.
    pub shipping_address: Option<ShippingAddress>,
}

/// One line of an order: a snapshot of the product's name and unit price at order time.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct OrderItem {
    pub product_id: Uuid,
    /// `null` only for a product that does not exist (the order is then rejected).
    pub name: Option<String>,
    /// Minor units of the order's currency.
    #[schema(value_type = Option<i64>)]
    pub unit_price: Option<Money>,
    #[schema(value_type = i32)]
    pub quantity: Quantity,
    pub subtotal: Option<i64>,
    /// Shipped so far, in the order's fulfilments.
    #[serde(default)]
    pub fulfilled_quantity: i32,
    /// Cancelled and never to ship (with the order, or what was left of it).
    #[serde(default)]
    pub cancelled_quantity: i32,
    /// Delivered so far.
    #[serde(default)]
    pub delivered_quantity: i32,
    /// Received back by returns.
    #[serde(default)]
    pub returned_quantity: i32,
}

impl OrderItem {
    /// A line as placed: nothing of it shipped, cancelled, delivered or returned yet.
    pub fn placed(
        product_id: Uuid,
        name: Option<String>,
        unit_price: Option<Money>,
        quantity: Quantity,
        subtotal: Option<i64>,
    ) -> Self {
        OrderItem {
            product_id,
            name,
            unit_price,
            quantity,
            subtotal,
            fulfilled_quantity: 0,
            cancelled_quantity: 0,
            delivered_quantity: 0,
            returned_quantity: 0,
        }
    }
}

/// What a timeline entry records.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    /// A status change (`from`, `to`).
    Status,
    /// A change of one of the order's refunds (`refund_id`, `refund_status`, `amount`).
    Refund,
    /// A shipment of some of its quantities, or its delivery (`fulfilment_id`, `status`).
    Fulfilment,
    /// A return requested, received, rejected or cancelled (`return_id`, `status`).
    Return,
}

/// One entry of an order's timeline, oldest first: a status change, or a change of one of its
/// refunds, told apart by `kind`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(untagged)]
pub enum TimelineItem {
    Status(TimelineEntry),
    Refund(RefundTimelineEntry),
    Part(PartTimelineEntry),
}

impl TimelineItem {
    pub fn at(&self) -> DateTime<Utc> {
        match self {
            TimelineItem::Status(e) => e.at,
            TimelineItem::Refund(e) => e.at,
            TimelineItem::Part(e) => e.at,
        }
    }
}

/// A shipment or a return of the order, as it changed.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PartTimelineEntry {
    /// `fulfilment` or `return`.
    pub kind: EntryKind,
    /// The fulfilment's or the return's id.
    pub id: Uuid,
    /// Its status from this change on (`SHIPPED`, `DELIVERED`; `REQUESTED`, `RECEIVED`,
    /// `REJECTED`, `CANCELLED`).
    pub status: String,
    pub at: DateTime<Utc>,
    /// Who made the change; a customer sees staff accounts as `staff`.
    pub actor: String,
    pub reason: Option<String>,
}

/// A refund of the order requested, given back, failed or refused.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RefundTimelineEntry {
    /// Always `refund`.
    pub kind: EntryKind,
    pub refund_id: Uuid,
    /// The refund's status from this change on.
    pub refund_status: RefundStatus,
    /// Minor units.
    #[schema(value_type = i64)]
    pub amount: Money,
    #[schema(value_type = String)]
    pub currency: Currency,
    pub at: DateTime<Utc>,
    /// Who asked for the refund (`user:<id>`, `staff` to a customer), or `system:payments`
    /// for the payment system's answer.
    pub actor: String,
    /// Why it was asked for, why it failed, or why the order worker refused it.
    pub reason: Option<String>,
}

/// One transition of an order.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TimelineEntry {
    /// Always `status`.
    pub kind: EntryKind,
    pub from: Option<OrderStatus>,
    pub to: OrderStatus,
    pub at: DateTime<Utc>,
    /// Who or which system made the change: `user:<id>`, `system:inventory`, …; a customer
    /// sees staff accounts as `staff`.
    pub actor: String,
    pub reason: Option<String>,
}

/// An order with its lines and timeline.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Order {
    pub id: Uuid,
    pub user_id: Uuid,
    pub status: OrderStatus,
    pub items: Vec<OrderItem>,
    /// Minor units, computed by the system: the sum of the lines' subtotals.
    pub total: i64,
    #[schema(value_type = String)]
    pub currency: Currency,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Present when `REJECTED`: what was wrong, line by line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rejection_reason: Option<String>,
    /// Where the order goes, as given at placement; `null` when none was given.
    pub shipping_address: Option<ShippingAddress>,
    /// Carrier and tracking, once shipped with them; `null` before, or when shipped without.
    pub shipment: Option<Shipment>,
    /// Status changes and refund changes, oldest first.
    pub timeline: Vec<TimelineItem>,
    /// Where the order's money stands, beside its lifecycle.
    pub payment_status: PaymentStatus,
    /// Minor units captured by the payments that paid the order.
    pub amount_paid: i64,
    /// Minor units of that money given back by succeeded refunds.
    pub amount_refunded: i64,
    /// Every payment a payment system reported for the order, oldest first.
    pub payments: Vec<OrderPayment>,
    /// Every refund of the order, oldest first.
    pub refunds: Vec<Refund>,
    /// Its shipments, oldest first.
    pub fulfilments: Vec<Fulfilment>,
    /// Its returns, oldest first.
    pub returns: Vec<Return>,
}

/// An order as it is placed: accepted and not recorded yet (`PENDING`), or just recorded;
/// nothing paid, refunded, shipped or returned, and created and changed at the same instant.
pub struct Placed {
    pub id: Uuid,
    pub user_id: Uuid,
    pub status: OrderStatus,
    pub items: Vec<OrderItem>,
    pub total: i64,
    pub currency: Currency,
    pub at: DateTime<Utc>,
    pub rejection_reason: Option<String>,
    pub shipping_address: Option<ShippingAddress>,
    pub timeline: Vec<TimelineItem>,
}

impl From<Placed> for Order {
    fn from(p: Placed) -> Self {
        Order {
            id: p.id,
            user_id: p.user_id,
            status: p.status,
            items: p.items,
            total: p.total,
            currency: p.currency,
            created_at: p.at,
            updated_at: p.at,
            rejection_reason: p.rejection_reason,
            shipping_address: p.shipping_address,
            shipment: None,
            timeline: p.timeline,
            payment_status: PaymentStatus::Unpaid,
            amount_paid: 0,
            amount_refunded: 0,
            payments: Vec::new(),
            refunds: Vec::new(),
            fulfilments: Vec::new(),
            returns: Vec::new(),
        }
    }
}

/// A payment a payment system reported for an order, and what was done with it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct OrderPayment {
    pub provider_reference: String,
    /// `succeeded` or `failed`.
    pub kind: PaymentKind,
    /// Minor units.
    #[schema(value_type = i64)]
    pub amount: Money,
    #[schema(value_type = String)]
    pub currency: Currency,
    /// `applied` (it paid or cancelled the order), `refund_required` (money to give back:
    /// wrong amount, paid twice, paid after cancel) or `ignored`.
    pub outcome: PaymentOutcome,
    pub note: Option<String>,
    pub received_at: DateTime<Utc>,
}

/// A refund of an order's money, or of one of its payments to give back.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Refund {
    pub id: Uuid,
    pub order_id: Uuid,
    /// Minor units.
    #[schema(value_type = i64)]
    pub amount: Money,
    #[schema(value_type = String)]
    pub currency: Currency,
    pub reason: String,
    /// `REQUESTED` of the payment system, then `SUCCEEDED` or `FAILED`; or `REFUSED` by the
    /// order worker (more than was left to refund, nothing captured), never asked for.
    pub status: RefundStatus,
    /// The `refund_required` payment this refund gives back; `null`: the order's captured money.
    pub payment_reference: Option<String>,
    /// Who asked for it: `user:<id>` (`staff` to a customer).
    pub actor: String,
    pub requested_at: DateTime<Utc>,
    /// When the payment system answered; `null` while `REQUESTED`.
    pub settled_at: Option<DateTime<Utc>>,
    /// The payment system's reference of its answer.
    pub provider_reference: Option<String>,
    /// Why the payment system could not make it, once `FAILED`; why the order worker refused
    /// it, when `REFUSED`.
    pub failure_reason: Option<String>,
}

/// `POST /orders/{id}/refunds` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"amount": 1250, "reason": "one mug arrived broken"}))]
pub struct RefundRequest {
    /// Minor units of the order's currency, at least 1.
    #[schema(minimum = 1, maximum = 1_000_000_000_000_i64)]
    pub amount: i64,
    /// 1 to 500 characters.
    #[schema(max_length = 500)]
    pub reason: String,
    /// A payment of the order recorded `refund_required` (see `GET /admin/payments`) to give
    /// back; absent: the refund gives back the order's captured money.
    #[schema(max_length = 200)]
    pub payment_reference: Option<String>,
}

/// Filters and paging of `GET /orders`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListOrdersQuery {
    /// 1 to 100, default 20.
    #[param(example = 20, minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    pub status: Option<OrderStatus>,
    /// Orders created at or after this instant (RFC 3339).
    pub created_from: Option<DateTime<Utc>>,
    /// Orders created before this instant (RFC 3339).
    pub created_to: Option<DateTime<Utc>>,
    /// ADMIN only: one customer's orders.
    pub user_id: Option<Uuid>,
    /// Orders shipping to this country (ISO 3166-1 alpha-2).
    #[param(example = "GB")]
    pub country: Option<String>,
    /// `true`: orders shipped with a tracking number; `false`: orders without one.
    pub has_tracking: Option<bool>,
}

/// `PATCH /orders/{id}/status` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"status": "SHIPPED", "carrier": "UPS", "tracking_number": "1Z999AA10123456784",
    "tracking_url": "https://carrier.example/track/1Z999AA10123456784"}))]
pub struct StatusChangeRequest {
    /// `PAID`, `SHIPPED`, `DELIVERED` or `CANCELLED`.
    pub status: OrderStatus,
    /// Up to 500 characters, recorded in the timeline.
    #[schema(max_length = 500)]
    pub reason: Option<String>,
    /// Only with `SHIPPED`, together with `tracking_number`: who carries the parcel (1 to 100
    /// characters).
    #[schema(max_length = 100)]
    pub carrier: Option<String>,
    /// Only with `SHIPPED`, together with `carrier` (1 to 100 characters).
    #[schema(max_length = 100)]
    pub tracking_number: Option<String>,
    /// Only with `carrier` and `tracking_number`: an `http` or `https` URL (at most 2000
    /// characters).
    #[schema(max_length = 2000)]
    pub tracking_url: Option<String>,
}
