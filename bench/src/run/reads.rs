//! `reads`: every read of an ADMIN and a customer timed on a small store, then again after the
//! store's history is bulk-loaded to millions of orders; each with the ratio and its plan's
//! scans.

use super::shared::Run;
use crate::load;
use crate::reads::{self, Fixture, Reader};
use crate::stats::ms;
use anyhow::Context;
use serde_json::{Value, json};
use std::fmt::Write as _;
use uuid::Uuid;

/// Requests before the timed ones, and timed ones, per read.
const WARM: usize = 6;
const TIMED: usize = 50;

struct Measured {
    timed: reads::Timed,
    scans: Vec<String>,
    pages: Option<u64>,
}

pub async fn section(ctx: &Run, out: &mut String) -> anyhow::Result<()> {
    let o = &ctx.options;
    let customer = ctx
        .api
        .register_customers(1, "reads")
        .await?
        .pop()
        .context("no customer registered")?;
    let product = ctx
        .api
        .create_products(&ctx.admin, 1, 1_000, "reads")
        .await?
        .pop()
        .context("no product created")?;
    for delta in [50, -20, 5] {
        let res = ctx
            .api
            .http
            .post(
                ctx.api
                    .url(&format!("/products/{product}/stock-adjustments")),
            )
            .bearer_auth(&ctx.admin)
            .json(&json!({"delta": delta, "reason": "stock count"}))
            .send()
            .await?;
        anyhow::ensure!(
            res.status().is_success(),
            "stock adjustment answered {}",
            res.status()
        );
    }
    let currency: String = sqlx::query_scalar("SELECT currency FROM products WHERE id = $1")
        .bind(product)
        .fetch_one(&ctx.db)
        .await?;
    let small = o.reads_small.clamp(100, o.reads_orders.max(100));
    eprintln!("reads: loading a small store of {small} orders");
    let first = load::orders(&ctx.db, small, &currency).await?;
    // The reading customer takes over the orders of one loaded customer.
    sqlx::query("UPDATE orders SET user_id = $1 WHERE user_id = md5($2 || ':user:1')::uuid")
        .bind(customer.id)
        .bind(&first.tag)
        .execute(&ctx.db)
        .await?;
    let small_checks = load::reconciliation_cost(&ctx.db).await?;
    let before = measure(ctx, &customer.token, customer.id, product).await?;
    let more = o.reads_orders - small;
    let _ = writeln!(
        out,
        "\n== reads (one request at a time, median of {TIMED} after {WARM})"
    );
    let _ = writeln!(
        out,
        "  small store: {small} orders loaded in {:.1} s",
        first.elapsed.as_secs_f64()
    );
    if more > 0 {
        eprintln!("reads: loading {more} orders more");
        let second = load::orders(&ctx.db, more, &currency).await?;
        let rows: Vec<String> = second
            .rows
            .iter()
            .map(|(table, n, d)| format!("{table} {n} ({:.1} s)", d.as_secs_f64()))
            .collect();
        let _ = writeln!(
            out,
            "  loaded {more} orders in {:.1} s (with VACUUM ANALYZE): {}",
            second.elapsed.as_secs_f64(),
            rows.join(", ")
        );
    }
    let large_checks = load::reconciliation_cost(&ctx.db).await?;
    let _ = writeln!(
        out,
        "  reconciliation right after the load (reads each loaded order once): {} small, {} large; \
         then with nothing changed: {} small, {} large (target: the same)",
        ms(small_checks.0),
        ms(large_checks.0),
        ms(small_checks.1),
        ms(large_checks.1)
    );
    let after = measure(ctx, &customer.token, customer.id, product).await?;
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM orders")
        .fetch_one(&ctx.db)
        .await?;
    let fixture = Fixture::read(&ctx.db, customer.id, product).await?;
    let _ = writeln!(
        out,
        "  {:<8} {:<45} {:>9} {:>9} {:>7} {:>9} {:>7} {:>9}  plan at {total} orders",
        "who", "read", "small", "large", "ratio", "max", "items", "pages"
    );
    let mut worst = 0.0f64;
    for ((read, b), a) in reads::catalogue(&fixture).iter().zip(&before).zip(&after) {
        let plan = if a.scans.is_empty() {
            "-".to_owned()
        } else {
            a.scans.join(", ")
        };
        let pages = |m: &Measured| m.pages.map_or("-".to_owned(), |n| n.to_string());
        let pages = format!("{}/{}", pages(b), pages(a));
        let (b, a) = (&b.timed, &a.timed);
        let ratio = a.p50.as_secs_f64() / b.p50.as_secs_f64().max(1e-6);
        worst = worst.max(ratio);
        let who = match read.reader {
            Reader::Admin => "ADMIN",
            Reader::Customer => "customer",
        };
        let items = |t: &reads::Timed| t.items.map_or("-".to_owned(), |n| n.to_string());
        let items = format!("{}/{}", items(b), items(a));
        let _ = writeln!(
            out,
            "  {who:<8} {:<45} {:>9} {:>9} {:>6.2}x {:>9} {items:>7} {pages:>9}  {plan}",
            read.name,
            ms(b.p50),
            ms(a.p50),
            ratio,
            ms(a.max),
        );
    }
    let _ = writeln!(out, "  worst ratio          {worst:.2}x (target <= 2x)");
    Ok(())
}

/// Every read of the catalogue, timed, with its plan's scans.
async fn measure(
    ctx: &Run,
    customer_token: &str,
    customer: Uuid,
    product: Uuid,
) -> anyhow::Result<Vec<Measured>> {
    let fixture = Fixture::read(&ctx.db, customer, product).await?;
    let mut measured = Vec::new();
    for read in reads::catalogue(&fixture) {
        let token = match read.reader {
            Reader::Admin => ctx.admin.as_str(),
            Reader::Customer => customer_token,
        };
        let timed = reads::time(&ctx.api, token, &read, WARM, TIMED).await?;
        let (scans, pages) = match &read.explain {
            Some(sql) => {
                let (scans, pages) = scans(&ctx.db, sql).await?;
                (scans, Some(pages))
            }
            None => (Vec::new(), None),
        };
        measured.push(Measured {
            timed,
            scans,
            pages,
        });
    }
    Ok(measured)
}

/// The scans of `sql`'s plan, outermost first: `Index Scan orders_status_created`, …
/// and the pages (8 KiB buffers) it touched, run once: a count that machine load does not blur.
async fn scans(db: &sqlx::PgPool, sql: &str) -> anyhow::Result<(Vec<String>, u64)> {
    // The statements are the catalogue's own, with values read from the store.
    let plan: Value = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {sql}"
    )))
    .fetch_one(db)
    .await?;
    let plan = &plan[0]["Plan"];
    let mut out = Vec::new();
    walk(plan, &mut out);
    let pages = ["Shared Hit Blocks", "Shared Read Blocks"]
        .iter()
        .filter_map(|k| plan[*k].as_u64())
        .sum();
    Ok((out, pages))
}

fn walk(node: &Value, out: &mut Vec<String>) {
    let kind = node["Node Type"].as_str().unwrap_or("?");
    if kind.contains("Scan") && kind != "Subquery Scan" {
        let on = node["Index Name"]
            .as_str()
            .or(node["Relation Name"].as_str())
            .unwrap_or("");
        let scan = format!("{kind} {on}");
        if !out.contains(&scan) {
            out.push(scan);
        }
    }
    for child in node["Plans"].as_array().into_iter().flatten() {
        walk(child, out);
    }
}
