//! The writing statement of a batch of new orders: the orders, their lines, their reservations,
//! the stock they take and their first timeline entries in one statement, which also checks,
//! with what has committed meanwhile, that no account passes its bound on unpaid orders.

use super::decide;
use super::new_order::{ACTOR, NewOrder, RESERVED};
use crate::consumer::Failure;
use chrono::{DateTime, Utc};
use common::domain::OrderStatus;
use common::shipping::ShippingAddress;
use sqlx::types::Json;
use uuid::Uuid;

/// What the statement wrote of one new order.
pub struct Entry {
    pub order_id: Uuid,
    pub entry_id: i64,
    pub at: DateTime<Utc>,
    pub products_taken: i64,
    /// The accounts whose unpaid orders, counted with those committed since the batch read
    /// them, pass the bound with this batch's (the same in every row).
    pub over_bound: Vec<Uuid>,
}

/// The column arrays of the new orders and of their lines.
#[derive(Default)]
pub struct Rows {
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
    pub fn push(
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
        self.correlations.push(order.correlation_id.to_string());
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
    /// concurrently) is left alone and takes nothing. With a bound on unpaid orders
    /// (`max_unpaid`), the accounts that this batch's confirmed orders take past it, counting
    /// what committed since the batch read their unpaid orders, are named in every row: the
    /// caller rolls back and decides again.
    pub async fn insert(
        &self,
        tx: &mut sqlx::PgConnection,
        max_unpaid: Option<i64>,
    ) -> Result<Vec<Entry>, Failure> {
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
            ), over_bound AS (
                -- This statement's snapshot sees what committed while the accounts were being
                -- locked, which the batch's earlier count may have missed.
                SELECT n.user_id
                  FROM (SELECT o.user_id, count(*) AS new
                          FROM v o JOIN new_orders w ON w.id = o.id
                         WHERE o.status = 'CONFIRMED' GROUP BY o.user_id) n
                 WHERE $19::int8 > 0
                   AND n.new + (SELECT count(*) FROM (SELECT 1 FROM orders u
                                                      WHERE u.user_id = n.user_id
                                                        AND u.status = 'CONFIRMED'
                                                      LIMIT $19) held) > $19
            )
            SELECT order_id AS "order_id!", id AS "entry_id!", at AS "at!",
                   (SELECT count(*) FROM taken) AS "products_taken!",
                   ARRAY(SELECT user_id FROM over_bound) AS "over_bound!"
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
            max_unpaid.unwrap_or(0),
        )
        .fetch_all(&mut *tx)
        .await?)
    }
}
