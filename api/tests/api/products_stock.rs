//! Stock adjustments and the ledger: who may adjust, what is recorded, the floor at zero
//! under concurrency, and conservation (initial stock + ledger = stock + reservations).

use crate::helpers::{assert_problem, catalogue, ledger_path, spawn_app};
use common::domain::Role;
use serde_json::{Value, json};
use uuid::Uuid;

#[tokio::test]
async fn an_adjustment_changes_stock_and_is_recorded_with_who_and_why() {
    let shop = catalogue().await;

    let res = shop.adjust(-3, "  broken in the warehouse ").await;

    assert_eq!(res.status(), 201);
    let entry: Value = res.json().await.unwrap();
    assert_eq!(entry["delta"], -3);
    assert_eq!(entry["reason"], "broken in the warehouse");
    assert_eq!(entry["actor_id"], shop.admin.id.to_string());
    assert_eq!(entry["stock_after"], 37);
    assert_eq!(entry["product_id"], shop.id.as_str());
    assert!(entry["created_at"].is_string());
    assert_eq!(shop.cup().await["stock"], 37);
}

#[tokio::test]
async fn an_adjustment_below_zero_is_a_409_naming_the_available_stock() {
    let shop = catalogue().await;

    let res = shop.adjust(-41, "recount").await;

    let body = assert_problem(res, 409).await;
    assert_eq!(body["available"], 40);
    assert!(body["detail"].as_str().unwrap().contains("40"), "{body}");
    assert_eq!(
        shop.stock_and_ledger().await,
        (40, 40, 0),
        "nothing changed or recorded"
    );
}

#[tokio::test]
async fn removing_exactly_the_available_stock_is_allowed() {
    let shop = catalogue().await;

    assert_eq!(shop.adjust(-40, "sold at the fair").await.status(), 201);

    assert_eq!(shop.stock_and_ledger().await.0, 0);
}

#[tokio::test]
async fn adjusting_an_unknown_product_is_a_404() {
    let app = spawn_app().await;
    let admin = app.create_user(Role::Admin).await;

    let res = app
        .products()
        .adjust(&admin, &Uuid::new_v4().to_string(), 1, "x")
        .await;

    assert_problem(res, 404).await;
}

#[tokio::test]
async fn only_admins_adjust_stock() {
    let shop = catalogue().await;
    let client = shop.app.create_user(Role::Client).await;

    assert_problem(
        shop.app.products().adjust(&client, &shop.id, 1, "x").await,
        403,
    )
    .await;
    let anonymous = shop
        .app
        .post(&ledger_path(&shop.id), &json!({"delta": 1, "reason": "x"}))
        .await;
    assert_problem(anonymous, 401).await;
}

#[tokio::test]
async fn only_admins_read_the_ledger() {
    let shop = catalogue().await;
    let client = shop.app.create_user(Role::Client).await;
    let path = ledger_path(&shop.id);

    assert_problem(shop.app.get_as(&client, &path).await, 403).await;
    assert_problem(shop.app.get(&path).await, 401).await;
}

#[tokio::test]
async fn the_ledger_pages_oldest_first_without_gaps_or_repeats() {
    let shop = catalogue().await;
    for i in 1..=25 {
        assert_eq!(shop.adjust(i, &format!("delivery {i}")).await.status(), 201);
    }

    let mut deltas = Vec::new();
    let mut query = "limit=10".to_owned();
    let mut pages = 0;
    loop {
        let page = shop
            .app
            .products()
            .ledger_page(&shop.admin, &shop.id, &query)
            .await;
        pages += 1;
        let items = page["items"].as_array().unwrap();
        deltas.extend(items.iter().map(|e| e["delta"].as_i64().unwrap()));
        match page["next_cursor"].as_str() {
            Some(c) => query = format!("limit=10&cursor={c}"),
            None => break,
        }
    }

    assert_eq!(pages, 3);
    assert_eq!(deltas, (1..=25).collect::<Vec<i64>>());
}

#[tokio::test]
async fn the_ledger_of_an_unknown_product_is_a_404() {
    let app = spawn_app().await;
    let admin = app.create_user(Role::Admin).await;

    let res = app
        .get_as(&admin, &ledger_path(&Uuid::new_v4().to_string()))
        .await;

    assert_problem(res, 404).await;
}

