//! The inventory worker: reserves every line of an order or none, many orders per transaction.

use crate::Context;
use crate::batch::Outcomes;
use crate::consumer::{Delivery, Failure};
use common::messages::{
    CommitStock, LineRequest, ReleaseStock, ReserveStock, StockRejected, StockReserved,
    normalise_lines,
};
use common::messaging::decode;
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

#[derive(sqlx::FromRow)]
struct LockedProduct {
    id: Uuid,
    name: String,
    stock: i32,
    archived: bool,
}

/// A reserve command, decoded and checked.
struct Reserving {
    order_id: Uuid,
    lines: Vec<LineRequest>,
    correlation_id: String,
}

fn parse_reserve(delivery: &Delivery) -> Result<Reserving, Failure> {
    let envelope = decode::<ReserveStock>(&delivery.payload)?;
    let lines = normalise_lines(&envelope.data.items)
        .map_err(|_| Failure::permanent("invalid reservation: bad lines"))?;
    Ok(Reserving {
        order_id: envelope.data.order_id,
        lines,
        correlation_id: envelope.correlation_id,
    })
}

/// `inventory.cmd.reserve`: see [`reserve_many`].
pub async fn reserve(ctx: Context, delivery: Delivery) -> Result<(), Failure> {
    reserve_many(ctx, vec![delivery])
        .await
        .pop()
        .unwrap_or_else(|| Err(Failure::Transient(anyhow::anyhow!("no outcome"))))
}

/// `inventory.cmd.reserve`, for the commands received together. Each order gets all its
/// lines or none: the products are locked in id order (so concurrent batches cannot deadlock),
/// the orders are decided one after the other in delivery order against the stock left by
/// those before them, then every product is decremented once by a guarded update (so stock
/// can never go below zero). Idempotent: the decision row is written in the same
/// transaction, and a redelivered command republishes that decision instead of reserving
/// again. If the batch's transaction fails, each order is decided in its own.
pub async fn reserve_many(ctx: Context, deliveries: Vec<Delivery>) -> Vec<Result<(), Failure>> {
    let mut outcomes = Outcomes::new(deliveries.len());
    // One request per order; a command delivered twice gets the same decision.
    let mut requests: Vec<(Reserving, Vec<usize>)> = Vec::with_capacity(deliveries.len());
    for (i, delivery) in deliveries.iter().enumerate() {
        match parse_reserve(delivery) {
            Err(failure) => outcomes.set(i, Err(failure)),
            Ok(r) => match requests.iter_mut().find(|(q, _)| q.order_id == r.order_id) {
                Some((_, members)) => members.push(i),
                None => requests.push((r, vec![i])),
            },
        }
    }
    let all: Vec<&Reserving> = requests.iter().map(|(r, _)| r).collect();
    let decided = match all.is_empty() {
        true => Ok(Vec::new()),
        false => decide(&ctx, &all).await,
    };
    let decisions: Vec<Result<Option<String>, Failure>> = match decided {
        Ok(decisions) => decisions.into_iter().map(Ok).collect(),
        Err(e) if all.len() > 1 => {
            tracing::warn!(error = %e, size = all.len(), "reserving a batch failed; reserving its orders one by one");
            futures::future::join_all(all.iter().map(|r| async {
                decide(&ctx, &[*r])
                    .await
                    .and_then(|mut d| d.pop().ok_or_else(|| no_decision(r.order_id)))
            }))
            .await
        }
        Err(e) => vec![Err(e)],
    };

    // The first delivery of each order publishes its decision; copies share the outcome.
    let steps = requests
        .iter()
        .zip(decisions)
        .filter_map(|((request, members), decision)| {
            let first = *members.first()?;
            let ctx = &ctx;
            Some((first, async move {
                publish_decision(ctx, request, decision?).await
            }))
        });
    outcomes.settle_each(&deliveries, steps).await;
    for (_, members) in &requests {
        if let Some((&first, copies)) = members.split_first() {
            outcomes.copy(first, copies);
        }
    }
    outcomes
        .finish_with(&deliveries, |_| async {
            Err(Failure::Transient(anyhow::anyhow!(
                "reservation left undecided"
            )))
        })
        .await
}

fn no_decision(order_id: Uuid) -> Failure {
    Failure::Transient(anyhow::anyhow!("no decision for order {order_id}"))
}

