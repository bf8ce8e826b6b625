//! Stock is conserved through everything that moves it, and the reconciliation says where it
//! is not.

use crate::helpers::{Shop, id_of, order_of, spawn_app};
use common::domain::Role;
use serde_json::Value;
use std::time::Duration;

#[tokio::test]
async fn stock_is_conserved_through_a_random_mix_of_placements_cancellations_payments_expiries_and_adjustments()
 {
    let shop = Shop::around(spawn_app().await).await;
    shop.start_workers(shop.env.config_with(&[
        ("RESERVATION_TTL_SECS", "2"),
        ("EXPIRY_SWEEP_INTERVAL_MS", "200"),
    ]))
    .await;
    let mut products = Vec::new();
    for i in 0..4 {
        products.push(shop.products().create(&format!("P{i}"), 100 + i, 25).await);
    }
    let mut customers = Vec::new();
    for _ in 0..12 {
        customers.push(shop.create_user(Role::Client).await);
    }
    let pick = || products[rand::random::<u32>() as usize % products.len()];

    // Placements, concurrently: random two-line orders.
    let placements = (0..48).map(|n| {
        let customer = &customers[n % customers.len()];
        let body = order_of(&[
            (pick(), 1 + rand::random::<i32>().rem_euclid(4)),
            (pick(), 1 + rand::random::<i32>().rem_euclid(3)),
        ]);
        let shop = &shop;
        async move {
            let res = shop
                .orders()
                .place(customer, &body, &[("prefer", "wait=10")])
                .await;
            let order: Value = res.json().await.unwrap();
            (customer, order)
        }
    });
    let placed = futures::future::join_all(placements).await;

    // Then, for each order, one random fate; some left alone to expire.
    let fates = placed.iter().enumerate().map(|(n, (customer, order))| {
        let shop = &shop;
        async move {
            let id = id_of(order);
            match n % 6 {
                0 => {
                    shop.orders().cancel(customer, &id, &[]).await;
                }
                1 => {
                    let total = order["total"].as_i64().unwrap_or(0);
                    shop.payments()
                        .succeeded(&id, total, &format!("ok-{n}"))
                        .await;
                }
                2 => shop.payments().failed(&id, 1, &format!("ko-{n}")).await,
                3 => {
                    shop.orders().cancel(&shop.admin, &id, &[]).await;
                }
                4 => shop.payments().succeeded(&id, 1, &format!("bad-{n}")).await,
                _ => {}
            }
        }
    });
    futures::future::join_all(fates).await;

    // Stock adjustments from a warehouse system over the bus, racing the orders' fates (one
    // of them may be refused for taking stock below zero: it is dead-lettered, not applied).
    for (i, p) in products.iter().enumerate() {
        let delta = if i % 2 == 0 { 7 } else { -3 };
        let reference = format!("count-{i}");
        shop.products()
            .warehouse_adjusts(
                *p,
                delta,
                ("count", &reference),
                &format!("adjustment:{reference}"),
            )
            .await;
    }
    // Concurrent stock adjustments by staff too.
    for (i, p) in products.iter().enumerate() {
        let delta = if i % 2 == 0 { 5 } else { -1 };
        let res = shop
            .products()
            .adjust(&shop.admin, &p.to_string(), delta, "recount")
            .await;
        assert!(
            res.status().is_success() || res.status() == 409,
            "{}",
            res.status()
        );
    }

    // Quiescence: nothing pending, every unpaid reservation expired, every message handled.
    common::testing::eventually(
        Duration::from_secs(40),
        "orders settled and unpaid ones expired",
        || async {
            let open: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM orders WHERE status IN ('PENDING', 'CONFIRMED')",
            )
            .fetch_one(&shop.state.db)
            .await
            .ok()?;
            (open == 0).then_some(())
        },
    )
    .await;
    shop.bus().quiescent().await;

    let report = shop.payments().reconciliation(&shop.admin).await;
    assert_eq!(report["consistent"], true, "{report}");
    assert_eq!(report["products_checked"], 4);
    crate::reconciliation::assert_balances_match_history(&shop.state.db).await;
    assert_eq!(
        shop.count("SELECT count(*) FROM products WHERE stock < 0")
            .await,
        0
    );
    let statuses: Vec<String> =
        sqlx::query_scalar("SELECT DISTINCT status::text FROM orders ORDER BY 1")
            .fetch_all(&shop.state.db)
            .await
            .unwrap();
    assert!(statuses.contains(&"CANCELLED".to_owned()), "{statuses:?}");
}

#[tokio::test]
async fn the_reconciliation_reports_drift_and_where_to_look() {
    let shop = Shop::around(spawn_app().await).await;
    let p = shop.products().create("P", 100, 10).await;
    let clean = shop.payments().reconciliation(&shop.admin).await;
    assert_eq!(clean["consistent"], true);

    // Stock vanishing outside any recorded path.
    sqlx::query("UPDATE products SET stock = 7 WHERE id = $1")
        .bind(p)
        .execute(&shop.state.db)
        .await
        .unwrap();

    let report = shop.payments().reconciliation(&shop.admin).await;
    assert_eq!(report["consistent"], false);
    assert_eq!(report["drift"][0]["product_id"], p.to_string());
    assert_eq!(report["drift"][0]["difference"], 3);
    assert!(report["hint"].as_str().unwrap().contains("dead-letters"));
}
