//! Recording a batch of new orders in one transaction: the products locked in id order, then
//! the accounts; each order decided ([`super::decide`]) and written once with its shipping
//! address, its lines, its reservations, its stock taken and its first timeline entry, in one
//! statement ([`super::rows`]).
//!
//! The bound on unpaid orders per account (`MAX_UNPAID_ORDERS_PER_USER`) is counted here, where
//! orders are recorded, so concurrent placements cannot pass it: the accounts are locked (in id
//! order, after the products, as every placement does), their unpaid orders counted in the
//! statement that reads the existing orders, and counted again, with what committed meanwhile,
//! by the writing statement; should the two differ (another instance recorded an order of the
//! same account while this one waited for its lock), the batch is decided again.

use super::decide::{self, Decision, Product, Request, Unpaid};
use super::new_order::{ACTOR, NewOrder, RESERVED};
use super::rows::{Entry, Rows};
use crate::announce::Stepped;
use crate::consumer::Failure;
use crate::context::Context;
use chrono::{DateTime, Utc};
use common::domain::OrderStatus;
use common::domain::bounds::MAX_LINE_QUANTITY;
use common::messages::{Line, OrderStatusChanged, OutcomeLine, PlacedOutcome};
use common::shipping::ShippingAddress;
use sqlx::types::Json;
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

/// An order recorded before, as its redelivered command finds it.
#[derive(serde::Deserialize)]
struct Existing {
    id: Uuid,
    user_id: Uuid,
    lines: Vec<Line>,
    shipping_address: Option<ShippingAddress>,
    entry_id: Option<i64>,
    to: Option<OrderStatus>,
    at: Option<DateTime<Utc>>,
    actor: Option<String>,
    reason: Option<String>,
}

impl Existing {
    /// The recorded event, published again for a redelivered command.
    fn event(self, order: &NewOrder) -> Result<Stepped, Failure> {
        if self.user_id != order.user_id
            || self.lines != order.lines
            || self.shipping_address != order.shipping_address
        {
            return Err(Failure::permanent(format!(
                "order id {} is already used by a different order",
                order.order_id
            )));
        }
        match (self.entry_id, self.to, self.at, self.actor) {
            (Some(entry_id), Some(to), Some(at), Some(actor)) => Ok(Stepped {
                event: Some(OrderStatusChanged {
                    order_id: self.id,
                    user_id: self.user_id,
                    from: None,
                    to,
                    at,
                    actor,
                    reason: self.reason,
                    entry_id: Some(entry_id),
                    shipment: None,
                }),
                ..Stepped::default()
            }),
            _ => Err(Failure::permanent(format!(
                "order {} exists without the timeline entry that records it",
                order.order_id
            ))),
        }
    }
}

struct Known {
    products: Json<Vec<Product>>,
    users: Vec<Uuid>,
    existing: Json<Vec<Existing>>,
    /// Unpaid orders per account, counted up to the bound.
    unpaid: Json<HashMap<Uuid, i64>>,
}

/// How often a batch is decided again when its accounts' unpaid orders changed under it.
const ATTEMPTS: usize = 3;

/// Where orders are recorded and by which rules: the database, the bound on unpaid orders
/// per account and the store's currency.
#[derive(Clone, Copy)]
pub struct Store<'a> {
    pub db: &'a sqlx::PgPool,
    pub max_unpaid: Option<i64>,
    pub currency: &'a str,
}

impl<'a> Store<'a> {
    /// The worker's own.
    pub fn of(ctx: &'a Context) -> Self {
        Store {
            db: &ctx.db,
            max_unpaid: ctx.config.max_unpaid_orders_per_user.map(i64::from),
            currency: ctx.config.store_currency.as_str(),
        }
    }
}

/// Records `orders` in one transaction; per order, what was recorded or why it cannot be.
/// Idempotent: an order recorded before keeps its record, and its event is returned to be
/// published again.
pub async fn record(
    store: Store<'_>,
    orders: Vec<NewOrder>,
) -> Result<Vec<Result<Stepped, Failure>>, Failure> {
    for _ in 0..ATTEMPTS {
        if let Some(recorded) = attempt(store, &orders).await? {
            return Ok(recorded);
        }
    }
    Err(Failure::transient(
        "unpaid orders of an account were recorded concurrently each time; retrying",
    ))
}

