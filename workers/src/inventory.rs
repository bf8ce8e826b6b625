//! The inventory worker: reserves every line of an order or none, in one transaction.

use crate::Context;
use crate::consumer::{Delivery, Failure};
use common::messages::{
    CommitStock, ReleaseStock, ReserveStock, StockRejected, StockReserved, normalise_lines,
};
use common::messaging::decode;
use uuid::Uuid;

#[derive(sqlx::FromRow)]
struct LockedProduct {
    id: Uuid,
    name: String,
    stock: i32,
    archived: bool,
}

/// `inventory.cmd.reserve`. All or nothing: rows are locked in product-id order (so concurrent
/// orders cannot deadlock), every line is checked, then every line is decremented by a guarded
/// update (so stock can never go below zero). Idempotent: the decision row is written in the
/// same transaction, and a redelivered command republishes that decision instead of reserving
/// again.
pub async fn reserve(ctx: Context, delivery: Delivery) -> Result<(), Failure> {
    let envelope = decode::<ReserveStock>(&delivery.payload)?;
    let order_id = envelope.data.order_id;
    let lines = normalise_lines(&envelope.data.items)
        .map_err(|_| Failure::permanent("invalid reservation: bad lines"))?;

    let mut tx = ctx.db.begin().await?;
    // The insert also serialises concurrent deliveries of the same command on this key.
    let first = sqlx::query(
        "INSERT INTO inventory_decisions (order_id, outcome) VALUES ($1, 'reserved')
         ON CONFLICT (order_id) DO NOTHING",
    )
    .bind(order_id)
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;

    let rejection: Option<String> = if first {
        let ids: Vec<Uuid> = lines.iter().map(|l| l.product_id).collect();
        let quantities: Vec<i32> = lines.iter().map(|l| l.quantity).collect();
        let locked: Vec<LockedProduct> = sqlx::query_as(
            "SELECT id, name, stock, archived_at IS NOT NULL AS archived
               FROM products WHERE id = ANY($1) ORDER BY id FOR UPDATE",
        )
        .bind(&ids)
        .fetch_all(&mut *tx)
        .await?;

        let problems: Vec<String> = lines
            .iter()
            .enumerate()
            .filter_map(
                |(i, line)| match locked.iter().find(|p| p.id == line.product_id) {
                    None => Some(format!(
                        "line {}: product {} does not exist",
                        i + 1,
                        line.product_id
                    )),
                    Some(p) if p.archived => Some(format!(
                        "line {}: product {} ({}) is no longer sold",
                        i + 1,
                        p.id,
                        p.name
                    )),
                    Some(p) if p.stock < line.quantity => Some(format!(
                        "line {}: product {} ({}): {} requested, {} available",
                        i + 1,
                        p.id,
                        p.name,
                        line.quantity,
                        p.stock
                    )),
                    Some(_) => None,
                },
            )
            .collect();

        if problems.is_empty() {
            let decremented = sqlx::query(
                r#"
                UPDATE products p SET stock = p.stock - v.quantity
                  FROM unnest($1::uuid[], $2::int4[]) AS v(id, quantity)
                 WHERE p.id = v.id AND p.stock >= v.quantity
                "#,
            )
            .bind(&ids)
            .bind(&quantities)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if decremented != lines.len() as u64 {
                // Cannot happen while the rows are locked; refuse to commit a partial reservation.
                return Err(Failure::Transient(anyhow::anyhow!(
                    "reserved {decremented} of {} lines; retrying",
                    lines.len()
                )));
            }
            sqlx::query(
                "INSERT INTO reservations (order_id, product_id, quantity)
                 SELECT $1, * FROM unnest($2::uuid[], $3::int4[])",
            )
            .bind(order_id)
            .bind(&ids)
            .bind(&quantities)
            .execute(&mut *tx)
            .await?;
            None
        } else {
            let reason = problems.join("; ");
            sqlx::query(
                "UPDATE inventory_decisions SET outcome = 'rejected', reason = $2 WHERE order_id = $1",
            )
            .bind(order_id)
            .bind(&reason)
            .execute(&mut *tx)
            .await?;
            Some(reason)
        }
    } else {
        let (outcome, reason): (String, Option<String>) =
            sqlx::query_as("SELECT outcome, reason FROM inventory_decisions WHERE order_id = $1")
                .bind(order_id)
                .fetch_one(&mut *tx)
                .await?;
        (outcome == "rejected").then(|| reason.unwrap_or_else(|| "rejected".into()))
    };
    tx.commit().await?;

    let correlation = envelope.correlation_id.as_str();
    match rejection {
        None => {
            ctx.bus
                .publish(StockReserved { order_id }, correlation)
                .await?
        }
        Some(reason) => {
            ctx.bus
                .publish(StockRejected { order_id, reason }, correlation)
                .await?
        }
    };
    Ok(())
}

/// `inventory.cmd.release`: gives a cancelled order's reserved stock back. Exactly once: only
/// reservations still `reserved` are released (guarded update), so a duplicate or late release
/// finds nothing left to give back, and a committed (shipped) reservation never comes back.
pub async fn release(ctx: Context, delivery: Delivery) -> Result<(), Failure> {
    let envelope = decode::<ReleaseStock>(&delivery.payload)?;
    let order_id = envelope.data.order_id;
    let mut tx = ctx.db.begin().await?;
    // Lock the products first, in id order, as reservations do, so the two cannot deadlock.
    sqlx::query(
        "SELECT p.id FROM products p
          WHERE p.id IN (SELECT product_id FROM reservations WHERE order_id = $1 AND state = 'reserved')
          ORDER BY p.id FOR UPDATE",
    )
    .bind(order_id)
    .execute(&mut *tx)
    .await?;
    let released = sqlx::query(
        r#"
        WITH released AS (
            UPDATE reservations SET state = 'released'
             WHERE order_id = $1 AND state = 'reserved'
            RETURNING product_id, quantity
        )
        UPDATE products p SET stock = p.stock + r.quantity
          FROM released r WHERE p.id = r.product_id
        "#,
    )
    .bind(order_id)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    tx.commit().await?;
    if released > 0 {
        metrics::counter!("stock_released_lines_total").increment(released);
        tracing::info!(%order_id, lines = released, "stock released");
    }
    Ok(())
}

/// `inventory.cmd.commit`: the order shipped; its reservation becomes a sale. Idempotent by
/// the guarded update.
pub async fn commit(ctx: Context, delivery: Delivery) -> Result<(), Failure> {
    let envelope = decode::<CommitStock>(&delivery.payload)?;
    sqlx::query(
        "UPDATE reservations SET state = 'committed' WHERE order_id = $1 AND state = 'reserved'",
    )
    .bind(envelope.data.order_id)
    .execute(&ctx.db)
    .await?;
    Ok(())
}
