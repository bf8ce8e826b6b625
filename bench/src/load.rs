//! `bench load-orders`: a store's history bulk-loaded through SQL, one `INSERT … SELECT` per
//! table, for measuring reads at scale. The orders are spread over a year up to now, with the
//! statuses, lines, timelines, payments, refunds and reservations a running shop accumulates:
//! most orders delivered, a few rejected, cancelled unpaid or cancelled and refunded, some
//! refunded in part or paid twice, the recent ones still paid, shipped or unpaid; 20 orders per
//! customer; shipping addresses in 21 countries (one rare); tracking on shipped orders. Every
//! row satisfies the schema's constraints and the stock and money conservation rules, so the
//! reconciliation finds no drift.

use std::time::{Duration, Instant};

/// Orders per loaded customer.
pub const ORDERS_PER_CUSTOMER: i64 = 20;
/// Products of a load's catalogue.
pub const PRODUCTS: i64 = 300;
/// How far back the oldest order goes.
const SPAN_SECS: f64 = 365.0 * 86_400.0;

/// What a load wrote.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// Its tag: ids, emails and references are derived from it.
    pub tag: String,
    pub orders: i64,
    pub elapsed: Duration,
    /// Rows per table, in the order they were written, and how long each took.
    pub rows: Vec<(&'static str, u64, Duration)>,
}

/// Each order of the load, with its fate: the source of every table's rows. `r` (0-999) picks
/// the fate and the number of lines; `paid` orders have an applied payment; `refund` names the
/// refund it had, if any.
const STAGE_TABLE: &str = "CREATE TEMP TABLE bench_load (i int8, id uuid, user_id uuid,
    created_at timestamptz, r int4, status order_status, paid bool, refund text, total int8,
    country text) ON COMMIT DROP";

const STAGE: &str = r#"
INSERT INTO bench_load
WITH s AS (
    SELECT i, now() - ($2 - i) * ($3::float8 / $2) * interval '1 second' AS created_at,
           abs(hashtext($1 || ':' || i)) % 1000 AS r
      FROM generate_series(1, $2::int8) i
), f AS (
    SELECT s.*,
           CASE
               WHEN r < 50 THEN 'REJECTED'
               WHEN now() - created_at < interval '10 minutes' THEN 'CONFIRMED'
               WHEN r < 130 THEN 'CANCELLED'
               WHEN now() - created_at < interval '1 day' OR r < 150 THEN 'PAID'
               WHEN now() - created_at < interval '3 days' OR r < 200 THEN 'SHIPPED'
               ELSE 'DELIVERED'
           END::order_status AS status
      FROM s
)
SELECT i, md5($1 || ':order:' || i)::uuid AS id,
       md5($1 || ':user:' || (i % $4))::uuid AS user_id, created_at, r, status,
       (status IN ('PAID', 'SHIPPED', 'DELIVERED') OR (status = 'CANCELLED' AND r >= 100)) AS paid,
       CASE WHEN status = 'CANCELLED' AND r >= 100 THEN 'cancelled'
            WHEN status = 'DELIVERED' AND r BETWEEN 200 AND 214 THEN 'partial'
            WHEN status = 'DELIVERED' AND r BETWEEN 215 AND 217 THEN 'again' END AS refund,
       (SELECT sum(100 * (5 + ((i * 7 + k * 101) % $5) % 95) * (1 + (i + k) % 3))
          FROM generate_series(0, r % 3) k)::int8 AS total,
       (ARRAY['DE','DE','DE','DE','FR','FR','FR','NL','NL','BE','AT','IT','ES','PL','SE','DK',
              'FI','IE','PT','CZ'])[1 + ((i * 31) % 20)::int4] AS country
  FROM f
"#;

const USERS: &str = r#"
INSERT INTO users (id, email, name, role, password_hash, created_at, updated_at)
SELECT md5($1 || ':user:' || u)::uuid, 'load-' || $1 || '-' || u || '@example.com',
       'Loaded customer ' || u, 'CLIENT', '$argon2id$v=19$m=19456,t=2,p=1$bG9hZGVk$bG9hZGVk',
       now() - $3 * interval '1 second', now() - $3 * interval '1 second'
  FROM generate_series(0, $2::int8 - 1) u
"#;