async fn publish_decision(
    ctx: &Context,
    request: &Reserving,
    rejection: Option<String>,
) -> Result<(), Failure> {
    let order_id = request.order_id;
    let correlation = request.correlation_id.as_str();
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

/// Decides the requests in one transaction: per request, `None` if its stock is reserved,
/// or the reason it is rejected. A request decided before keeps its recorded decision.
async fn decide(ctx: &Context, requests: &[&Reserving]) -> Result<Vec<Option<String>>, Failure> {
    let ids: Vec<Uuid> = requests.iter().map(|r| r.order_id).collect();
    let mut tx = ctx.db.begin().await?;
    // The insert also serialises concurrent deliveries of the same command on its key.
    let first: HashSet<Uuid> = sqlx::query_scalar(
        "INSERT INTO inventory_decisions (order_id, outcome)
         SELECT unnest($1::uuid[]), 'reserved'
         ON CONFLICT (order_id) DO NOTHING
         RETURNING order_id",
    )
    .bind(&ids)
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .collect();
    let mut decided: HashMap<Uuid, Option<String>> = HashMap::with_capacity(ids.len());
    if first.len() < ids.len() {
        let earlier: Vec<Uuid> = ids
            .iter()
            .filter(|id| !first.contains(id))
            .copied()
            .collect();
        let recorded: Vec<(Uuid, String, Option<String>)> = sqlx::query_as(
            "SELECT order_id, outcome, reason FROM inventory_decisions WHERE order_id = ANY($1)",
        )
        .bind(&earlier)
        .fetch_all(&mut *tx)
        .await?;
        for (order_id, outcome, reason) in recorded {
            let rejection =
                (outcome == "rejected").then(|| reason.unwrap_or_else(|| "rejected".into()));
            decided.insert(order_id, rejection);
        }
    }

    let new: Vec<&Reserving> = requests
        .iter()
        .filter(|r| first.contains(&r.order_id))
        .copied()
        .collect();
    let mut product_ids: Vec<Uuid> = new
        .iter()
        .flat_map(|r| r.lines.iter().map(|l| l.product_id))
        .collect();
    product_ids.sort_unstable();
    product_ids.dedup();
    let locked: HashMap<Uuid, LockedProduct> = if product_ids.is_empty() {
        HashMap::new()
    } else {
        sqlx::query_as::<_, LockedProduct>(
            "SELECT id, name, stock, archived_at IS NOT NULL AS archived
               FROM products WHERE id = ANY($1) ORDER BY id FOR UPDATE",
        )
        .bind(&product_ids)
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .map(|p| (p.id, p))
        .collect()
    };

    // Stock taken by the orders decided so far in this batch, per product.
    let mut taken: HashMap<Uuid, i32> = HashMap::new();
    let (mut held_orders, mut held_products, mut held_quantities) = (vec![], vec![], vec![]);
    let (mut rejected, mut reasons) = (vec![], vec![]);
    for request in &new {
        let problems: Vec<String> = request
            .lines
            .iter()
            .enumerate()
            .filter_map(|(i, line)| match locked.get(&line.product_id) {
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
                Some(p) => {
                    let available = p.stock - taken.get(&p.id).copied().unwrap_or(0);
                    (available < line.quantity).then(|| {
                        format!(
                            "line {}: product {} ({}): {} requested, {} available",
                            i + 1,
                            p.id,
                            p.name,
                            line.quantity,
                            available
                        )
                    })
                }
            })
            .collect();
        if problems.is_empty() {
            for line in &request.lines {
                *taken.entry(line.product_id).or_default() += line.quantity;
                held_orders.push(request.order_id);
                held_products.push(line.product_id);
                held_quantities.push(line.quantity);
            }
            decided.insert(request.order_id, None);
        } else {
            let reason = problems.join("; ");
            rejected.push(request.order_id);
            reasons.push(reason.clone());
            decided.insert(request.order_id, Some(reason));
        }
    }

    if !taken.is_empty() {
        let (products, quantities): (Vec<Uuid>, Vec<i32>) =
            taken.iter().map(|(p, q)| (*p, *q)).unzip();
        let decremented = sqlx::query(
            r#"
            UPDATE products p SET stock = p.stock - v.quantity
              FROM unnest($1::uuid[], $2::int4[]) AS v(id, quantity)
             WHERE p.id = v.id AND p.stock >= v.quantity
            "#,
        )
        .bind(&products)
        .bind(&quantities)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if decremented != products.len() as u64 {
            // Cannot happen while the rows are locked; refuse to commit a partial reservation.
            return Err(Failure::Transient(anyhow::anyhow!(
                "reserved stock of {decremented} of {} products; retrying",
                products.len()
            )));
        }
        sqlx::query(
            "INSERT INTO reservations (order_id, product_id, quantity)
             SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::int4[])",
        )
        .bind(&held_orders)
        .bind(&held_products)
        .bind(&held_quantities)
        .execute(&mut *tx)
        .await?;
    }
    if !rejected.is_empty() {
        sqlx::query(
            "UPDATE inventory_decisions d SET outcome = 'rejected', reason = v.reason
               FROM unnest($1::uuid[], $2::text[]) AS v(order_id, reason)
              WHERE d.order_id = v.order_id",
        )
        .bind(&rejected)
        .bind(&reasons)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    requests
        .iter()
        .map(|r| {
            decided
                .remove(&r.order_id)
                .ok_or_else(|| no_decision(r.order_id))
        })
        .collect()
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
