//! Stock adjustments from warehouse and ERP systems (`inventory.cmd.adjust`, inventory
//! worker): receipts, counts, breakage, recorded in the same ledger as the api's
//! `POST /products/{id}/stock-adjustments`, in one transaction per batch.
//!
//! Idempotent by the publisher's `reference` (the message id is `adjustment:<reference>`): an
//! adjustment is applied once however often it arrives; a reference reused for another
//! adjustment is refused. Stock never goes below zero: an adjustment that would take it there,
//! or names an unknown or archived product, is dead-lettered with the reason.

use crate::announce::{Stepped, announce};
use crate::consumer::{Failure, Handled};
use crate::context::Context;
use crate::dispatch::Incoming;
use common::messages::AdjustStock;
use std::collections::HashMap;
use uuid::Uuid;

/// UUID v5 namespace of the ledger ids of adjustments received over the bus.
const LEDGER_IDS: Uuid = Uuid::from_u128(0x3a1f_6c2e_8d4b_4f7a_9e05_b2c7_d1e8_a640);

/// An adjustment, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Adjustment {
    pub product_id: Uuid,
    pub delta: i32,
    pub reason: String,
    pub reference: String,
}

/// `inventory.cmd.adjust`, received together.
pub async fn adjust(ctx: Context, commands: Vec<Incoming<AdjustStock>>) -> Vec<Handled> {
    let results = crate::batch::checked(
        &commands,
        |c| checked(&c.message),
        |some| apply_all(&ctx, some),
    )
    .await;
    announce(&ctx, &commands, results).await
}

/// The adjustment asked for: a delta other than 0 (its reason and reference are bounded by
/// their types, checked as the command decoded).
fn checked(command: &AdjustStock) -> Result<Adjustment, Failure> {
    if command.delta == 0 {
        return Err(Failure::permanent("delta must not be 0"));
    }
    Ok(Adjustment {
        product_id: command.product_id,
        delta: command.delta,
        reason: command.reason.to_string(),
        reference: command.reference.to_string(),
    })
}

struct Locked {
    id: Uuid,
    name: String,
    stock: i32,
    archived: bool,
}

/// Applies the adjustments in one transaction, in order, each against the stock the ones
/// before it left.
async fn apply_all(
    ctx: &Context,
    adjustments: Vec<Adjustment>,
) -> Result<Vec<Result<Stepped, Failure>>, Failure> {
    let mut ids: Vec<Uuid> = adjustments.iter().map(|a| a.product_id).collect();
    ids.sort_unstable();
    ids.dedup();
    let references: Vec<&str> = adjustments.iter().map(|a| a.reference.as_str()).collect();
    let mut tx = ctx.db.begin().await?;
    // Locked in id order, as every writer of stock does.
    let mut products: HashMap<Uuid, Locked> = sqlx::query_as!(
        Locked,
        r#"SELECT id, name, stock, archived_at IS NOT NULL AS "archived!"
             FROM products WHERE id = ANY($1) ORDER BY id FOR UPDATE"#,
        &ids,
    )
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .map(|p| (p.id, p))
    .collect();
    let mut applied: HashMap<String, Adjustment> = sqlx::query!(
        r#"SELECT reference AS "reference!", product_id, delta, reason FROM stock_adjustments
            WHERE reference = ANY($1)"#,
        &references as &[&str],
    )
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .map(|r| {
        let adjustment = Adjustment {
            product_id: r.product_id,
            delta: r.delta,
            reason: r.reason,
            reference: r.reference.clone(),
        };
        (r.reference, adjustment)
    })
    .collect();

    let mut rows = (vec![], vec![], vec![], vec![], vec![], vec![]);
    let results: Vec<Result<Stepped, Failure>> = adjustments
        .iter()
        .map(|a| {
            if let Some(before) = applied.get(&a.reference) {
                return if before == a {
                    Ok(Stepped::default())
                } else {
                    Err(Failure::permanent(format!(
                        "reference {:?} is already used by another adjustment",
                        a.reference
                    )))
                };
            }
            let product = products.get_mut(&a.product_id).ok_or_else(|| {
                Failure::permanent(format!("product {} does not exist", a.product_id))
            })?;
            if product.archived {
                return Err(Failure::permanent(format!(
                    "product {} ({}) is archived",
                    product.id, product.name
                )));
            }
            let after = product
                .stock
                .checked_add(a.delta)
                .filter(|after| *after >= 0)
                .ok_or_else(|| {
                    Failure::permanent(format!(
                        "stock of product {} ({}) would go below zero: {} available, delta {}",
                        product.id, product.name, product.stock, a.delta
                    ))
                })?;
            product.stock = after;
            applied.insert(a.reference.clone(), a.clone());
            rows.0
                .push(Uuid::new_v5(&LEDGER_IDS, a.reference.as_bytes()));
            rows.1.push(a.product_id);
            rows.2.push(a.delta);
            rows.3.push(a.reason.clone());
            rows.4.push(after);
            rows.5.push(a.reference.clone());
            Ok(Stepped {
                stock: vec![a.product_id],
                ..Stepped::default()
            })
        })
        .collect();
    if !rows.0.is_empty() {
        let (ledger_ids, products_adjusted, deltas, reasons, stock_after, refs) = rows;
        // The ledger rows, and each product's stock as the last of its adjustments left it
        // (the rows are locked, so the figures computed here are the current ones).
        sqlx::query!(
            r#"
            WITH v AS (
                SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::int4[], $4::text[], $5::int4[],
                                     $6::text[])
                    WITH ORDINALITY AS v(id, product_id, delta, reason, stock_after, reference, n)
            ), ledger AS (
                INSERT INTO stock_adjustments (id, product_id, delta, reason, stock_after, reference)
                SELECT id, product_id, delta, reason, stock_after, reference FROM v
            )
            UPDATE products p SET stock = last.stock_after
              FROM (SELECT DISTINCT ON (product_id) product_id, stock_after
                      FROM v ORDER BY product_id, n DESC) last
             WHERE p.id = last.product_id
            "#,
            &ledger_ids,
            &products_adjusted,
            &deltas,
            &reasons,
            &stock_after,
            &refs,
        )
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(results)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn command(delta: i32, reason: &str, reference: &str) -> serde_json::Value {
        serde_json::json!({"product_id": Uuid::nil(), "delta": delta, "reason": reason,
            "reference": reference})
    }

    fn decoded(json: serde_json::Value) -> Result<AdjustStock, String> {
        serde_json::from_value(json).map_err(|e| e.to_string())
    }

    #[test]
    fn an_adjustment_needs_a_delta_a_reason_and_a_reference() {
        let zero = decoded(command(0, "r", "x")).expect("decodes");
        assert!(checked(&zero).is_err());
        assert!(decoded(command(1, "  ", "x")).is_err());
        assert!(decoded(command(1, "r", "")).is_err());
        assert!(decoded(command(1, &"r".repeat(501), "x")).is_err());
        assert!(decoded(command(1, "r", &"x".repeat(201))).is_err());
        let ok =
            checked(&decoded(command(-3, " broken ", "count-7")).expect("decodes")).expect("valid");
        assert_eq!(ok.reason, "broken");
        assert_eq!(ok.reference, "count-7");
    }
}