const PRODUCTS_SQL: &str = r#"
INSERT INTO products (id, name, description, price, currency, stock, initial_stock, created_at)
SELECT md5($1 || ':product:' || k)::uuid, 'Loaded product ' || $1 || ' ' || k,
       'An item of the loaded catalogue', 100 * (5 + k % 95), $3, 1000000, 1000000,
       now() - $4 * interval '1 second'
  FROM generate_series(0, $2::int8 - 1) k
"#;

const ORDERS: &str = r#"
INSERT INTO orders (id, user_id, status, total, currency, rejection_reason, correlation_id,
                    reserved_at, created_at, updated_at, shipping_address, carrier,
                    tracking_number, tracking_url, amount_paid, amount_refunded)
SELECT id, user_id, status, total, $2,
       CASE WHEN status = 'REJECTED' THEN 'insufficient stock' END, 'load-' || $1 || '-' || i,
       CASE WHEN status <> 'REJECTED' THEN created_at END, created_at, created_at,
       jsonb_build_object('name', 'Loaded customer', 'line1', i || ' Main Street',
                          'city', 'Springfield', 'postal_code', lpad((i % 99999)::text, 5, '0'),
                          'country', CASE WHEN i % 1000 = 7 THEN 'IS' ELSE country END),
       CASE WHEN status IN ('SHIPPED', 'DELIVERED') THEN 'DHL' END,
       CASE WHEN status IN ('SHIPPED', 'DELIVERED') THEN 'LD' || $1 || i END,
       CASE WHEN status IN ('SHIPPED', 'DELIVERED')
            THEN 'https://carrier.example/track/LD' || $1 || i END,
       CASE WHEN paid THEN total ELSE 0 END,
       CASE refund WHEN 'cancelled' THEN total WHEN 'partial' THEN total / 2 ELSE 0 END
  FROM bench_load
"#;

/// Line `k` of order `i` is product `(7i + 101k) mod 300`: distinct within an order.
const ITEMS: &str = r#"
INSERT INTO order_items (order_id, line_no, product_id, name, unit_price, quantity, subtotal)
SELECT l.id, k, md5($1 || ':product:' || p)::uuid, 'Loaded product ' || $1 || ' ' || p,
       100 * (5 + p % 95), q, 100 * (5 + p % 95) * q
  FROM bench_load l, generate_series(0, l.r % 3) k,
       LATERAL (SELECT (l.i * 7 + k * 101) % $2 AS p, 1 + (l.i + k) % 3 AS q) x
"#;

const RESERVATIONS: &str = r#"
INSERT INTO reservations (order_id, product_id, quantity, state, created_at, updated_at)
SELECT l.id, md5($1 || ':product:' || ((l.i * 7 + k * 101) % $2))::uuid, 1 + (l.i + k) % 3,
       CASE WHEN l.status IN ('CONFIRMED', 'PAID') THEN 'reserved'
            WHEN l.status IN ('SHIPPED', 'DELIVERED') THEN 'committed'
            ELSE 'released' END::reservation_state,
       l.created_at, l.created_at
  FROM bench_load l, generate_series(0, l.r % 3) k
 WHERE l.status <> 'REJECTED'
"#;

const EVENTS: &str = r#"
INSERT INTO order_events (order_id, from_status, to_status, at, actor, reason, reference)
SELECT l.id, e.from_status::order_status, e.to_status::order_status,
       least(l.created_at + e.after, now()), e.actor, e.reason, e.reference
  FROM bench_load l CROSS JOIN LATERAL (VALUES
       (1, NULL, CASE WHEN l.status = 'REJECTED' THEN 'REJECTED' ELSE 'CONFIRMED' END,
        interval '0', 'system:inventory',
        CASE WHEN l.status = 'REJECTED' THEN 'insufficient stock' ELSE 'stock reserved' END,
        NULL, true),
       (2, 'CONFIRMED', 'PAID', interval '2 minutes', 'system:payments', NULL, NULL, l.paid),
       (3, 'PAID', 'SHIPPED', interval '1 day', 'system:warehouse', NULL,
        'ship-' || $1 || '-' || l.i, l.status IN ('SHIPPED', 'DELIVERED')),
       (4, 'SHIPPED', 'DELIVERED', interval '3 days', 'system:carrier', NULL,
        'deliver-' || $1 || '-' || l.i, l.status = 'DELIVERED'),
       (5, CASE WHEN l.paid THEN 'PAID' ELSE 'CONFIRMED' END, 'CANCELLED',
        CASE WHEN l.paid THEN interval '1 hour' ELSE interval '15 minutes' END,
        CASE WHEN l.paid THEN 'user:' || l.user_id ELSE 'system:expiry' END,
        CASE WHEN l.paid THEN 'changed my mind' ELSE 'reservation expired' END,
        NULL, l.status = 'CANCELLED')
  ) e(step, from_status, to_status, after, actor, reason, reference, happened)
 WHERE e.happened
