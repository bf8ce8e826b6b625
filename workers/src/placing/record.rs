//! Recording a batch of new orders in one transaction: the products locked in id order, each
//! order decided ([`super::decide`]) and written once with its shipping address, its lines, its
//! reservations, its stock taken and its first timeline entry, in one statement.

use super::decide::{self, Decision, Product, Request};
use crate::Context;
use crate::consumer::Failure;
use chrono::{DateTime, Utc};
use common::domain::OrderStatus;
use common::messages::{Line, OrderStatusChanged};
use common::shipping::ShippingAddress;
use sqlx::types::Json;
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

/// Who records orders, in their timeline.
pub const ACTOR: &str = "system:inventory";
/// The reason of a confirmed order's first timeline entry.
pub const RESERVED: &str = "stock reserved";

/// A place command, checked: its lines merged and sorted by product id, its address
/// normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOrder {
    pub order_id: Uuid,
    pub user_id: Uuid,
    pub lines: Vec<Line>,
    pub shipping_address: Option<ShippingAddress>,
    pub correlation_id: String,
}

impl NewOrder {
    /// Whether `other` asks for the same order (a copy of its command, whatever its
    /// correlation id).
    pub fn same_as(&self, other: &NewOrder) -> bool {
        self.order_id == other.order_id
            && self.user_id == other.user_id
            && self.lines == other.lines
            && self.shipping_address == other.shipping_address
    }
}

/// An order as recorded: its status event (to publish), and the products whose stock its
/// recording took (none for a rejection or an order recorded before).
pub struct Placed {
    pub event: OrderStatusChanged,
    pub took: Vec<Uuid>,
}

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
    fn event(self, order: &NewOrder) -> Result<Placed, Failure> {
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
            (Some(entry_id), Some(to), Some(at), Some(actor)) => Ok(Placed {
                event: OrderStatusChanged {
                    order_id: self.id,
                    user_id: self.user_id,
                    from: None,
                    to,
                    at,
                    actor,
                    reason: self.reason,
                    entry_id: Some(entry_id),
                    shipment: None,
                },
                took: Vec::new(),
            }),
            _ => Err(Failure::permanent(format!(
                "order {} exists without the timeline entry that records it",
                order.order_id
            ))),
        }
    }
}

struct Known {
    users: Vec<Uuid>,
    existing: Json<Vec<Existing>>,
}

struct Entry {
    order_id: Uuid,
    entry_id: i64,
    at: DateTime<Utc>,
    products_taken: i64,
}

