//! The `reads` scenario's catalogue: every list, filter and detail an ADMIN or a customer
//! reads, each as its HTTP request and the statement that drives it (the api's query with this
//! store's values, for `EXPLAIN`), timed one request at a time.

use crate::setup::Api;
use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Who reads, and with which token.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Reader {
    Admin,
    Customer,
}

/// One read: its request, and the statement whose plan decides its cost (none for reads of
/// NATS).
pub struct Read {
    pub reader: Reader,
    pub name: String,
    pub path: String,
    pub last_event_id: Option<i64>,
    pub explain: Option<String>,
}

/// The store's values the reads name: the customer's order, a product with a stock ledger,
/// cursors half-way down the lists.
pub struct Fixture {
    pub customer: Uuid,
    pub order: Uuid,
    pub product: Uuid,
    /// The key of the order half-way down everyone's list, and down the DELIVERED ones.
    pub middle: (DateTime<Utc>, Uuid),
    pub middle_delivered: (DateTime<Utc>, Uuid),
    /// The key of the payment half-way down the payments.
    pub middle_payment: (DateTime<Utc>, String),
    /// The key of the customer's fifth order, newest first (the end of a first page of 5).
    pub customer_fifth: (DateTime<Utc>, Uuid),
    /// A week six months ago.
    pub week: (DateTime<Utc>, DateTime<Utc>),
}

impl Fixture {
    pub async fn read(db: &sqlx::PgPool, customer: Uuid, product: Uuid) -> anyhow::Result<Self> {
        let order: Uuid = sqlx::query_scalar(
            "SELECT id FROM orders WHERE user_id = $1
              ORDER BY status = 'DELIVERED' DESC, created_at DESC LIMIT 1",
        )
        .bind(customer)
        .fetch_optional(db)
        .await?
        .context("the reading customer has no orders")?;
        let count: i64 = sqlx::query_scalar("SELECT count(*) FROM orders")
            .fetch_one(db)
            .await?;
        let middle = sqlx::query_as(
            "SELECT created_at, id FROM orders ORDER BY created_at DESC, id DESC
             OFFSET $1 LIMIT 1",
        )
        .bind(count / 2)
        .fetch_one(db)
        .await?;
        let middle_delivered = sqlx::query_as(
            "SELECT created_at, id FROM orders WHERE status = 'DELIVERED'
              ORDER BY created_at DESC, id DESC OFFSET $1 LIMIT 1",
        )
        .bind(count / 3)
        .fetch_one(db)
        .await?;
        let payments: i64 = sqlx::query_scalar("SELECT count(*) FROM payments")
            .fetch_one(db)
            .await?;
        let middle_payment = sqlx::query_as(
            "SELECT received_at, provider_reference FROM payments
              ORDER BY received_at, provider_reference OFFSET $1 LIMIT 1",
        )
        .bind(payments / 2)
        .fetch_one(db)
        .await?;
        let customer_fifth = sqlx::query_as(
            "SELECT created_at, id FROM orders WHERE user_id = $1
              ORDER BY created_at DESC, id DESC OFFSET 4 LIMIT 1",
        )
        .bind(customer)
        .fetch_one(db)
        .await?;
        let from = Utc::now() - chrono::Duration::days(182);
        Ok(Fixture {
            customer,
            order,
            product,
            middle,
            middle_delivered,
            middle_payment,
            customer_fifth,
            week: (from, from + chrono::Duration::days(7)),
        })
    }
}

fn cursor<T: serde::Serialize>(key: &T) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(key).unwrap_or_default())
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// The driving statement of `GET /orders` with these predicates (`orders::repo::list`).
fn list_sql(predicates: &str) -> String {
    format!(
        "SELECT o.id FROM orders o WHERE true{predicates} \
         ORDER BY o.created_at DESC, o.id DESC LIMIT 21"
    )
}

/// The statement of `GET /admin/payments` (`ops::payments`).
fn payments_sql(outcome: Option<&str>, after: Option<&(DateTime<Utc>, String)>) -> String {
    let mut sql = String::from(
        "SELECT p.provider_reference FROM payments p LEFT JOIN LATERAL (
           SELECT sum(amount) FILTER (WHERE status IN ('REQUESTED', 'SUCCEEDED'))::int8 AS held
             FROM refunds WHERE payment_reference = p.provider_reference) r ON true
          WHERE true",
    );
    if let Some(outcome) = outcome {
        sql.push_str(&format!(" AND p.outcome = '{outcome}'"));
        if outcome == "refund_required" {
            sql.push_str(" AND p.amount > coalesce(r.held, 0)");
        }
    }
    if let Some((at, reference)) = after {
        sql.push_str(&format!(
            " AND (p.received_at, p.provider_reference) > ('{}', '{reference}')",
            ts(*at)
        ));
    }
    sql.push_str(" ORDER BY p.received_at, p.provider_reference LIMIT 21");
    sql
}

