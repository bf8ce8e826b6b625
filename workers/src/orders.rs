//! The order worker: records placed orders with a snapshot of their lines, asks the inventory
//! worker to reserve them, and applies the outcome to the order's status and timeline.

use crate::Context;
use crate::batch::Outcomes;
use crate::consumer::{Delivery, Failure};
use chrono::{DateTime, Utc};
use common::domain::OrderStatus;
use common::messages::{
    CommitStock, LineRequest, OrderStatusChanged, PaymentFailed, PaymentSucceeded, PlaceOrder,
    ReleaseStock, ReserveStock, StockRejected, StockReserved, TransitionOrder, normalise_lines,
};
use common::messaging::{Message, decode};
use sqlx::{Postgres, Transaction};
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

#[derive(sqlx::FromRow)]
struct ProductSnapshot {
    id: Uuid,
    name: String,
    price: i64,
    currency: String,
}

/// A place command, decoded and checked.
struct Placing {
    command: PlaceOrder,
    lines: Vec<LineRequest>,
    correlation_id: String,
}

fn parse_place(delivery: &Delivery) -> Result<Placing, Failure> {
    let envelope = decode::<PlaceOrder>(&delivery.payload)?;
    let lines = normalise_lines(&envelope.data.items).map_err(|errors| {
        Failure::permanent(format!(
            "invalid order: {}",
            errors
                .iter()
                .map(|(field, message)| format!("{field}: {message}"))
                .collect::<Vec<_>>()
                .join("; ")
        ))
    })?;
    Ok(Placing {
        command: envelope.data,
        lines,
        correlation_id: envelope.correlation_id,
    })
}

/// `orders.cmd.place`. Idempotent: the order id is the key; a redelivered command finds the
/// order recorded and only sends its follow-up again (same message id, dropped if a duplicate).
pub async fn place(ctx: Context, delivery: Delivery) -> Result<(), Failure> {
    let placing = parse_place(&delivery)?;
    let command = &placing.command;
    let lines = &placing.lines;

    let mut tx = ctx.db.begin().await?;
    let existing: Option<(String, Uuid)> =
        sqlx::query_as("SELECT status, user_id FROM orders WHERE id = $1 FOR UPDATE")
            .bind(command.order_id)
            .fetch_optional(&mut *tx)
            .await?;
    let (status, created) = match existing {
        Some((status, user_id)) => {
            // A redelivery carries the same content; anything else reuses an order id.
            let recorded: Vec<(Uuid, i32)> = sqlx::query_as(
                "SELECT product_id, quantity FROM order_items WHERE order_id = $1 ORDER BY product_id",
            )
            .bind(command.order_id)
            .fetch_all(&mut *tx)
            .await?;
            let same_lines = recorded.len() == lines.len()
                && recorded
                    .iter()
                    .zip(lines)
                    .all(|((p, q), l)| *p == l.product_id && *q == l.quantity);
            if user_id != command.user_id || !same_lines {
                return Err(Failure::permanent(format!(
                    "order id {} is already used by a different order",
                    command.order_id
                )));
            }
            (parse_status(&status)?, None)
        }
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
            let recorded = record_orders(&mut tx, &[&placing], &ctx.config.store_currency)
                .await?
                .pop();
            match recorded {
                Some(Err(failure)) => return Err(failure),
                Some(Ok(at)) => (OrderStatus::Pending, at),
                // Recorded concurrently by another delivery of the same command.
                None => (OrderStatus::Pending, None),
            }
        }
    };
    tx.commit().await?;

    if status != OrderStatus::Pending {
        return Ok(());
    }
    publish_placed(&ctx, &placing, created).await
}

/// `orders.cmd.place`, many at once: the new orders among them are recorded with one
/// statement in one transaction; a redelivery, an order id seen twice, an unknown user or a
/// failed batch is left to [`place`].
pub async fn place_many(ctx: Context, deliveries: Vec<Delivery>) -> Vec<Result<(), Failure>> {
    let mut outcomes = Outcomes::new(deliveries.len());
    let mut fresh: Vec<(usize, Placing)> = Vec::with_capacity(deliveries.len());
    let mut seen = HashSet::with_capacity(deliveries.len());
    for (i, delivery) in deliveries.iter().enumerate() {
        match parse_place(delivery) {
            Err(failure) => outcomes.set(i, Err(failure)),
            Ok(placing) => {
                if seen.insert(placing.command.order_id) {
                    fresh.push((i, placing));
                }
            }
        }
    }
    if !fresh.is_empty() {
        match record_new_orders(&ctx, &fresh).await {
            Ok(recorded) => {
                let steps = fresh
                    .iter()
                    .zip(recorded)
                    .filter_map(|((i, placing), recorded)| {
                        let recorded = recorded?;
                        let ctx = &ctx;
                        Some((*i, async move {
                            publish_placed(ctx, placing, Some(recorded?)).await
                        }))
                    });
                outcomes.settle_each(&deliveries, steps).await;
            }
            Err(e) => {
                tracing::warn!(error = %e, size = fresh.len(), "recording a batch of orders failed; recording them one by one");
            }
        }
    }
    outcomes
        .finish_with(&deliveries, |d| place(ctx.clone(), d))
        .await
}