/// Records `orders` in one transaction; per order, what was recorded or why it cannot be.
/// Idempotent: an order recorded before keeps its record, and its event is returned to be
/// published again.
pub async fn record(
    ctx: &Context,
    orders: Vec<NewOrder>,
) -> Result<Vec<Result<Placed, Failure>>, Failure> {
    let mut product_ids: Vec<Uuid> = orders
        .iter()
        .flat_map(|o| o.lines.iter().map(|l| l.product_id))
        .collect();
    product_ids.sort_unstable();
    product_ids.dedup();
    let order_ids: Vec<Uuid> = orders.iter().map(|o| o.order_id).collect();
    let user_ids: Vec<Uuid> = orders.iter().map(|o| o.user_id).collect();

    let mut tx = ctx.db.begin().await?;
    // Locked in id order, as every writer of stock does, so batches cannot deadlock; and
    // before looking for existing orders, so a copy of this batch's commands handled
    // elsewhere at the same time is seen once it committed.
    let products: HashMap<Uuid, Product> = sqlx::query_as!(
        Product,
        r#"SELECT id, name, price, currency, stock, archived_at IS NOT NULL AS "archived!"
             FROM products WHERE id = ANY($1) ORDER BY id FOR UPDATE"#,
        &product_ids,
    )
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .map(|p| (p.id, p))
    .collect();
    let known = sqlx::query_as!(
        Known,
        r#"
        SELECT ARRAY(SELECT id FROM users WHERE id = ANY($1)) AS "users!",
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
                    WHERE o.id = ANY($2)), '[]') AS "existing!: Json<Vec<Existing>>"
        "#,
        &user_ids,
        &order_ids,
        &[OrderStatus::Confirmed, OrderStatus::Rejected] as &[OrderStatus],
    )
    .fetch_one(&mut *tx)
    .await?;
    let users: HashSet<Uuid> = known.users.into_iter().collect();
    let mut existing: HashMap<Uuid, Existing> =
        known.existing.0.into_iter().map(|e| (e.id, e)).collect();

    // Per order: a failure or event decided before writing, or its place among the new.
    let mut events: Vec<Option<Result<Placed, Failure>>> = Vec::new();
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
        .map(|(_, o)| Request { lines: &o.lines })
        .collect();
    let decisions = decide::decide(&requests, &products, ctx.config.store_currency.as_str());
    let taken = decide::taken(&requests, &decisions);

    let mut rows = Rows::default();
    let mut writing: Vec<(usize, &NewOrder, OrderStatus, Option<String>)> = Vec::new();
    for ((i, order), decision) in new.into_iter().zip(decisions) {
        match decision {
            Decision::Invalid(reason) => events[i] = Some(Err(Failure::permanent(reason))),
            Decision::Confirmed(priced) => {
                rows.push(order, OrderStatus::Confirmed, None, &priced);
                writing.push((i, order, OrderStatus::Confirmed, Some(RESERVED.into())));
            }
            Decision::Rejected(priced, reason) => {
                rows.push(order, OrderStatus::Rejected, Some(&reason), &priced);
                writing.push((i, order, OrderStatus::Rejected, Some(reason)));
            }
        }
    }
    let entries: HashMap<Uuid, Entry> = if writing.is_empty() {
        HashMap::new()
    } else {
        rows.insert(&mut tx)
            .await?
            .into_iter()
            .map(|e| (e.order_id, e))
            .collect()
    };
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

    for (i, order, to, reason) in writing {
        events[i] = Some(match entries.get(&order.order_id) {
            Some(entry) => {
                crate::counters::record_transition(to);
                let took = match to {
                    OrderStatus::Confirmed => order.lines.iter().map(|l| l.product_id).collect(),
                    _ => Vec::new(),
                };
                Ok(Placed {
                    event: OrderStatusChanged {
                        order_id: order.order_id,
                        user_id: order.user_id,
                        from: None,
                        to,
                        at: entry.at,
                        actor: ACTOR.into(),
                        reason,
                        entry_id: Some(entry.entry_id),
                        shipment: None,
                    },
                    took,
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
    Ok(events
        .into_iter()
        .map(|e| e.unwrap_or_else(|| Err(Failure::transient("order left undecided"))))
        .collect())
}

/// The column arrays of the new orders and of their lines.
#[derive(Default)]
struct Rows {
    ids: Vec<Uuid>,
    users: Vec<Uuid>,
    statuses: Vec<OrderStatus>,
    totals: Vec<i64>,
    currencies: Vec<String>,
    correlations: Vec<String>,
    rejections: Vec<Option<String>>,
    entry_reasons: Vec<String>,
    addresses: Vec<Option<Json<ShippingAddress>>>,
    line_orders: Vec<Uuid>,
    line_nos: Vec<i16>,
    line_products: Vec<Uuid>,
    names: Vec<Option<String>>,
    prices: Vec<Option<i64>>,
    quantities: Vec<i32>,
    subtotals: Vec<Option<i64>>,
    reserved: Vec<bool>,
}

impl Rows {
    fn push(
        &mut self,
        order: &NewOrder,
        status: OrderStatus,
        rejection: Option<&str>,
        priced: &decide::Priced,
    ) {
        self.ids.push(order.order_id);
        self.users.push(order.user_id);
        self.statuses.push(status);
        self.totals.push(priced.total);
        self.currencies.push(priced.currency.clone());
        self.correlations.push(order.correlation_id.clone());
        self.rejections.push(rejection.map(str::to_owned));
        self.entry_reasons
            .push(rejection.unwrap_or(RESERVED).to_owned());
        self.addresses
            .push(order.shipping_address.clone().map(Json));
        for (no, line) in priced.lines.iter().enumerate() {
            self.line_orders.push(order.order_id);
            self.line_nos.push(i16::try_from(no).unwrap_or(i16::MAX));
            self.line_products.push(line.product_id);
            self.names.push(line.name.clone());
            self.prices.push(line.unit_price);
            self.quantities.push(line.quantity.get());
            self.subtotals.push(line.subtotal);
            self.reserved.push(rejection.is_none());
        }
    }

    /// Writes the orders, their lines, their reservations, the stock they take and their
    /// first timeline entries, in one statement. An order already there (inserted
    /// concurrently) is left alone and takes nothing.
    async fn insert(&self, tx: &mut sqlx::PgConnection) -> Result<Vec<Entry>, Failure> {
        Ok(sqlx::query_as!(
            Entry,
            r#"
            WITH v AS (
                SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::order_status[], $4::int8[],
                                     $5::text[], $6::text[], $7::text[], $8::text[], $18::jsonb[])
                    AS v(id, user_id, status, total, currency, correlation_id, rejection, entry_reason,
                         shipping_address)
            ), new_orders AS (
                INSERT INTO orders (id, user_id, status, total, currency, correlation_id,
                                    rejection_reason, reserved_at, shipping_address)
                SELECT id, user_id, status, total, currency, correlation_id, rejection,
                       CASE WHEN rejection IS NULL THEN now() END, shipping_address
                  FROM v
                ON CONFLICT (id) DO NOTHING
                RETURNING id, status, created_at
            ), lines AS (
                SELECT * FROM unnest($9::uuid[], $10::int2[], $11::uuid[], $12::text[],
                                     $13::int8[], $14::int4[], $15::int8[], $16::bool[])
                    AS l(order_id, line_no, product_id, name, unit_price, quantity, subtotal,
                         reserved)
            ), new_lines AS (
                INSERT INTO order_items (order_id, line_no, product_id, name, unit_price,
                                         quantity, subtotal)
                SELECT l.order_id, l.line_no, l.product_id, l.name, l.unit_price, l.quantity,
                       l.subtotal
                  FROM lines l JOIN new_orders o ON o.id = l.order_id
            ), held AS (
                INSERT INTO reservations (order_id, product_id, quantity)
                SELECT l.order_id, l.product_id, l.quantity
                  FROM lines l JOIN new_orders o ON o.id = l.order_id
                 WHERE l.reserved
                RETURNING product_id, quantity
            ), taken AS (
                UPDATE products p SET stock = p.stock - t.quantity
                  FROM (SELECT product_id, sum(quantity)::int4 AS quantity
                          FROM held GROUP BY product_id) t
                 WHERE p.id = t.product_id AND p.stock >= t.quantity
                RETURNING p.id
            ), entries AS (
                INSERT INTO order_events (order_id, from_status, to_status, at, actor, reason)
                SELECT o.id, NULL, o.status, o.created_at, $17, v.entry_reason
                  FROM new_orders o JOIN v ON v.id = o.id
                RETURNING order_id, id, at
            )
            SELECT order_id AS "order_id!", id AS "entry_id!", at AS "at!",
                   (SELECT count(*) FROM taken) AS "products_taken!"
              FROM entries
            "#,
            &self.ids,
            &self.users,
            &self.statuses as &[OrderStatus],
            &self.totals,
            &self.currencies,
            &self.correlations,
            &self.rejections as &[Option<String>],
            &self.entry_reasons,
            &self.line_orders,
            &self.line_nos,
            &self.line_products,
            &self.names as &[Option<String>],
            &self.prices as &[Option<i64>],
            &self.quantities,
            &self.subtotals as &[Option<i64>],
            &self.reserved,
            ACTOR,
            &self.addresses as &[Option<Json<ShippingAddress>>],
        )
        .fetch_all(&mut *tx)
        .await?)
    }
}
