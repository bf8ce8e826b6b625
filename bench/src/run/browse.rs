//! `browse`: anonymous catalogue reads against a bare axum handler.

use super::shared::{Run, describe};
use crate::rss;
use std::fmt::Write as _;
use std::sync::Arc;
pub async fn section(ctx: &Run, out: &mut String) -> anyhow::Result<()> {
    let products: Vec<uuid::Uuid> =
        sqlx::query_scalar("SELECT id FROM products WHERE archived_at IS NULL LIMIT 500")
            .fetch_all(&ctx.db)
            .await
            .unwrap_or_default();
    let products = if products.is_empty() {
        ctx.api
            .create_products(&ctx.admin, ctx.options.products, 1000, "browse")
            .await?
    } else {
        products
    };
    let half = ctx.options.duration / 2;
    let cpu = rss::CpuMeter::start(&ctx.processes);
    let lists =
        crate::browse::browse_lists(Arc::clone(&ctx.api), ctx.options.concurrency, half).await;
    let cpu_lists = cpu.report(lists.ran.elapsed, lists.stats.accepted);
    let details = crate::browse::browse_details(
        Arc::clone(&ctx.api),
        Arc::new(products),
        ctx.options.concurrency,
        half,
    )
    .await;
    let (bare, size) = crate::browse::baseline(&ctx.api, ctx.options.concurrency, half).await?;
    let list_rps = lists.stats.accepted as f64 / lists.ran.elapsed.as_secs_f64();
    let bare_rps = bare.stats.accepted as f64 / bare.ran.elapsed.as_secs_f64();
    let _ = writeln!(
        out,
        "\n== browse (anonymous, {} clients)",
        ctx.options.concurrency
    );
    let _ = writeln!(out, "  list (filters, sorts, limit 20-50)");
    describe(out, &lists, &["200"]);
    let _ = writeln!(out, "  CPU (per request)   {cpu_lists}");
    let _ = writeln!(out, "  detail");
    describe(out, &details, &["200"]);
    let _ = writeln!(
        out,
        "  bare axum, same {size}-byte list page from a fixed buffer"
    );
    describe(out, &bare, &["200"]);
    let _ = writeln!(
        out,
        "  list vs bare axum   {:.2}x (target >= 0.7x)",
        list_rps / bare_rps.max(1e-9)
    );
    Ok(())
}