"#;

const PAYMENTS: &str = r#"
INSERT INTO payments (provider_reference, order_id, kind, amount, currency, outcome, note,
                      received_at)
SELECT 'load-' || $1 || '-' || l.i || p.suffix, l.id, 'succeeded', l.total, $2,
       p.outcome::payment_outcome, p.note, least(l.created_at + p.after, now())
  FROM bench_load l CROSS JOIN LATERAL (VALUES
       ('', 'applied', NULL, interval '2 minutes', true),
       ('-again', 'refund_required', 'paid twice', interval '3 minutes',
        l.status = 'DELIVERED' AND l.r BETWEEN 215 AND 219)
  ) p(suffix, outcome, note, after, happened)
 WHERE l.paid AND p.happened
"#;

const REFUNDS: &str = r#"
INSERT INTO refunds (id, order_id, payment_reference, amount, currency, reason, actor, status,
                     requested_at, settled_at, provider_reference, settled_entry_id)
SELECT md5($1 || ':refund:' || l.i)::uuid, l.id,
       CASE WHEN l.refund = 'again' THEN 'load-' || $1 || '-' || l.i || '-again' END,
       CASE WHEN l.refund = 'partial' THEN l.total / 2 ELSE l.total END, $2,
       CASE l.refund WHEN 'cancelled' THEN 'order cancelled' WHEN 'partial' THEN 'damaged item'
            ELSE 'paid twice' END,
       'system:payments', 'SUCCEEDED',
       least(l.created_at + interval '2 hours', now()),
       least(l.created_at + interval '2 hours 1 minute', now()),
       'load-' || $1 || '-' || l.i || '-refund', nextval('order_events_id_seq')
  FROM bench_load l
 WHERE l.refund IS NOT NULL
"#;

/// The held stock of the load's products: taken from their available stock, which starts at a
/// million each.
const STOCK: &str = r#"
UPDATE products p SET initial_stock = p.stock + h.held
  FROM (SELECT product_id, sum(quantity)::int4 AS held FROM reservations
         WHERE state IN ('reserved', 'committed')
           AND product_id IN (SELECT md5($1 || ':product:' || k)::uuid
                                FROM generate_series(0, $2::int8 - 1) k)
         GROUP BY product_id) h
 WHERE p.id = h.product_id
"#;

/// What the reconciliation's triggers would have journalled (they do not fire under
/// `session_replication_role = replica`): the held stock of the load's new products as their
/// running balances, and every loaded order listed for its first verification.
const JOURNAL: &str = r#"
WITH balances AS (
    INSERT INTO stock_balances (product_id, held)
    SELECT p.id, COALESCE((SELECT sum(quantity) FROM reservations r
                            WHERE r.product_id = p.id AND r.state IN ('reserved', 'committed')), 0)
      FROM (SELECT md5($1 || ':product:' || k)::uuid AS id
              FROM generate_series(0, $2::int8 - 1) k) p
)
INSERT INTO orders_to_verify (order_id) SELECT id FROM bench_load
"#;