/// Every read, in the order they are reported.
pub fn catalogue(f: &Fixture) -> Vec<Read> {
    use Reader::{Admin, Customer};
    let mut reads = Vec::new();
    let mut add = |reader, name: &str, path: String, explain: Option<String>| {
        reads.push(Read {
            reader,
            name: name.to_owned(),
            path,
            last_event_id: None,
            explain,
        });
    };
    let (week_from, week_to) = (ts(f.week.0), ts(f.week.1));
    let week = format!(" AND o.created_at >= '{week_from}' AND o.created_at < '{week_to}'");
    let lists: [(&str, String, String); 13] = [
        ("orders", String::new(), String::new()),
        (
            "orders, SHIPPED",
            "status=SHIPPED".into(),
            " AND o.status = 'SHIPPED'".into(),
        ),
        (
            "orders, CONFIRMED",
            "status=CONFIRMED".into(),
            " AND o.status = 'CONFIRMED'".into(),
        ),
        (
            "orders, REJECTED",
            "status=REJECTED".into(),
            " AND o.status = 'REJECTED'".into(),
        ),
        (
            "orders, country DE",
            "country=DE".into(),
            " AND o.shipping_address->>'country' = 'DE'".into(),
        ),
        (
            "orders, country IS (rare)",
            "country=IS".into(),
            " AND o.shipping_address->>'country' = 'IS'".into(),
        ),
        (
            "orders, tracked",
            "has_tracking=true".into(),
            " AND o.tracking_number IS NOT NULL".into(),
        ),
        (
            "orders, untracked",
            "has_tracking=false".into(),
            " AND o.tracking_number IS NULL".into(),
        ),
        (
            "orders, one week",
            format!("created_from={week_from}&created_to={week_to}"),
            week.clone(),
        ),
        (
            "orders, DELIVERED in a week",
            format!("status=DELIVERED&created_from={week_from}&created_to={week_to}"),
            format!(" AND o.status = 'DELIVERED'{week}"),
        ),
        (
            "orders, CANCELLED in FR",
            "status=CANCELLED&country=FR".into(),
            " AND o.status = 'CANCELLED' AND o.shipping_address->>'country' = 'FR'".into(),
        ),
        (
            "orders, REJECTED untracked",
            "status=REJECTED&has_tracking=false".into(),
            " AND o.status = 'REJECTED' AND o.tracking_number IS NULL".into(),
        ),
        (
            "orders of a customer",
            format!("user_id={}", f.customer),
            format!(" AND o.user_id = '{}'", f.customer),
        ),
    ];
    for (name, query, predicates) in lists {
        let path = format!("/orders?limit=20&{}", query.replace('+', "%2B"));
        add(Admin, name, path, Some(list_sql(&predicates)));
    }
    let deep = |(at, id): &(DateTime<Utc>, Uuid)| {
        (
            cursor(&(at, id)),
            format!(" AND (o.created_at, o.id) < ('{}', '{id}')", ts(*at)),
        )
    };
    let (c, p) = deep(&f.middle);
    add(
        Admin,
        "orders, page half-way down",
        format!("/orders?limit=20&cursor={c}"),
        Some(list_sql(&p)),
    );
    let (c, p) = deep(&f.middle_delivered);
    add(
        Admin,
        "orders, DELIVERED, page deep down",
        format!("/orders?limit=20&status=DELIVERED&cursor={c}"),
        Some(list_sql(&format!(" AND o.status = 'DELIVERED'{p}"))),
    );
    let detail = format!(
        "SELECT (SELECT count(*) FROM order_items i WHERE i.order_id = o.id),
                (SELECT count(*) FROM order_events e WHERE e.order_id = o.id),
                (SELECT count(*) FROM payments p WHERE p.order_id = o.id),
                (SELECT count(*) FROM refunds r WHERE r.order_id = o.id)
           FROM orders o WHERE o.id = '{}'",
        f.order
    );
    let timeline = format!(
        "SELECT t.id FROM timeline_entries t JOIN orders o ON o.id = t.order_id
          WHERE t.id > 0 AND t.order_id = '{}' ORDER BY t.id",
        f.order
    );
    add(
        Admin,
        "order",
        format!("/orders/{}", f.order),
        Some(detail.clone()),
    );
    add(
        Admin,
        "payments",
        "/admin/payments?limit=20".into(),
        Some(payments_sql(None, None)),
    );
    add(
        Admin,
        "payments, refund queue",
        "/admin/payments?limit=20&outcome=refund_required".into(),
        Some(payments_sql(Some("refund_required"), None)),
    );
    add(
        Admin,
        "payments, applied, page half-way down",
        format!(
            "/admin/payments?limit=20&outcome=applied&cursor={}",
            cursor(&f.middle_payment)
        ),
        Some(payments_sql(Some("applied"), Some(&f.middle_payment))),
    );
    // The first check after a load verifies every loaded order once (a warm-up request);
    // the timed ones read the catalogue and what changed since.
    add(
        Admin,
        "stock and money reconciliation",
        "/admin/stock-reconciliation".into(),
        None,
    );
    add(
        Admin,
        "dead letters (NATS)",
        "/admin/dead-letters?limit=20".into(),
        None,
    );
    add(
        Admin,
        "stock ledger",
        format!("/products/{}/stock-adjustments?limit=20", f.product),
        Some(format!(
            "SELECT id FROM stock_adjustments WHERE product_id = '{}'
                       ORDER BY created_at, id LIMIT 21",
            f.product
        )),
    );
    add(
        Admin,
        "products",
        "/products?limit=20".into(),
        Some("SELECT id FROM products WHERE archived_at IS NULL ORDER BY name, id LIMIT 21".into()),
    );
    add(Admin, "product", format!("/products/{}", f.product), None);
    add(
        Admin,
        "users",
        "/users?limit=20".into(),
        Some("SELECT id FROM users ORDER BY created_at, id LIMIT 21".into()),
    );
    add(Admin, "user", format!("/users/{}", f.customer), None);
    add(
        Customer,
        "my orders",
        "/orders?limit=20".into(),
        Some(list_sql(&format!(" AND o.user_id = '{}'", f.customer))),
    );
    add(
        Customer,
        "my orders, DELIVERED",
        "/orders?limit=20&status=DELIVERED".into(),
        Some(list_sql(&format!(
            " AND o.user_id = '{}' AND o.status = 'DELIVERED'",
            f.customer
        ))),
    );
    let (c, p) = deep(&f.customer_fifth);
    add(
        Customer,
        "my orders, page 2 (5 a page)",
        format!("/orders?limit=5&cursor={c}"),
        Some(list_sql(&format!(" AND o.user_id = '{}'{p}", f.customer))),
    );
    add(
        Customer,
        "my order",
        format!("/orders/{}", f.order),
        Some(detail),
    );
    add(Customer, "me", "/users/me".into(), None);
    for reader in [Admin, Customer] {
        reads.push(Read {
            reader,
            name: "order's timeline (events, Last-Event-ID: 0)".into(),
            path: format!("/orders/{}/events", f.order),
            last_event_id: Some(0),
            explain: Some(timeline.clone()),
        });
    }
    reads
}

