//! The order worker: records placed orders with a snapshot of their lines, asks the inventory
//! worker to reserve them, and applies the outcome to the order's status and timeline.

use crate::Context;
use crate::consumer::{Delivery, Failure};
use chrono::{DateTime, Utc};
use common::domain::OrderStatus;
use common::messages::{
    LineRequest, OrderStatusChanged, PlaceOrder, ReserveStock, StockRejected, StockReserved,
    normalise_lines,
};
use common::messaging::decode;
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

/// Currency of an order none of whose products exist (it is rejected anyway).
const FALLBACK_CURRENCY: &str = "USD";

#[derive(sqlx::FromRow)]
struct ProductSnapshot {
    id: Uuid,
    name: String,
    price: i64,
    currency: String,
}

/// `orders.cmd.place`. Idempotent: the order id is the key; a redelivered command finds the
/// order recorded and only sends its follow-up again (same message id, dropped if a duplicate).
pub async fn place(ctx: Context, delivery: Delivery) -> Result<(), Failure> {
    let envelope = decode::<PlaceOrder>(&delivery.payload)?;
    let command = envelope.data;
    let lines = normalise_lines(&command.items).map_err(|errors| {
        Failure::permanent(format!(
            "invalid order: {}",
            errors
                .iter()
                .map(|(field, message)| format!("{field}: {message}"))
                .collect::<Vec<_>>()
                .join("; ")
        ))
    })?;

    let mut tx = ctx.db.begin().await?;
    let status: Option<String> =
        sqlx::query_scalar("SELECT status FROM orders WHERE id = $1 FOR UPDATE")
            .bind(command.order_id)
            .fetch_optional(&mut *tx)
            .await?;
    let (status, created) = match status {
        Some(status) => (parse_status(&status)?, None),
        None => {
            let user_exists: bool =
                sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM users WHERE id = $1)")
                    .bind(command.user_id)
                    .fetch_one(&mut *tx)
                    .await?;
            if !user_exists {
                return Err(Failure::permanent(format!(
                    "unknown user {}",
                    command.user_id
                )));
            }
            match record_order(&mut tx, &command, &lines, &envelope.correlation_id).await? {
                Some(at) => (OrderStatus::Pending, Some(at)),
                // Recorded concurrently by another delivery of the same command.
                None => (OrderStatus::Pending, None),
            }
        }
    };
    tx.commit().await?;

    if status != OrderStatus::Pending {
        return Ok(());
    }
    let reserve = ReserveStock {
        order_id: command.order_id,
        items: lines,
    };
    let correlation = envelope.correlation_id.as_str();
    match created {
        Some(at) => {
            let placed = OrderStatusChanged {
                order_id: command.order_id,
                user_id: command.user_id,
                from: None,
                to: OrderStatus::Pending,
                at,
                actor: format!("user:{}", command.user_id),
                reason: Some("placed".into()),
            };
            // Both acknowledged before the command is acked; sent together to save a round trip.
            let (a, b) = tokio::join!(
                ctx.bus.publish(reserve, correlation),
                ctx.bus.publish(placed, correlation)
            );
            a?;
            b?;
        }
        None => {
            ctx.bus.publish(reserve, correlation).await?;
        }
    }
    Ok(())
}

/// Inserts the order, its lines (snapshot of name and price) and its first timeline entry.
/// Returns when it was recorded, or `None` if it already existed.
async fn record_order(
    tx: &mut Transaction<'_, Postgres>,
    command: &PlaceOrder,
    lines: &[LineRequest],
    correlation_id: &str,
) -> Result<Option<DateTime<Utc>>, Failure> {
    let ids: Vec<Uuid> = lines.iter().map(|l| l.product_id).collect();
    let products: Vec<ProductSnapshot> =
        sqlx::query_as("SELECT id, name, price, currency FROM products WHERE id = ANY($1)")
            .bind(&ids)
            .fetch_all(&mut **tx)
            .await?;
    let currency = products
        .first()
        .map(|p| p.currency.clone())
        .unwrap_or_else(|| FALLBACK_CURRENCY.to_owned());

    let mut names = Vec::with_capacity(lines.len());
    let mut prices = Vec::with_capacity(lines.len());
    let mut subtotals = Vec::with_capacity(lines.len());
    let mut total: i64 = 0;
    for line in lines {
        match products.iter().find(|p| p.id == line.product_id) {
            Some(p) => {
                let subtotal = p
                    .price
                    .checked_mul(i64::from(line.quantity))
                    .ok_or_else(|| Failure::permanent("order total overflows"))?;
                total = total
                    .checked_add(subtotal)
                    .ok_or_else(|| Failure::permanent("order total overflows"))?;
                names.push(Some(p.name.clone()));
                prices.push(Some(p.price));
                subtotals.push(Some(subtotal));
            }
            None => {
                names.push(None);
                prices.push(None);
                subtotals.push(None);
            }
        }
    }

    let created_at: Option<DateTime<Utc>> = sqlx::query_scalar(
        r#"
        INSERT INTO orders (id, user_id, status, total, currency, correlation_id)
        VALUES ($1, $2, 'PENDING', $3, $4, $5)
        ON CONFLICT (id) DO NOTHING
        RETURNING created_at
        "#,
    )
    .bind(command.order_id)
    .bind(command.user_id)
    .bind(total)
    .bind(&currency)
    .bind(correlation_id)
    .fetch_optional(&mut **tx)
    .await?;
    let Some(created_at) = created_at else {
        return Ok(None);
    };

    let line_nos: Vec<i16> = (0..lines.len())
        .map(|i| i16::try_from(i).unwrap_or(i16::MAX))
        .collect();
    let quantities: Vec<i32> = lines.iter().map(|l| l.quantity).collect();
    sqlx::query(
        r#"
        INSERT INTO order_items (order_id, line_no, product_id, name, unit_price, quantity, subtotal)
        SELECT $1, * FROM unnest($2::int2[], $3::uuid[], $4::text[], $5::int8[], $6::int4[], $7::int8[])
        "#,
    )
    .bind(command.order_id)
    .bind(&line_nos)
    .bind(&ids)
    .bind(&names)
    .bind(&prices)
    .bind(&quantities)
    .bind(&subtotals)
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "INSERT INTO order_events (order_id, from_status, to_status, at, actor, reason)
         VALUES ($1, NULL, 'PENDING', $2, $3, 'placed')",
    )
    .bind(command.order_id)
    .bind(created_at)
    .bind(format!("user:{}", command.user_id))
    .execute(&mut **tx)
    .await?;
    Ok(Some(created_at))
}