/// One try of [`record`]; `None` when an account's unpaid orders changed while it waited for
/// the account's lock (nothing is written: the transaction rolls back).
async fn attempt(
    store: Store<'_>,
    orders: &[NewOrder],
) -> Result<Option<Vec<Result<Stepped, Failure>>>, Failure> {
    let max_unpaid = store.max_unpaid;
    let mut product_ids: Vec<Uuid> = orders
        .iter()
        .flat_map(|o| o.lines.iter().map(|l| l.product_id))
        .collect();
    product_ids.sort_unstable();
    product_ids.dedup();
    let order_ids: Vec<Uuid> = orders.iter().map(|o| o.order_id).collect();
    let user_ids: Vec<Uuid> = orders.iter().map(|o| o.user_id).collect();

    // Generic plans, made once per connection: these statements look rows up by primary key
    // (and the unpaid count through its partial index) whatever the batch, and planning them
    // for each batch's parameters took several times as long as running them. Set with the
    // BEGIN, in its one round trip.
    let mut tx = store
        .db
        .begin_with("BEGIN; SET LOCAL plan_cache_mode = force_generic_plan")
        .await?;
    // One round trip: the products locked in id order, as every writer of stock does, so
    // batches cannot deadlock; then the accounts, in id order (placements are the only writers
    // that lock both), so two batches of one account's orders take turns; then the orders
    // already recorded and the unpaid ones. PostgreSQL evaluates the select list in order, so
    // the locks are taken in that order. The reads see what committed before the statement
    // began: an order recorded meanwhile by another delivery of its command is met by the
    // write (`ON CONFLICT`, retried), and unpaid orders recorded meanwhile are counted again
    // by the write.
    let known = sqlx::query_as!(
        Known,
        r#"
        SELECT coalesce((
                   SELECT json_agg(p ORDER BY p.id)
                     FROM (SELECT id, name, price, currency, stock,
                                  archived_at IS NOT NULL AS archived
                             FROM products WHERE id = ANY($5) ORDER BY id FOR UPDATE) p), '[]')
                   AS "products!: Json<Vec<Product>>",
               ARRAY(SELECT id FROM users WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE)
                   AS "users!",
               coalesce((
                   SELECT json_agg(json_build_object(
                              'id', o.id, 'user_id', o.user_id,
                              'lines', (SELECT coalesce(json_agg(json_build_object(
                                                'product_id', i.product_id,
                                                'quantity', i.quantity) ORDER BY i.product_id), '[]')
                                          FROM order_items i WHERE i.order_id = o.id),
                              'shipping_address', o.shipping_address,
                              'entry_id', e.id, 'to', e.to_status, 'at', e.at,
                              'actor', e.actor, 'reason', e.reason))
                     FROM orders o
                     LEFT JOIN order_events e ON e.order_id = o.id AND e.to_status = ANY($3)
                    WHERE o.id = ANY($2)), '[]') AS "existing!: Json<Vec<Existing>>",
               coalesce((
                   SELECT json_object_agg(u.id, (SELECT count(*)
                                                   FROM (SELECT 1 FROM orders o
                                                          WHERE o.user_id = u.id
                                                            AND o.status = 'CONFIRMED'
                                                          LIMIT $4) held))
                     FROM (SELECT DISTINCT id FROM unnest($1::uuid[]) AS u(id)) u
                    WHERE $4 > 0), '{}') AS "unpaid!: Json<HashMap<Uuid, i64>>"
        "#,
        &user_ids,
        &order_ids,
        &[OrderStatus::Confirmed, OrderStatus::Rejected] as &[OrderStatus],
        max_unpaid.unwrap_or(0),
        &product_ids,
    )
    .fetch_one(&mut *tx)
    .await?;
    let products: HashMap<Uuid, Product> =
        known.products.0.into_iter().map(|p| (p.id, p)).collect();
    let users: HashSet<Uuid> = known.users.into_iter().collect();
    let mut existing: HashMap<Uuid, Existing> =
        known.existing.0.into_iter().map(|e| (e.id, e)).collect();

    // Per order: a failure or event decided before writing, or its place among the new.
    let mut events: Vec<Option<Result<Stepped, Failure>>> = Vec::new();
    let mut new: Vec<(usize, &NewOrder)> = Vec::new();
    for (i, order) in orders.iter().enumerate() {
        events.push(if let Some(recorded) = existing.remove(&order.order_id) {
            Some(recorded.event(order))
        } else if !users.contains(&order.user_id) {
            Some(Err(Failure::permanent(format!(
                "unknown user {}",
                order.user_id
            ))))
        } else {
            new.push((i, order));
            None
        });
    }
    let requests: Vec<Request> = new
        .iter()
        .map(|(_, o)| Request {
            user_id: o.user_id,
            lines: &o.lines,
        })
        .collect();
    let unpaid = Unpaid {
        max: max_unpaid,
        held: known.unpaid.0,
    };
    let decisions = decide::decide(&requests, &products, store.currency, &unpaid);
    let taken = decide::taken(&requests, &decisions);

    let mut rows = Rows::default();
    let mut writing: Vec<(
        usize,
        &NewOrder,
        OrderStatus,
        Option<String>,
        decide::Priced,
    )> = Vec::new();
    for ((i, order), decision) in new.into_iter().zip(decisions) {
        match decision {
            Decision::Invalid(reason) => events[i] = Some(Err(Failure::permanent(reason))),
            Decision::Confirmed(priced) => {
                rows.push(order, OrderStatus::Confirmed, None, &priced);
                writing.push((
                    i,
                    order,
                    OrderStatus::Confirmed,
                    Some(RESERVED.into()),
                    priced,
                ));
            }
            Decision::Rejected(priced, reason) => {
                rows.push(order, OrderStatus::Rejected, Some(&reason), &priced);
                writing.push((i, order, OrderStatus::Rejected, Some(reason), priced));
            }
        }
    }
    let entries: HashMap<Uuid, Entry> = if writing.is_empty() {
        HashMap::new()
    } else {
        rows.insert(&mut tx, max_unpaid)
            .await?
            .into_iter()
            .map(|e| (e.order_id, e))
            .collect()
    };
    if let Some(entry) = entries.values().next()
        && !entry.over_bound.is_empty()
    {
        tracing::debug!(accounts = ?entry.over_bound, "unpaid orders changed under the batch; deciding again");
        return Ok(None);
    }
    if let Some(entry) = entries.values().next()
        && entry.products_taken != taken.len() as i64
    {
        // Cannot happen while the rows are locked; refuse to commit a partial reservation.
        return Err(Failure::transient(format!(
            "took stock of {} products instead of {}; retrying",
            entry.products_taken,
            taken.len()
        )));
    }
    tx.commit().await?;

    for (i, order, to, reason, priced) in writing {
        events[i] = Some(match entries.get(&order.order_id) {
            Some(entry) => {
                crate::counters::record_transition(to);
                let took: Vec<Uuid> = match to {
                    OrderStatus::Confirmed => order.lines.iter().map(|l| l.product_id).collect(),
                    _ => Vec::new(),
                };
                // What the batch left of the order's products, read under their locks,
                // whether it took them or was refused them: the api replicas refuse at once
                // what asks for more (after reading the stock again), so a replica that never
                // saw the stock taken learns of it from the first refusal. Only where a line
                // could ask for more: the others' levels would only cost every replica their
                // upkeep.
                let left = order
                    .lines
                    .iter()
                    .map(|l| l.product_id)
                    .filter_map(|id| {
                        let stock = products.get(&id)?.stock;
                        let left = stock - taken.get(&id).copied().unwrap_or(0);
                        (left < MAX_LINE_QUANTITY).then_some((id, left))
                    })
                    .collect();
                let event = OrderStatusChanged {
                    order_id: order.order_id,
                    user_id: order.user_id,
                    from: None,
                    to,
                    at: entry.at,
                    actor: ACTOR.into(),
                    reason,
                    entry_id: Some(entry.entry_id),
                    shipment: None,
                };
                let outcome = outcome(order, &event, priced);
                Ok(Stepped {
                    event: Some(event),
                    stock: took,
                    left,
                    outcome: Some(outcome),
                    ..Stepped::default()
                })
            }
            // Recorded by another delivery of its command meanwhile: the next delivery
            // finds it and publishes its event.
            None => Err(Failure::transient(format!(
                "order {} was recorded concurrently; retrying",
                order.order_id
            ))),
        });
    }
    Ok(Some(
        events
            .into_iter()
            .map(|e| e.unwrap_or_else(|| Err(Failure::transient("order left undecided"))))
            .collect(),
    ))
}

/// The order as `event` recorded it, as the api shows it to whoever placed it.
fn outcome(order: &NewOrder, event: &OrderStatusChanged, priced: decide::Priced) -> PlacedOutcome {
    PlacedOutcome {
        event: event.clone(),
        items: priced
            .lines
            .into_iter()
            .map(|l| OutcomeLine {
                product_id: l.product_id,
                name: l.name,
                unit_price: l.unit_price,
                quantity: l.quantity,
                subtotal: l.subtotal,
            })
            .collect(),
        total: priced.total,
        currency: priced.currency,
        rejection_reason: (event.to == OrderStatus::Rejected)
            .then(|| event.reason.clone())
            .flatten(),
        shipping_address: order.shipping_address.clone(),
    }
}