#[tokio::test]
async fn concurrent_adjustments_never_lose_an_update() {
    let shop = catalogue().await;
    let requests = (0..50).map(|i| shop.adjust(if i % 2 == 0 { 3 } else { -1 }, "concurrent"));

    let statuses: Vec<u16> = futures::future::join_all(requests)
        .await
        .iter()
        .map(|r| r.status().as_u16())
        .collect();

    assert!(statuses.iter().all(|s| *s == 201), "{statuses:?}");
    let (stock, initial, adjusted) = shop.stock_and_ledger().await;
    assert_eq!(stock, 40 + 25 * 3 - 25);
    assert_eq!(i64::from(initial) + adjusted, i64::from(stock));
}

#[tokio::test]
async fn concurrent_removals_never_take_stock_below_zero_and_refusals_are_not_recorded() {
    let app = spawn_app().await;
    let admin = app.create_user(Role::Admin).await;
    let p = app
        .products()
        .create_via_api(&admin, json!({"name": "Scarce", "price": 100, "stock": 0}))
        .await;
    let id = p["id"].as_str().unwrap().to_owned();
    // 10 units arrive one by one while 20 removals of 3 race for them: at most 3 can succeed.
    let (app, admin, id) = (&app, &admin, &id);
    let requests = (0..30).map(|i| async move {
        let delta = if i % 3 == 0 { 1 } else { -3 };
        let status = app
            .products()
            .adjust(admin, id, delta, "race")
            .await
            .status()
            .as_u16();
        (delta, status)
    });

    let outcomes = futures::future::join_all(requests).await;

    let applied: i64 = outcomes
        .iter()
        .filter(|(_, s)| *s == 201)
        .map(|(d, _)| *d)
        .sum();
    let refused = outcomes.iter().filter(|(_, s)| *s == 409).count();
    assert!(
        outcomes
            .iter()
            .all(|(d, s)| *s == 201 || (*s == 409 && *d < 0)),
        "{outcomes:?}"
    );
    assert!(refused >= 17, "{outcomes:?}");
    let (stock, initial, adjusted) = app.products().stock_and_ledger(id).await;
    assert!(stock >= 0);
    assert_eq!(i64::from(stock), applied);
    assert_eq!(
        i64::from(initial) + adjusted,
        i64::from(stock),
        "ledger matches stock"
    );
    let recorded = app
        .count(&format!(
            "SELECT count(*) FROM stock_adjustments WHERE product_id = '{id}'"
        ))
        .await;
    assert_eq!(recorded as usize, outcomes.len() - refused);
}

#[tokio::test]
async fn adjustments_and_reservations_interleave_without_breaking_conservation() {
    let shop = catalogue().await;
    let uuid = Uuid::parse_str(&shop.id).unwrap();
    // Reservations as the orders work makes them: a guarded decrement of available stock.
    let reservations = (0..20).map(|_| {
        let db = shop.app.state.db.clone();
        async move {
            sqlx::query("UPDATE products SET stock = stock - 2 WHERE id = $1 AND stock >= 2")
                .bind(uuid)
                .execute(&db)
                .await
                .unwrap()
                .rows_affected() as i64
                * 2
        }
    });
    let shop = &shop;
    let adjustments = (0..20).map(|i| async move {
        let delta = if i % 2 == 0 { 2 } else { -3 };
        (
            delta,
            shop.adjust(delta, "interleaved").await.status().as_u16(),
        )
    });

    let (reserved, adjusted) = futures::future::join(
        futures::future::join_all(reservations),
        futures::future::join_all(adjustments),
    )
    .await;

    let reserved: i64 = reserved.iter().sum();
    assert!(
        adjusted.iter().all(|(_, s)| *s == 201 || *s == 409),
        "{adjusted:?}"
    );
    let (stock, initial, ledger) = shop.stock_and_ledger().await;
    assert!(stock >= 0);
    assert_eq!(
        i64::from(initial) + ledger,
        i64::from(stock) + reserved,
        "conservation"
    );
}

#[tokio::test]
async fn the_database_refuses_negative_stock_and_price_whatever_the_code_path() {
    let shop = catalogue().await;
    let uuid = Uuid::parse_str(&shop.id).unwrap();
    for sql in [
        "UPDATE products SET stock = -1 WHERE id = $1",
        "UPDATE products SET price = -1 WHERE id = $1",
    ] {
        let err = sqlx::query(sql)
            .bind(uuid)
            .execute(&shop.app.state.db)
            .await
            .unwrap_err();
        assert!(
            err.as_database_error().unwrap().is_check_violation(),
            "{sql}: {err}"
        );
    }
}