/// `inventory.evt.reserved`: PENDING → CONFIRMED.
pub async fn on_reserved(ctx: Context, delivery: Delivery) -> Result<(), Failure> {
    let envelope = decode::<StockReserved>(&delivery.payload)?;
    let change = Transition {
        order_id: envelope.data.order_id,
        from: OrderStatus::Pending,
        to: OrderStatus::Confirmed,
        actor: "system:inventory",
        reason: Some("stock reserved".into()),
    };
    apply(&ctx, change, &envelope.correlation_id).await
}

/// `inventory.evt.rejected`: PENDING → REJECTED, with the reason naming the lines.
pub async fn on_rejected(ctx: Context, delivery: Delivery) -> Result<(), Failure> {
    let envelope = decode::<StockRejected>(&delivery.payload)?;
    let change = Transition {
        order_id: envelope.data.order_id,
        from: OrderStatus::Pending,
        to: OrderStatus::Rejected,
        actor: "system:inventory",
        reason: Some(envelope.data.reason),
    };
    apply(&ctx, change, &envelope.correlation_id).await
}

/// A guarded status change.
pub struct Transition {
    pub order_id: Uuid,
    pub from: OrderStatus,
    pub to: OrderStatus,
    pub actor: &'static str,
    pub reason: Option<String>,
}

/// Applies a transition once and publishes `orders.evt.status_changed`. Idempotent: the update
/// is guarded by the current status, and a redelivery that finds the transition already made
/// publishes the same event again (same message id), in case the first publish was lost.
async fn apply(ctx: &Context, change: Transition, correlation_id: &str) -> Result<(), Failure> {
    let mut tx = ctx.db.begin().await?;
    let updated: Option<(Uuid, DateTime<Utc>)> = sqlx::query_as(
        r#"
        UPDATE orders
           SET status = $3,
               rejection_reason = CASE WHEN $3 = 'REJECTED' THEN $4 ELSE rejection_reason END,
               reserved_at = CASE WHEN $3 = 'CONFIRMED' THEN now() ELSE reserved_at END
         WHERE id = $1 AND status = $2
        RETURNING user_id, clock_timestamp()
        "#,
    )
    .bind(change.order_id)
    .bind(change.from.as_str())
    .bind(change.to.as_str())
    .bind(change.reason.as_deref())
    .fetch_optional(&mut *tx)
    .await?;

    let event = match updated {
        Some((user_id, at)) => {
            sqlx::query(
                "INSERT INTO order_events (order_id, from_status, to_status, at, actor, reason)
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(change.order_id)
            .bind(change.from.as_str())
            .bind(change.to.as_str())
            .bind(at)
            .bind(change.actor)
            .bind(change.reason.as_deref())
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            OrderStatusChanged {
                order_id: change.order_id,
                user_id,
                from: Some(change.from),
                to: change.to,
                at,
                actor: change.actor.to_owned(),
                reason: change.reason,
            }
        }
        None => {
            // Already applied (a redelivery), or not applicable: find out which.
            let recorded: Option<(Uuid, DateTime<Utc>, String, Option<String>)> = sqlx::query_as(
                "SELECT o.user_id, e.at, e.actor, e.reason
                   FROM orders o JOIN order_events e ON e.order_id = o.id
                  WHERE o.id = $1 AND e.to_status = $2 AND e.from_status = $3",
            )
            .bind(change.order_id)
            .bind(change.to.as_str())
            .bind(change.from.as_str())
            .fetch_optional(&mut *tx)
            .await?;
            tx.commit().await?;
            match recorded {
                Some((user_id, at, actor, reason)) => OrderStatusChanged {
                    order_id: change.order_id,
                    user_id,
                    from: Some(change.from),
                    to: change.to,
                    at,
                    actor,
                    reason,
                },
                None => return Err(not_applicable(ctx, &change).await),
            }
        }
    };
    ctx.bus.publish(event, correlation_id).await?;
    Ok(())
}

/// Explains why a transition could not apply: an unknown order is permanent; an order in
/// another status means the event is stale or contradicts the lifecycle (also permanent).
async fn not_applicable(ctx: &Context, change: &Transition) -> Failure {
    let status: Result<Option<String>, _> =
        sqlx::query_scalar("SELECT status FROM orders WHERE id = $1")
            .bind(change.order_id)
            .fetch_optional(&ctx.db)
            .await;
    match status {
        Err(e) => Failure::from(e),
        Ok(None) => Failure::permanent(format!("unknown order {}", change.order_id)),
        Ok(Some(status)) => Failure::permanent(format!(
            "order {} is {status}; cannot move {} -> {}",
            change.order_id, change.from, change.to
        )),
    }
}

fn parse_status(raw: &str) -> Result<OrderStatus, Failure> {
    raw.parse()
        .map_err(|e: String| Failure::Transient(anyhow::anyhow!(e)))
}