/// Loads `orders` orders (of `orders / 20` new customers and 300 new products, priced in
/// `currency`) in one transaction, then analyses the tables as autovacuum does after a bulk
/// insert. Foreign keys are not checked row by row (`session_replication_role = replica`, as
/// restores do): the rows are made consistent by construction.
pub async fn orders(db: &sqlx::PgPool, orders: i64, currency: &str) -> anyhow::Result<Loaded> {
    let orders = orders.max(1);
    let customers = (orders / ORDERS_PER_CUSTOMER).max(1);
    let tag = format!("l{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let started = Instant::now();
    let mut tx = db.begin().await?;
    sqlx::query("SET LOCAL session_replication_role = replica")
        .execute(&mut *tx)
        .await?;
    sqlx::query("SET LOCAL synchronous_commit = off")
        .execute(&mut *tx)
        .await?;
    sqlx::query("SET LOCAL work_mem = '256MB'")
        .execute(&mut *tx)
        .await?;
    let mut rows = Vec::new();
    let mut lap = Instant::now();
    let mut took = move || {
        let now = Instant::now();
        let d = now - lap;
        lap = now;
        d
    };
    took();
    sqlx::query(STAGE_TABLE).execute(&mut *tx).await?;
    let staged = sqlx::query(STAGE)
        .bind(&tag)
        .bind(orders)
        .bind(SPAN_SECS)
        .bind(customers)
        .bind(PRODUCTS)
        .execute(&mut *tx)
        .await?;
    rows.push(("(staging)", staged.rows_affected(), took()));
    let users = sqlx::query(USERS)
        .bind(&tag)
        .bind(customers)
        .bind(SPAN_SECS)
        .execute(&mut *tx)
        .await?;
    rows.push(("users", users.rows_affected(), took()));
    let products = sqlx::query(PRODUCTS_SQL)
        .bind(&tag)
        .bind(PRODUCTS)
        .bind(currency)
        .bind(SPAN_SECS)
        .execute(&mut *tx)
        .await?;
    rows.push(("products", products.rows_affected(), took()));
    for (table, sql) in [
        ("orders", ORDERS),
        ("payments", PAYMENTS),
        ("refunds", REFUNDS),
    ] {
        let done = sqlx::query(sql)
            .bind(&tag)
            .bind(currency)
            .execute(&mut *tx)
            .await?;
        rows.push((table, done.rows_affected(), took()));
    }
    for (table, sql) in [("order_items", ITEMS), ("reservations", RESERVATIONS)] {
        let done = sqlx::query(sql)
            .bind(&tag)
            .bind(PRODUCTS)
            .execute(&mut *tx)
            .await?;
        rows.push((table, done.rows_affected(), took()));
    }
    let events = sqlx::query(EVENTS).bind(&tag).execute(&mut *tx).await?;
    rows.push(("order_events", events.rows_affected(), took()));
    sqlx::query(STOCK)
        .bind(&tag)
        .bind(PRODUCTS)
        .execute(&mut *tx)
        .await?;
    let listed = sqlx::query(JOURNAL)
        .bind(&tag)
        .bind(PRODUCTS)
        .execute(&mut *tx)
        .await?;
    rows.push(("orders_to_verify", listed.rows_affected(), took()));
    tx.commit().await?;
    took();
    // What autovacuum does after a bulk insert (its insert threshold): statistics for the
    // planner and the visibility map for index-only scans.
    sqlx::query(
        "VACUUM (ANALYZE) users, products, orders, order_items, reservations, order_events, \
         payments, refunds",
    )
    .execute(db)
    .await?;
    rows.push(("(vacuum analyze)", 0, took()));
    Ok(Loaded {
        tag,
        orders,
        elapsed: started.elapsed(),
        rows,
    })
}

/// How long the stock and money reconciliation takes right after a load (the loaded orders
/// are listed as changed, so it reads each of them once) and then, the median of five, with
/// nothing changed since. Fails when the loaded store does not reconcile.
pub async fn reconciliation_cost(db: &sqlx::PgPool) -> anyhow::Result<(Duration, Duration)> {
    let mut times = Vec::new();
    for n in 0..6 {
        if n == 1 {
            // What autovacuum does once the first check emptied the journal of the loaded
            // orders (migrations/0021 has it vacuum those tables after a thousand dead rows).
            sqlx::query("VACUUM stock_journal, orders_to_verify")
                .execute(db)
                .await?;
        }
        let started = Instant::now();
        let found = common::conservation::check(db).await?;
        times.push(started.elapsed());
        anyhow::ensure!(
            found.consistent(),
            "the loaded store does not reconcile: {} products, {} orders in drift",
            found.drift.len(),
            found.money_drift.len()
        );
    }
    let first = times.remove(0);
    times.sort();
    Ok((first, times[times.len() / 2]))
}
