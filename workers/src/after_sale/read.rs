//! Fulfilments and returns read back inside a step's transaction (or after it, for a
//! redelivery), as the events that announce their changes.

use crate::consumer::Failure;
use chrono::{DateTime, Utc};
use common::domain::{FulfilmentStatus, OrderStatus, ReturnStatus};
use common::messages::{Fulfilment, FulfilmentChanged, PartLine, Return, ReturnChanged};
use common::shipping::Shipment;
use sqlx::PgConnection;
use uuid::Uuid;

/// The change a fulfilment's latest step made: shipped, or delivered.
pub async fn fulfilment_changed(
    conn: &mut PgConnection,
    id: Uuid,
) -> Result<Option<FulfilmentChanged>, Failure> {
    let Some(f) = sqlx::query!(
        r#"SELECT f.order_id, o.user_id, o.status AS "order_status: OrderStatus",
                  f.status AS "status: FulfilmentStatus", f.carrier, f.tracking_number,
                  f.tracking_url, f.shipped_at, f.delivered_at,
                  coalesce(f.delivered_by, f.actor) AS actor,
                  coalesce(f.delivered_entry_id, f.shipped_entry_id) AS entry_id,
                  ARRAY(SELECT l.product_id FROM fulfilment_lines l WHERE l.fulfilment_id = f.id
                         ORDER BY l.product_id) AS "products!",
                  ARRAY(SELECT l.quantity FROM fulfilment_lines l WHERE l.fulfilment_id = f.id
                         ORDER BY l.product_id) AS "quantities!"
             FROM fulfilments f JOIN orders o ON o.id = f.order_id
            WHERE f.id = $1"#,
        id,
    )
    .fetch_optional(&mut *conn)
    .await?
    else {
        return Ok(None);
    };
    let (Some(entry_id), Some(actor)) = (f.entry_id, f.actor) else {
        // Made by a move to SHIPPED or DELIVERED: its status event tells it.
        return Ok(None);
    };
    let shipment = match (f.carrier, f.tracking_number) {
        (Some(carrier), Some(tracking_number)) => Some(Shipment {
            carrier,
            tracking_number,
            tracking_url: f.tracking_url,
        }),
        _ => None,
    };
    let at = f.delivered_at.unwrap_or(f.shipped_at);
    Ok(Some(FulfilmentChanged {
        order_id: f.order_id,
        user_id: f.user_id,
        entry_id,
        at,
        actor,
        fulfilment: Fulfilment {
            id,
            lines: lines(f.products, f.quantities, None),
            shipment,
            status: f.status,
            shipped_at: f.shipped_at,
            delivered_at: f.delivered_at,
        },
        order_status: f.order_status,
    }))
}

/// The change a return's latest step made: requested, received, rejected or cancelled.
pub async fn return_changed(
    conn: &mut PgConnection,
    id: Uuid,
) -> Result<Option<ReturnChanged>, Failure> {
    let Some(r) = sqlx::query!(
        r#"SELECT r.order_id, o.user_id, r.status AS "status: ReturnStatus", r.reason,
                  r.requested_at, r.decided_at, r.rejection_reason, r.refund_id,
                  coalesce(r.decided_by, r.actor) AS "actor!",
                  coalesce(r.decided_entry_id, r.requested_entry_id) AS "entry_id!",
                  ARRAY(SELECT l.product_id FROM return_lines l WHERE l.return_id = r.id
                         ORDER BY l.product_id) AS "products!",
                  ARRAY(SELECT l.quantity FROM return_lines l WHERE l.return_id = r.id
                         ORDER BY l.product_id) AS "quantities!",
                  ARRAY(SELECT l.restock FROM return_lines l WHERE l.return_id = r.id
                         ORDER BY l.product_id) AS "restock!: Vec<Option<bool>>"
             FROM returns r JOIN orders o ON o.id = r.order_id
            WHERE r.id = $1"#,
        id,
    )
    .fetch_optional(&mut *conn)
    .await?
    else {
        return Ok(None);
    };
    Ok(Some(ReturnChanged {
        order_id: r.order_id,
        user_id: r.user_id,
        entry_id: r.entry_id,
        at: at(r.decided_at, r.requested_at),
        actor: r.actor,
        return_: Return {
            id,
            lines: lines(r.products, r.quantities, Some(r.restock)),
            reason: r.reason,
            status: r.status,
            requested_at: r.requested_at,
            decided_at: r.decided_at,
            rejection_reason: r.rejection_reason,
            refund_id: r.refund_id,
        },
    }))
}

fn at(decided: Option<DateTime<Utc>>, requested: DateTime<Utc>) -> DateTime<Utc> {
    decided.unwrap_or(requested)
}

fn lines(
    products: Vec<Uuid>,
    quantities: Vec<i32>,
    restock: Option<Vec<Option<bool>>>,
) -> Vec<PartLine> {
    let restock = restock.unwrap_or_default();
    products
        .into_iter()
        .zip(quantities)
        .enumerate()
        .map(|(i, (product_id, quantity))| PartLine {
            product_id,
            quantity,
            restock: restock.get(i).copied().flatten(),
        })
        .collect()
}