/// Records, in one transaction, those of `fresh` that are new orders of known users: per
/// entry, when it was recorded, a permanent failure, or `None` to leave it to [`place`].
async fn record_new_orders(
    ctx: &Context,
    fresh: &[(usize, Placing)],
) -> Result<Vec<Option<Result<Recorded, Failure>>>, Failure> {
    let ids: Vec<Uuid> = fresh.iter().map(|(_, p)| p.command.order_id).collect();
    let user_ids: Vec<Uuid> = fresh.iter().map(|(_, p)| p.command.user_id).collect();
    let mut tx = ctx.db.begin().await?;
    let existing: HashSet<Uuid> = sqlx::query_scalar("SELECT id FROM orders WHERE id = ANY($1)")
        .bind(&ids)
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .collect();
    let users: HashSet<Uuid> = sqlx::query_scalar("SELECT id FROM users WHERE id = ANY($1)")
        .bind(&user_ids)
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .collect();
    let candidates: Vec<(usize, &Placing)> = fresh
        .iter()
        .enumerate()
        .filter(|(_, (_, p))| {
            !existing.contains(&p.command.order_id) && users.contains(&p.command.user_id)
        })
        .map(|(at, (_, p))| (at, p))
        .collect();
    let placings: Vec<&Placing> = candidates.iter().map(|(_, p)| *p).collect();
    let recorded = record_orders(&mut tx, &placings, &ctx.config.store_currency).await?;
    tx.commit().await?;

    let mut out: Vec<Option<Result<Recorded, Failure>>> = (0..fresh.len()).map(|_| None).collect();
    for ((at, _), recorded) in candidates.iter().zip(recorded) {
        if let Some(slot) = out.get_mut(*at) {
            *slot = match recorded {
                Ok(Some(created)) => Some(Ok(created)),
                Ok(None) => None,
                Err(failure) => Some(Err(failure)),
            };
        }
    }
    Ok(out)
}

