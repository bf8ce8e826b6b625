//! `flash-sale`: many one-unit orders for the last units of one product.

use super::shared::{Run, describe};
use crate::scenarios;
use std::fmt::Write as _;
use std::sync::Arc;
pub async fn section(ctx: &Run, out: &mut String) -> anyhow::Result<()> {
    eprintln!(
        "flash-sale: registering {} customers",
        ctx.options.flash_clients
    );
    let customers = Arc::new(
        ctx.api
            .register_customers(ctx.options.flash_clients, "flash")
            .await?,
    );
    let product = ctx
        .api
        .create_products(&ctx.admin, 1, ctx.options.flash_stock, "flash")
        .await?
        .first()
        .copied()
        .ok_or_else(|| anyhow::anyhow!("no flash-sale product"))?;
    let flash = scenarios::flash_sale(
        Arc::clone(&ctx.api),
        &ctx.db,
        Arc::clone(&customers),
        product,
        ctx.options.flash_clients,
        ctx.options.flash_orders,
    )
    .await?;
    let stock: i32 = sqlx::query_scalar("SELECT stock FROM products WHERE id = $1")
        .bind(product)
        .fetch_one(&ctx.db)
        .await?;
    let _ = writeln!(
        out,
        "\n== flash-sale ({} orders for the last {} units, {} clients, answered 202, or 409 once sold out)",
        ctx.options.flash_orders, ctx.options.flash_stock, ctx.options.flash_clients
    );
    // A 409 is a refusal of a product sold out, at once and recorded nowhere: an answer, not
    // an error.
    describe(out, &flash, &["202", "201", "409"]);
    let _ = writeln!(
        out,
        "  confirmed           {} (target exactly {}), stock left {stock}",
        flash.confirmed, ctx.options.flash_stock
    );
    let _ = writeln!(
        out,
        "  all settled after   {} (target <= 1 s after the first request)",
        flash
            .settled_after
            .map(|d| format!("{:.2} s", d.as_secs_f64()))
            .unwrap_or_else(|| "not within 60 s".into())
    );
    Ok(())
}
