//! The order worker: records placed orders with a snapshot of their lines, asks the inventory
//! worker to reserve them, and applies the outcome to the order's status and timeline.

use crate::Context;
use crate::consumer::{Delivery, Failure};
use chrono::{DateTime, Utc};
use common::domain::OrderStatus;
use common::messages::{
    CommitStock, LineRequest, OrderStatusChanged, PaymentFailed, PaymentSucceeded, PlaceOrder,
    ReleaseStock, ReserveStock, StockRejected, StockReserved, TransitionOrder, normalise_lines,
};
use common::messaging::decode;
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

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
                    .zip(&lines)
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
            match record_order(
                &mut tx,
                &command,
                &lines,
                &envelope.correlation_id,
                &ctx.config.store_currency,
            )
            .await?
            {
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
    store_currency: &str,
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
        // An order none of whose products exist is rejected anyway.
        .unwrap_or_else(|| store_currency.to_owned());

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
    let change = Change {
        order_id: envelope.data.order_id,
        to: OrderStatus::Confirmed,
        actor: "system:inventory".into(),
        reason: Some("stock reserved".into()),
    };
    apply(
        &ctx,
        change,
        |current| current == OrderStatus::Pending,
        &envelope.correlation_id,
    )
    .await
}

/// `inventory.evt.rejected`: PENDING → REJECTED, with the reason naming the lines.
pub async fn on_rejected(ctx: Context, delivery: Delivery) -> Result<(), Failure> {
    let envelope = decode::<StockRejected>(&delivery.payload)?;
    let change = Change {
        order_id: envelope.data.order_id,
        to: OrderStatus::Rejected,
        actor: "system:inventory".into(),
        reason: Some(envelope.data.reason),
    };
    apply(
        &ctx,
        change,
        |current| current == OrderStatus::Pending,
        &envelope.correlation_id,
    )
    .await
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
    let at: DateTime<Utc> = sqlx::query_scalar(
        r#"
        UPDATE orders
           SET status = $2,
               rejection_reason = CASE WHEN $2 = 'REJECTED' THEN $3 ELSE rejection_reason END,
               reserved_at = CASE WHEN $2 = 'CONFIRMED' THEN now() ELSE reserved_at END
         WHERE id = $1
        RETURNING clock_timestamp()
        "#,
    )
    .bind(change.order_id)
    .bind(change.to.as_str())
    .bind(change.reason.as_deref())
    .fetch_one(&mut **tx)
    .await?;
    sqlx::query(
        "INSERT INTO order_events (order_id, from_status, to_status, at, actor, reason)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(change.order_id)
    .bind(current.as_str())
    .bind(change.to.as_str())
    .bind(at)
    .bind(&change.actor)
    .bind(change.reason.as_deref())
    .execute(&mut **tx)
    .await?;
    crate::outcomes::record_transition(change.to);
    Ok(Outcome::Applied(OrderStatusChanged {
        order_id: change.order_id,
        user_id,
        from: Some(current),
        to: change.to,
        at,
        actor: change.actor.clone(),
        reason: change.reason.clone(),
    }))
}

/// The timeline entry of an order reaching `to`, as an event.
async fn recorded_event(
    tx: &mut Transaction<'_, Postgres>,
    order_id: Uuid,
    to: OrderStatus,
) -> Result<Option<OrderStatusChanged>, Failure> {
    #[derive(sqlx::FromRow)]
    struct Recorded {
        user_id: Uuid,
        from_status: Option<String>,
        at: DateTime<Utc>,
        actor: String,
        reason: Option<String>,
    }
    let row: Option<Recorded> = sqlx::query_as(
        "SELECT o.user_id, e.from_status, e.at, e.actor, e.reason
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