/// Sends what follows a recorded order: the reservation request, and the `PENDING` event if
/// this delivery recorded it (`created`). Both are acknowledged before the command is acked.
async fn publish_placed(
    ctx: &Context,
    placing: &Placing,
    created: Option<Recorded>,
) -> Result<(), Failure> {
    let command = &placing.command;
    let reserve = ReserveStock {
        order_id: command.order_id,
        items: placing.lines.clone(),
    };
    let correlation = placing.correlation_id.as_str();
    match created {
        Some((at, entry_id)) => {
            let placed = OrderStatusChanged {
                order_id: command.order_id,
                user_id: command.user_id,
                from: None,
                to: OrderStatus::Pending,
                at,
                actor: format!("user:{}", command.user_id),
                reason: Some("placed".into()),
                entry_id: Some(entry_id),
            };
            // Sent together to save a round trip.
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

/// When an order was recorded, and the id of its first timeline entry.
type Recorded = (DateTime<Utc>, i64);

/// Inserts orders, their lines (snapshot of name and price) and their first timeline entries
/// with one statement. Per order: when it was recorded, `None` if it already existed, or a
/// permanent failure (its total overflows).
async fn record_orders(
    tx: &mut Transaction<'_, Postgres>,
    orders: &[&Placing],
    store_currency: &str,
) -> Result<Vec<Result<Option<Recorded>, Failure>>, Failure> {
    let mut product_ids: Vec<Uuid> = orders
        .iter()
        .flat_map(|o| o.lines.iter().map(|l| l.product_id))
        .collect();
    product_ids.sort_unstable();
    product_ids.dedup();
    let products: HashMap<Uuid, ProductSnapshot> = sqlx::query_as::<_, ProductSnapshot>(
        "SELECT id, name, price, currency FROM products WHERE id = ANY($1)",
    )
    .bind(&product_ids)
    .fetch_all(&mut **tx)
    .await?
    .into_iter()
    .map(|p| (p.id, p))
    .collect();

    // Column arrays of the orders and of their lines.
    let mut ids = Vec::with_capacity(orders.len());
    let mut users = Vec::with_capacity(orders.len());
    let mut totals = Vec::with_capacity(orders.len());
    let mut currencies = Vec::with_capacity(orders.len());
    let mut correlations = Vec::with_capacity(orders.len());
    let mut line_orders = Vec::new();
    let mut line_nos: Vec<i16> = Vec::new();
    let mut line_products = Vec::new();
    let mut names: Vec<Option<String>> = Vec::new();
    let mut prices: Vec<Option<i64>> = Vec::new();
    let mut quantities = Vec::new();
    let mut subtotals: Vec<Option<i64>> = Vec::new();
    let mut failures: HashMap<Uuid, Failure> = HashMap::new();

    for order in orders {
        let order_id = order.command.order_id;
        // Each line's product (if it exists) and subtotal, and the order's total.
        let mut priced = Vec::with_capacity(order.lines.len());
        let mut total: Option<i64> = Some(0);
        for line in &order.lines {
            let product = products.get(&line.product_id);
            let subtotal = product.map(|p| p.price.checked_mul(i64::from(line.quantity)));
            total = match subtotal {
                None => total,
                Some(subtotal) => subtotal.and_then(|s| total?.checked_add(s)),
            };
            priced.push((line, product, subtotal.flatten()));
        }
        let Some(total) = total else {
            failures.insert(order_id, Failure::permanent("order total overflows"));
            continue;
        };
        // An order none of whose products exist is rejected anyway.
        let currency = priced
            .iter()
            .find_map(|(_, product, _)| *product)
            .map_or(store_currency, |p| p.currency.as_str());
        ids.push(order_id);
        users.push(order.command.user_id);
        totals.push(total);
        currencies.push(currency.to_owned());
        correlations.push(order.correlation_id.clone());
        for (no, (line, product, subtotal)) in priced.into_iter().enumerate() {
            line_orders.push(order_id);
            line_nos.push(i16::try_from(no).unwrap_or(i16::MAX));
            line_products.push(line.product_id);
            names.push(product.map(|p| p.name.clone()));
            prices.push(product.map(|p| p.price));
            quantities.push(line.quantity);
            subtotals.push(subtotal);
        }
    }

    let inserted: HashMap<Uuid, Recorded> = if ids.is_empty() {
        HashMap::new()
    } else {
        sqlx::query_as::<_, (Uuid, DateTime<Utc>, i64)>(
            r#"
            WITH new_orders AS (
                INSERT INTO orders (id, user_id, status, total, currency, correlation_id)
                SELECT id, user_id, 'PENDING', total, currency, correlation_id
                  FROM unnest($1::uuid[], $2::uuid[], $3::int8[], $4::text[], $5::text[])
                       AS v(id, user_id, total, currency, correlation_id)
                ON CONFLICT (id) DO NOTHING
                RETURNING id, user_id, created_at
            ), new_lines AS (
                INSERT INTO order_items
                       (order_id, line_no, product_id, name, unit_price, quantity, subtotal)
                SELECT l.order_id, l.line_no, l.product_id, l.name, l.unit_price, l.quantity,
                       l.subtotal
                  FROM unnest($6::uuid[], $7::int2[], $8::uuid[], $9::text[], $10::int8[],
                              $11::int4[], $12::int8[])
                       AS l(order_id, line_no, product_id, name, unit_price, quantity, subtotal)
                  JOIN new_orders o ON o.id = l.order_id
            ), placed AS (
                INSERT INTO order_events (order_id, from_status, to_status, at, actor, reason)
                SELECT id, NULL, 'PENDING', created_at, 'user:' || user_id, 'placed'
                  FROM new_orders
                RETURNING order_id, id
            )
            SELECT o.id, o.created_at, p.id FROM new_orders o JOIN placed p ON p.order_id = o.id
            "#,
        )
        .bind(&ids)
        .bind(&users)
        .bind(&totals)
        .bind(&currencies)
        .bind(&correlations)
        .bind(&line_orders)
        .bind(&line_nos)
        .bind(&line_products)
        .bind(&names)
        .bind(&prices)
        .bind(&quantities)
        .bind(&subtotals)
        .fetch_all(&mut **tx)
        .await?
        .into_iter()
        .map(|(id, at, entry_id)| (id, (at, entry_id)))
        .collect()
    };
    Ok(orders
        .iter()
        .map(|o| {
            let id = o.command.order_id;
            match failures.remove(&id) {
                Some(failure) => Err(failure),
                None => Ok(inserted.get(&id).copied()),
            }
        })
        .collect())
}

/// `inventory.evt.reserved` (PENDING → CONFIRMED) or `inventory.evt.rejected` (PENDING →
/// REJECTED, with the reason naming the lines), as a status change.
fn inventory_change(delivery: &Delivery) -> Result<(Change, String), Failure> {
    let kind = common::messaging::peek_type(&delivery.payload).unwrap_or_default();
    if kind == StockRejected::TYPE {
        let envelope = decode::<StockRejected>(&delivery.payload)?;
        let change = Change {
            order_id: envelope.data.order_id,
            to: OrderStatus::Rejected,
            actor: "system:inventory".into(),
            reason: Some(envelope.data.reason),
        };
        return Ok((change, envelope.correlation_id));
    }
    let envelope = decode::<StockReserved>(&delivery.payload)?;
    let change = Change {
        order_id: envelope.data.order_id,
        to: OrderStatus::Confirmed,
        actor: "system:inventory".into(),
        reason: Some("stock reserved".into()),
    };
    Ok((change, envelope.correlation_id))
}

/// `inventory.evt.reserved` / `inventory.evt.rejected`: the inventory worker's decision
/// settles a PENDING order.
pub async fn on_reserved(ctx: Context, delivery: Delivery) -> Result<(), Failure> {
    let (change, correlation_id) = inventory_change(&delivery)?;
    apply(
        &ctx,
        change,
        |current| current == OrderStatus::Pending,
        &correlation_id,
    )
    .await
}

/// Inventory decisions, many at once: the PENDING orders among them move in one transaction;
/// anything else (a redelivery, an unknown order, a failed batch) is left to [`on_reserved`].
pub async fn on_reserved_many(ctx: Context, deliveries: Vec<Delivery>) -> Vec<Result<(), Failure>> {
    let mut outcomes = Outcomes::new(deliveries.len());
    let mut changes: Vec<(usize, Change, String)> = Vec::with_capacity(deliveries.len());
    let mut seen = HashSet::with_capacity(deliveries.len());
    for (i, delivery) in deliveries.iter().enumerate() {
        match inventory_change(delivery) {
            Err(failure) => outcomes.set(i, Err(failure)),
            Ok((change, correlation_id)) => {
                if seen.insert(change.order_id) {
                    changes.push((i, change, correlation_id));
                }
            }
        }
    }
    if !changes.is_empty() {
        match settle_pending(&ctx, &changes).await {
            Ok(events) => {
                let steps = events.into_iter().map(|(i, event, correlation_id)| {
                    (i, publish_with_follow_ups(&ctx, event, correlation_id))
                });
                outcomes.settle_each(&deliveries, steps).await;
            }
            Err(e) => {
                tracing::warn!(error = %e, size = changes.len(), "settling a batch of orders failed; settling them one by one");
            }
        }
    }
    outcomes
        .finish_with(&deliveries, |d| on_reserved(ctx.clone(), d))
        .await
}

/// Applies those of `changes` whose order is PENDING, in one transaction (rows locked in id
/// order); returns their events with the index and correlation id of their message.
async fn settle_pending<'a>(
    ctx: &Context,
    changes: &'a [(usize, Change, String)],
) -> Result<Vec<(usize, OrderStatusChanged, &'a str)>, Failure> {
    let ids: Vec<Uuid> = changes.iter().map(|(_, c, _)| c.order_id).collect();
    let mut tx = ctx.db.begin().await?;
    let pending: HashMap<Uuid, Uuid> = sqlx::query_as::<_, (Uuid, Uuid)>(
        "SELECT id, user_id FROM orders WHERE id = ANY($1) AND status = 'PENDING'
          ORDER BY id FOR UPDATE",
    )
    .bind(&ids)
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .collect();
    let moves: Vec<(usize, Move<'a>, &'a str)> = changes
        .iter()
        .filter_map(|(i, change, correlation_id)| {
            let user_id = *pending.get(&change.order_id)?;
            Some((
                *i,
                Move {
                    change,
                    from: OrderStatus::Pending,
                    user_id,
                },
                correlation_id.as_str(),
            ))
        })
        .collect();
    let events = move_orders(
        &mut tx,
        &moves.iter().map(|(_, m, _)| *m).collect::<Vec<_>>(),
    )
    .await?;
    tx.commit().await?;
    Ok(moves
        .into_iter()
        .zip(events)
        .map(|((i, _, correlation_id), event)| (i, event, correlation_id))
        .collect())
}

/// Applies `change` in its own transaction if the order's current status passes
/// `allowed_from`, then publishes it and its follow-ups. A redelivery finds the change made and
/// publishes again; an unknown order or a move that cannot apply is permanent.
async fn apply(
    ctx: &Context,
    change: Change,
    allowed_from: impl Fn(OrderStatus) -> bool,
    correlation_id: &str,
) -> Result<(), Failure> {
    let mut tx = ctx.db.begin().await?;
    let outcome = transition_in(&mut tx, &change, allowed_from).await?;
    tx.commit().await?;
    match outcome {
        Outcome::Applied(event) | Outcome::AlreadyThere(event) => {
            publish_with_follow_ups(ctx, event, correlation_id).await
        }
        Outcome::Missing => Err(Failure::permanent(format!(
            "unknown order {}",
            change.order_id
        ))),
        Outcome::NotApplicable(current) => Err(Failure::permanent(format!(
            "illegal transition: order {} is {current}, cannot move to {}",
            change.order_id, change.to
        ))),
    }
}

/// `orders.cmd.transition`: a move requested by staff, the expiry sweeper or another system,
/// applied if the lifecycle allows it from the order's current status. An illegal move can
/// never succeed: it is dead-lettered with the current status named.
pub async fn transition(ctx: Context, delivery: Delivery) -> Result<(), Failure> {
    let envelope = decode::<TransitionOrder>(&delivery.payload)?;
    let command = envelope.data;
    if !matches!(
        command.to,
        OrderStatus::Paid | OrderStatus::Shipped | OrderStatus::Delivered | OrderStatus::Cancelled
    ) {
        return Err(Failure::permanent(format!(
            "{} is set by the system, not by a transition command",
            command.to
        )));
    }
    let change = Change {
        order_id: command.order_id,
        to: command.to,
        actor: command.actor,
        reason: command.reason,
    };
    let to = change.to;
    apply(
        &ctx,
        change,
        |current| current.can_become(to),
        &envelope.correlation_id,
    )
    .await
}

/// `payments.evt.succeeded`. The right amount for a CONFIRMED order pays it. Money is never
/// lost: a wrong amount, a second payment, or a payment for an order that is no longer
/// payable (expired, cancelled, rejected) is recorded as `refund_required` and the order is
/// left as it is. A payment that arrives before the order is confirmed is retried with backoff
/// (the confirmation is on its way) until it applies or is dead-lettered.
pub async fn on_payment_succeeded(ctx: Context, delivery: Delivery) -> Result<(), Failure> {
    let envelope = decode::<PaymentSucceeded>(&delivery.payload)?;
    let payment = envelope.data;
    validate_payment(
        payment.amount,
        &payment.currency,
        &payment.provider_reference,
    )?;

    let mut tx = ctx.db.begin().await?;
    if let Some(recorded) = recorded_payment(&mut tx, &payment.provider_reference).await? {
        tx.commit().await?;
        return republish_if_applied(
            &ctx,
            recorded,
            payment.order_id,
            OrderStatus::Paid,
            &envelope.correlation_id,
        )
        .await;
    }
    let order = lock_order(&mut tx, payment.order_id).await?;
    let (outcome, note, event) = match order {
        None
        | Some(OrderDue {
            status: OrderStatus::Pending,
            ..
        }) => {
            return Err(Failure::Transient(anyhow::anyhow!(
                "payment {} for order {} arrived before the order was confirmed",
                payment.provider_reference,
                payment.order_id
            )));
        }
        Some(due) if due.status == OrderStatus::Confirmed => {
            if due.total == payment.amount && due.currency == payment.currency {
                let change = Change {
                    order_id: payment.order_id,
                    to: OrderStatus::Paid,
                    actor: "system:payments".into(),
                    reason: Some(format!("payment {}", payment.provider_reference)),
                };
                match transition_in(&mut tx, &change, |s| s == OrderStatus::Confirmed).await? {
                    Outcome::Applied(event) => ("applied", None, Some(event)),
                    _ => {
                        return Err(Failure::Transient(anyhow::anyhow!(
                            "order changed while paying"
                        )));
                    }
                }
            } else {
                let note = format!(
                    "amount mismatch: paid {} {}, due {} {}",
                    payment.amount, payment.currency, due.total, due.currency
                );
                ("refund_required", Some(note), None)
            }
        }
        Some(due) => (
            "refund_required",
            Some(format!("order is {}, not payable", due.status)),
            None,
        ),
    };
    record_payment(
        &mut tx,
        &payment.provider_reference,
        payment.order_id,
        "succeeded",
        payment.amount,
        &payment.currency,
        outcome,
        note.as_deref(),
    )
    .await?;
    tx.commit().await?;
    if let Some(note) = &note {
        tracing::warn!(order_id = %payment.order_id, reference = %payment.provider_reference, note, "payment needs a refund");
        metrics::counter!("payments_refund_required_total").increment(1);
    }
    match event {
        Some(event) => publish_with_follow_ups(&ctx, event, &envelope.correlation_id).await,
        None => Ok(()),
    }
}

/// `payments.evt.failed`: the order will not be paid; a CONFIRMED order is cancelled and its
/// stock released. A failure for an order not waiting for payment changes nothing.
pub async fn on_payment_failed(ctx: Context, delivery: Delivery) -> Result<(), Failure> {
    let envelope = decode::<PaymentFailed>(&delivery.payload)?;
    let payment = envelope.data;
    validate_payment(
        payment.amount,
        &payment.currency,
        &payment.provider_reference,
    )?;

    let mut tx = ctx.db.begin().await?;
    if let Some(recorded) = recorded_payment(&mut tx, &payment.provider_reference).await? {
        tx.commit().await?;
        return republish_if_applied(
            &ctx,
            recorded,
            payment.order_id,
            OrderStatus::Cancelled,
            &envelope.correlation_id,
        )
        .await;
    }
    let order = lock_order(&mut tx, payment.order_id).await?;
    let (outcome, event) = match order {
        None
        | Some(OrderDue {
            status: OrderStatus::Pending,
            ..
        }) => {
            return Err(Failure::Transient(anyhow::anyhow!(
                "payment failure for order {} arrived before the order was confirmed",
                payment.order_id
            )));
        }
        Some(due) if due.status == OrderStatus::Confirmed => {
            let reason = match &payment.reason {
                Some(r) => format!("payment_failed: {r}"),
                None => "payment_failed".to_owned(),
            };
            let change = Change {
                order_id: payment.order_id,
                to: OrderStatus::Cancelled,
                actor: "system:payments".into(),
                reason: Some(reason),
            };
            match transition_in(&mut tx, &change, |s| s == OrderStatus::Confirmed).await? {
                Outcome::Applied(event) => ("applied", Some(event)),
                _ => {
                    return Err(Failure::Transient(anyhow::anyhow!(
                        "order changed while cancelling"
                    )));
                }
            }
        }
        Some(_) => ("ignored", None),
    };
    record_payment(
        &mut tx,
        &payment.provider_reference,
        payment.order_id,
        "failed",
        payment.amount,
        &payment.currency,
        outcome,
        payment.reason.as_deref(),
    )
    .await?;
    tx.commit().await?;
    match event {
        Some(event) => publish_with_follow_ups(&ctx, event, &envelope.correlation_id).await,
        None => Ok(()),
    }
}

fn validate_payment(amount: i64, currency: &str, reference: &str) -> Result<(), Failure> {
    if amount < 0 {
        return Err(Failure::permanent("payment amount is negative"));
    }
    if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(Failure::permanent(format!(
            "currency {currency:?} is not an ISO 4217 code"
        )));
    }
    if reference.is_empty() || reference.len() > 200 {
        return Err(Failure::permanent(
            "provider_reference must be 1 to 200 characters",
        ));
    }
    Ok(())
}

struct OrderDue {
    status: OrderStatus,
    total: i64,
    currency: String,
}

async fn lock_order(
    tx: &mut Transaction<'_, Postgres>,
    order_id: Uuid,
) -> Result<Option<OrderDue>, Failure> {
    let row: Option<(String, i64, String)> =
        sqlx::query_as("SELECT status, total, currency FROM orders WHERE id = $1 FOR UPDATE")
            .bind(order_id)
            .fetch_optional(&mut **tx)
            .await?;
    row.map(|(status, total, currency)| {
        Ok(OrderDue {
            status: parse_status(&status)?,
            total,
            currency,
        })
    })
    .transpose()
}

async fn recorded_payment(
    tx: &mut Transaction<'_, Postgres>,
    reference: &str,
) -> Result<Option<String>, Failure> {
    Ok(
        sqlx::query_scalar("SELECT outcome FROM payments WHERE provider_reference = $1")
            .bind(reference)
            .fetch_optional(&mut **tx)
            .await?,
    )
}

#[allow(clippy::too_many_arguments)]
async fn record_payment(
    tx: &mut Transaction<'_, Postgres>,
    reference: &str,
    order_id: Uuid,
    kind: &str,
    amount: i64,
    currency: &str,
    outcome: &str,
    note: Option<&str>,
) -> Result<(), Failure> {
    sqlx::query(
        "INSERT INTO payments (provider_reference, order_id, kind, amount, currency, outcome, note)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(reference)
    .bind(order_id)
    .bind(kind)
    .bind(amount)
    .bind(currency)
    .bind(outcome)
    .bind(note)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A redelivered payment event: if it moved the order, make sure the move's messages went out.
async fn republish_if_applied(
    ctx: &Context,
    outcome: String,
    order_id: Uuid,
    to: OrderStatus,
    correlation_id: &str,
) -> Result<(), Failure> {
    if outcome != "applied" {
        return Ok(());
    }
    let mut tx = ctx.db.begin().await?;
    let event = recorded_event(&mut tx, order_id, to).await?;
    tx.commit().await?;
    match event {
        Some(event) => publish_with_follow_ups(ctx, event, correlation_id).await,
        None => Ok(()),
    }
}

/// A requested status change.
pub struct Change {
    pub order_id: Uuid,
    pub to: OrderStatus,
    pub actor: String,
    pub reason: Option<String>,
}

/// What [`transition_in`] found.
pub enum Outcome {
    /// The order moved; the event is to be published after commit.
    Applied(OrderStatusChanged),
    /// The order had already made this move (a redelivery): the recorded event, to publish again.
    AlreadyThere(OrderStatusChanged),
    /// No such order.
    Missing,
    /// The order is in a status from which the move is not allowed.
    NotApplicable(OrderStatus),
}

/// Applies a status change inside `tx`, guarded by the current status (row locked), and records
/// it in the timeline. Idempotent: a change already made is reported, not made twice.
pub async fn transition_in(
    tx: &mut Transaction<'_, Postgres>,
    change: &Change,
    allowed_from: impl Fn(OrderStatus) -> bool,
) -> Result<Outcome, Failure> {
    let current: Option<(String, Uuid)> =
        sqlx::query_as("SELECT status, user_id FROM orders WHERE id = $1 FOR UPDATE")
            .bind(change.order_id)
            .fetch_optional(&mut **tx)
            .await?;
    let Some((current, user_id)) = current else {
        return Ok(Outcome::Missing);
    };
    let current = parse_status(&current)?;
    if current == change.to {
        return Ok(
            match recorded_event(tx, change.order_id, change.to).await? {
                Some(event) => Outcome::AlreadyThere(event),
                None => Outcome::NotApplicable(current),
            },
        );
    }
    if !allowed_from(current) || !current.can_become(change.to) {
        return Ok(Outcome::NotApplicable(current));
    }
    let event = move_orders(
        tx,
        &[Move {
            change,
            from: current,
            user_id,
        }],
    )
    .await?
    .pop()
    .ok_or_else(|| Failure::Transient(anyhow::anyhow!("order {} did not move", change.order_id)))?;
    Ok(Outcome::Applied(event))
}

/// A status change checked against the order's current status, ready to be made.
#[derive(Clone, Copy)]
struct Move<'a> {
    change: &'a Change,
    from: OrderStatus,
    user_id: Uuid,
}

/// Makes the moves (their rows locked by the caller) and records them in the timeline, with
/// one statement; returns their events, in order.
async fn move_orders(
    tx: &mut Transaction<'_, Postgres>,
    moves: &[Move<'_>],
) -> Result<Vec<OrderStatusChanged>, Failure> {
    if moves.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<Uuid> = moves.iter().map(|m| m.change.order_id).collect();
    let froms: Vec<&str> = moves.iter().map(|m| m.from.as_str()).collect();
    let tos: Vec<&str> = moves.iter().map(|m| m.change.to.as_str()).collect();
    let actors: Vec<&str> = moves.iter().map(|m| m.change.actor.as_str()).collect();
    let reasons: Vec<Option<&str>> = moves.iter().map(|m| m.change.reason.as_deref()).collect();
    let moved: HashMap<Uuid, (DateTime<Utc>, i64)> =
        sqlx::query_as::<_, (Uuid, DateTime<Utc>, i64)>(
            r#"
        WITH moved AS (
            UPDATE orders o
               SET status = v.to_status,
                   rejection_reason = CASE WHEN v.to_status = 'REJECTED' THEN v.reason
                                           ELSE o.rejection_reason END,
                   reserved_at = CASE WHEN v.to_status = 'CONFIRMED' THEN now()
                                      ELSE o.reserved_at END
              FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[])
                   AS v(id, from_status, to_status, actor, reason)
             WHERE o.id = v.id AND o.status = v.from_status
            RETURNING o.id, v.from_status, v.to_status, v.actor, v.reason, clock_timestamp() AS at
        )
        INSERT INTO order_events (order_id, from_status, to_status, at, actor, reason)
        SELECT id, from_status, to_status, at, actor, reason FROM moved
        RETURNING order_id, at, id
        "#,
        )
        .bind(&ids)
        .bind(&froms)
        .bind(&tos)
        .bind(&actors)
        .bind(&reasons)
        .fetch_all(&mut **tx)
        .await?
        .into_iter()
        .map(|(id, at, entry_id)| (id, (at, entry_id)))
        .collect();
    moves
        .iter()
        .map(|m| {
            let change = m.change;
            let (at, entry_id) = *moved.get(&change.order_id).ok_or_else(|| {
                // Cannot happen while the rows are locked; refuse to commit a partial batch.
                Failure::Transient(anyhow::anyhow!(
                    "order {} was not {} any more",
                    change.order_id,
                    m.from
                ))
            })?;
            crate::outcomes::record_transition(change.to);
            Ok(OrderStatusChanged {
                order_id: change.order_id,
                user_id: m.user_id,
                from: Some(m.from),
                to: change.to,
                at,
                actor: change.actor.clone(),
                reason: change.reason.clone(),
                entry_id: Some(entry_id),
            })
        })
        .collect()
}

/// The timeline entry of an order reaching `to`, as an event.
async fn recorded_event(
    tx: &mut Transaction<'_, Postgres>,
    order_id: Uuid,
    to: OrderStatus,
) -> Result<Option<OrderStatusChanged>, Failure> {
    #[derive(sqlx::FromRow)]
    struct Entry {
        id: i64,
        user_id: Uuid,
        from_status: Option<String>,
        at: DateTime<Utc>,
        actor: String,
        reason: Option<String>,
    }
    let row: Option<Entry> = sqlx::query_as(
        "SELECT e.id, o.user_id, e.from_status, e.at, e.actor, e.reason
           FROM orders o JOIN order_events e ON e.order_id = o.id
          WHERE o.id = $1 AND e.to_status = $2",
    )
    .bind(order_id)
    .bind(to.as_str())
    .fetch_optional(&mut **tx)
    .await?;
    row.map(|r| {
        Ok(OrderStatusChanged {
            order_id,
            user_id: r.user_id,
            from: r.from_status.as_deref().map(parse_status).transpose()?,
            to,
            at: r.at,
            actor: r.actor,
            reason: r.reason,
            entry_id: Some(r.id),
        })
    })
    .transpose()
}

/// Publishes a status change and what it implies for stock (release on CANCELLED, commit on
/// SHIPPED), all acknowledged before the triggering message is acked.
pub async fn publish_with_follow_ups(
    ctx: &Context,
    event: OrderStatusChanged,
    correlation_id: &str,
) -> Result<(), Failure> {
    let order_id = event.order_id;
    let to = event.to;
    let status = ctx.bus.publish(event, correlation_id);
    match to {
        OrderStatus::Cancelled => {
            let (a, b) = tokio::join!(
                status,
                ctx.bus.publish(ReleaseStock { order_id }, correlation_id)
            );
            a?;
            b?;
        }
        OrderStatus::Shipped => {
            let (a, b) = tokio::join!(
                status,
                ctx.bus.publish(CommitStock { order_id }, correlation_id)
            );
            a?;
            b?;
        }
        _ => {
            status.await?;
        }
    }
    Ok(())
}

fn parse_status(raw: &str) -> Result<OrderStatus, Failure> {
    raw.parse()
        .map_err(|e: String| Failure::Transient(anyhow::anyhow!(e)))
}
