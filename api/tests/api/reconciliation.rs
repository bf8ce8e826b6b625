//! The reconciliation reads running balances and the orders changed since its previous check,
//! not the history: a change made by hand in SQL to a reservation, a ledger entry or a payment
//! is still found, stays reported until it is put right, and an order verified once is not
//! read again until it changes.

use crate::helpers::PaidShop;
use serde_json::Value;
use sqlx::PgPool;

/// Asserts that the running stock balances, once a check folded the journal into them, equal
/// the sums of the whole ledger and of every reservation held: what the triggers keep is what
/// reading the history would give.
pub async fn assert_balances_match_history(db: &PgPool) {
    common::conservation::check(db).await.unwrap();
    let differing: Vec<(uuid::Uuid, i64, i64, i64, i64, i64, i64)> = sqlx::query_as(
        "WITH history AS (
             SELECT p.id,
                    COALESCE((SELECT sum(delta) FROM stock_adjustments a
                               WHERE a.product_id = p.id AND a.kind = 'adjustment'), 0)::int8 AS adjusted,
                    COALESCE((SELECT sum(delta) FROM stock_adjustments a
                               WHERE a.product_id = p.id AND a.kind = 'return'), 0)::int8 AS restocked,
                    COALESCE((SELECT sum(quantity) FROM reservations r
                               WHERE r.product_id = p.id AND r.state <> 'released'), 0)::int8 AS held
               FROM products p
         )
         SELECT h.id, h.adjusted, COALESCE(b.adjusted, 0), h.restocked, COALESCE(b.restocked, 0),
                h.held, COALESCE(b.held, 0)
           FROM history h LEFT JOIN stock_balances b ON b.product_id = h.id
          WHERE (h.adjusted, h.restocked, h.held)
                <> (COALESCE(b.adjusted, 0), COALESCE(b.restocked, 0), COALESCE(b.held, 0))",
    )
    .fetch_all(db)
    .await
    .unwrap();
    assert!(
        differing.is_empty(),
        "balances differ from the history (id, adjusted, balance, restocked, balance, held, \
         balance): {differing:?}"
    );
}

async fn execute(db: &PgPool, sql: &'static str, order: &str) {
    sqlx::query(sql).bind(order).execute(db).await.unwrap();
}

#[tokio::test]
async fn a_reservation_deleted_by_hand_is_found_stays_reported_and_clears_once_put_back() {
    let paid = PaidShop::open("psp-rec-1").await;
    let db = &paid.state.db;
    let first = paid.payments().reconciliation(&paid.admin).await;
    assert_eq!(first["consistent"], true, "{first}");
    let unchanged = paid.payments().reconciliation(&paid.admin).await;
    assert_eq!(unchanged["consistent"], true, "{unchanged}");
    assert_eq!(
        unchanged["orders_checked"], 0,
        "nothing changed, nothing read again: {unchanged}"
    );

    execute(
        db,
        "DELETE FROM reservations WHERE order_id = $1::uuid",
        &paid.order,
    )
    .await;

    for _ in 0..2 {
        let report: Value = paid.payments().reconciliation(&paid.admin).await;
        assert_eq!(report["consistent"], false, "{report}");
        let drift = &report["drift"][0];
        assert_eq!(drift["name"], "Mug", "{report}");
        assert_eq!(drift["held"], 0, "{report}");
        assert_eq!(drift["difference"], 1, "one unit unaccounted for: {report}");
        assert_eq!(
            drift["mismatched_orders"], 1,
            "the paid order holds nothing: {report}"
        );
        assert_eq!(report["orders_checked"], 1, "{report}");
    }

    execute(
        db,
        "INSERT INTO reservations (order_id, product_id, quantity)
         SELECT order_id, product_id, quantity FROM order_items WHERE order_id = $1::uuid",
        &paid.order,
    )
    .await;
    let put_back = paid.payments().reconciliation(&paid.admin).await;
    assert_eq!(put_back["consistent"], true, "{put_back}");
    let after = paid.payments().reconciliation(&paid.admin).await;
    assert_eq!(after["orders_checked"], 0, "{after}");
    assert_balances_match_history(db).await;
}

#[tokio::test]
async fn a_payment_or_a_ledger_entry_changed_by_hand_is_found() {
    let paid = PaidShop::open("psp-rec-2").await;
    let db = &paid.state.db;
    let cup = paid.products().create("Cup", 300, 10).await;
    let res = paid
        .products()
        .adjust(&paid.admin, &cup.to_string(), 4, "delivery")
        .await;
    assert!(res.status().is_success(), "{}", res.status());
    assert_eq!(
        paid.payments().reconciliation(&paid.admin).await["consistent"],
        true
    );

    execute(
        db,
        "UPDATE payments SET amount = 1000 WHERE order_id = $1::uuid",
        &paid.order,
    )
    .await;
    sqlx::query("UPDATE stock_adjustments SET delta = delta + 2 WHERE product_id = $1")
        .bind(cup)
        .execute(db)
        .await
        .unwrap();

    let report = paid.payments().reconciliation(&paid.admin).await;
    assert_eq!(report["consistent"], false, "{report}");
    let money = &report["money_drift"][0];
    assert_eq!(money["order_id"], paid.order.as_str(), "{report}");
    assert_eq!(money["payments_applied"], 1000, "{report}");
    assert_eq!(money["difference"], 250, "{report}");
    let stock = &report["drift"][0];
    assert_eq!(stock["product_id"], cup.to_string(), "{report}");
    assert_eq!(stock["adjustments"], 6, "{report}");
    assert_eq!(stock["difference"], 2, "{report}");
    assert_balances_match_history(db).await;
}

#[tokio::test]
async fn a_change_made_with_the_triggers_off_is_found_by_a_check_from_history() {
    let paid = PaidShop::open("psp-rec-3").await;
    let db = &paid.state.db;
    assert_eq!(
        paid.payments().reconciliation(&paid.admin).await["consistent"],
        true
    );
    // A repair or restore that bypasses the triggers, as `session_replication_role = replica`
    // does: the journal never hears of it.
    let mut tx = db.begin().await.unwrap();
    sqlx::query("SET LOCAL session_replication_role = replica")
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query("DELETE FROM reservations WHERE order_id = $1::uuid")
        .bind(&paid.order)
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let usual = paid.payments().reconciliation(&paid.admin).await;
    assert_eq!(
        usual["consistent"], true,
        "the journal cannot see it: {usual}"
    );

    let full = paid
        .read(&paid.admin, "/api/v1/admin/stock-reconciliation?full=true")
        .await;

    assert_eq!(full["consistent"], false, "{full}");
    assert_eq!(full["drift"][0]["held"], 0, "{full}");
    assert_eq!(full["drift"][0]["difference"], 1, "{full}");
    assert_eq!(full["drift"][0]["mismatched_orders"], 1, "{full}");
    let res = paid
        .get_as(&paid.admin, "/api/v1/admin/stock-reconciliation?full=maybe")
        .await;
    assert_eq!(res.status(), 400);
    assert_balances_match_history(db).await;
}
