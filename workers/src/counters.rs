//! Order counters, named for dashboards: `orders_confirmed_total`,
//! `orders_rejected_total`, `orders_cancelled_total` (every path, expiry included; expiries
//! alone are also `orders_expired_total`), `orders_paid_total`, `orders_shipped_total`,
//! `orders_partially_shipped_total`, `orders_delivered_total`, besides `order_transitions_total{to}`.

use common::domain::OrderStatus;

/// Counts one applied transition into `to`.
pub fn record_transition(to: OrderStatus) {
    let label = to.as_str().to_lowercase();
    metrics::counter!("order_transitions_total", "to" => label).increment(1);
    let named = match to {
        OrderStatus::Confirmed => "orders_confirmed_total",
        OrderStatus::Rejected => "orders_rejected_total",
        OrderStatus::Cancelled => "orders_cancelled_total",
        OrderStatus::Paid => "orders_paid_total",
        OrderStatus::PartiallyShipped => "orders_partially_shipped_total",
        OrderStatus::Shipped => "orders_shipped_total",
        OrderStatus::Delivered => "orders_delivered_total",
        OrderStatus::Pending => return,
    };
    metrics::counter!(named).increment(1);
}