/// A read timed: the median and the slowest request, and how many items a page held (events
/// for a stream).
pub struct Timed {
    pub p50: Duration,
    pub max: Duration,
    pub items: Option<usize>,
}

/// Times `read`: `warm` requests first (past the five after which PostgreSQL may switch a
/// prepared statement to a generic plan), then `n`.
pub async fn time(
    api: &Api,
    token: &str,
    read: &Read,
    warm: usize,
    n: usize,
) -> anyhow::Result<Timed> {
    let mut items = None;
    let mut took = Vec::with_capacity(n);
    for i in 0..warm + n {
        let mut req = api.http.get(api.url(&read.path)).bearer_auth(token);
        if let Some(id) = read.last_event_id {
            req = req.header("last-event-id", id.to_string());
        }
        let started = Instant::now();
        let res = tokio::time::timeout(Duration::from_secs(10), async {
            let res = req.send().await?;
            let status = res.status();
            let body = res.bytes().await?;
            anyhow::Ok((status, body))
        })
        .await
        .with_context(|| format!("{} did not finish within 10 s", read.path))??;
        if !res.0.is_success() {
            anyhow::bail!(
                "{} answered {}: {}",
                read.path,
                res.0,
                String::from_utf8_lossy(&res.1)
            );
        }
        if i >= warm {
            took.push(started.elapsed());
        }
        if i == 0 {
            items = count(&res.1);
        }
    }
    took.sort();
    Ok(Timed {
        p50: took[took.len() / 2],
        max: took[took.len() - 1],
        items,
    })
}

/// Items of a page (`items`), or events of a stream.
fn count(body: &[u8]) -> Option<usize> {
    if let Ok(page) = serde_json::from_slice::<Value>(body) {
        return page["items"].as_array().map(Vec::len);
    }
    let text = String::from_utf8_lossy(body);
    Some(text.matches("\nevent: ").count() + usize::from(text.starts_with("event: ")))
}
