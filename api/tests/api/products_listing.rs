//! Listing the catalogue: paging in every sort order without gaps or repeats, search, the
//! price and stock filters, and malformed parameters.

use crate::helpers::{TestApp, assert_problem, spawn_app};
use chrono::{DateTime, Utc};
use common::domain::Role;
use serde_json::{Value, json};
use std::collections::HashSet;
use uuid::Uuid;

/// The ids of `items`, in order.
pub fn ids(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_owned())
        .collect()
}

const NAMES: [&str; 7] = [
    "apple", "bread", "cheese", "dates", "eggs", "flour", "grapes",
];

/// A new app with 57 products, inserted in three statements so that created_at, name and
/// price all have ties.
async fn seeded_catalogue() -> TestApp {
    let app = spawn_app().await;
    for (start, end) in [(0, 20), (20, 40), (40, 57)] {
        sqlx::query(
            "INSERT INTO products (id, name, description, price, currency, stock, initial_stock)
             SELECT gen_random_uuid(), ($3::text[])[1 + i % 7], 'item ' || i, (i % 5) * 100,
                    'USD', i % 4, i % 4
             FROM generate_series($1::int, $2::int - 1) AS i",
        )
        .bind(start)
        .bind(end)
        .bind(NAMES.as_slice())
        .execute(&app.state.db)
        .await
        .unwrap();
    }
    app
}

/// A new app whose catalogue holds `products`, created through the api by an ADMIN.
async fn catalogue_of(products: &[Value]) -> TestApp {
    let app = spawn_app().await;
    let admin = app.create_user(Role::Admin).await;
    for product in products {
        app.products().create_via_api(&admin, product.clone()).await;
    }
    app
}

fn key_order(sort: &str, a: &Value, b: &Value) -> std::cmp::Ordering {
    let field = sort.trim_start_matches('-');
    let primary = match field {
        "price" => a["price"].as_i64().cmp(&b["price"].as_i64()),
        "name" => a["name"].as_str().cmp(&b["name"].as_str()),
        _ => {
            let at = |v: &Value| {
                v["created_at"]
                    .as_str()
                    .unwrap()
                    .parse::<DateTime<Utc>>()
                    .unwrap()
            };
            at(a).cmp(&at(b))
        }
    };
    let id = |v: &Value| Uuid::parse_str(v["id"].as_str().unwrap()).unwrap();
    let order = primary.then(id(a).cmp(&id(b)));
    if sort.starts_with('-') {
        order.reverse()
    } else {
        order
    }
}

async fn assert_pages_visit_every_product_once(sort: &str) {
    let app = seeded_catalogue().await;
    let all = app
        .products()
        .list_all(&format!("sort={sort}&limit=100"))
        .await;
    assert_eq!(all.len(), 57);

    let paged = app
        .products()
        .list_all(&format!("sort={sort}&limit=10"))
        .await;
    let paged_ids = ids(&paged);
    assert_eq!(paged_ids.len(), 57, "no gaps");
    assert_eq!(
        paged_ids.iter().collect::<HashSet<_>>().len(),
        57,
        "no repeats"
    );

    let mut expected = paged.clone();
    expected.sort_by(|a, b| key_order(sort, a, b));
    assert_eq!(paged_ids, ids(&expected), "ordered by {sort}, ties by id");
}

#[tokio::test]
async fn paging_by_name_visits_every_product_once_in_order() {
    assert_pages_visit_every_product_once("name").await;
}

#[tokio::test]
async fn paging_by_name_descending_visits_every_product_once_in_order() {
    assert_pages_visit_every_product_once("-name").await;
}

#[tokio::test]
async fn paging_by_price_visits_every_product_once_in_order() {
    assert_pages_visit_every_product_once("price").await;
}

#[tokio::test]
async fn paging_by_price_descending_visits_every_product_once_in_order() {
    assert_pages_visit_every_product_once("-price").await;
}

#[tokio::test]
async fn paging_by_creation_visits_every_product_once_in_order() {
    assert_pages_visit_every_product_once("created_at").await;
}

#[tokio::test]
async fn paging_by_creation_descending_visits_every_product_once_in_order() {
    assert_pages_visit_every_product_once("-created_at").await;
}

#[tokio::test]
async fn the_default_page_holds_20_products_and_a_cursor() {
    let app = seeded_catalogue().await;
    let page: Value = app.get("/api/v1/products").await.json().await.unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 20);
    assert!(page["next_cursor"].is_string());
}

#[tokio::test]
async fn paging_with_filters_visits_every_match_once() {
    let app = seeded_catalogue().await;
    let paged = app
        .products()
        .list_all("sort=-price&limit=4&min_price=100&max_price=300&in_stock=true")
        .await;
    let all = app
        .products()
        .list_all("sort=-price&limit=100&min_price=100&max_price=300&in_stock=true")
        .await;
    assert_eq!(ids(&paged), ids(&all));
    assert!(!paged.is_empty());
}

/// The names of the products `query` lists, sorted.
async fn names_listed(app: &TestApp, query: &str) -> Vec<String> {
    let mut names: Vec<String> = app
        .products()
        .list_all(query)
        .await
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn search_matches_name_or_description_ignoring_case() {
    let app = catalogue_of(&[
        json!({"name": "Espresso Cup", "price": 1}),
        json!({"name": "Mug", "description": "fits a CUP of tea", "price": 1}),
        json!({"name": "Saucer", "description": "flat", "price": 1}),
    ])
    .await;

    assert_eq!(names_listed(&app, "q=cup").await, ["Espresso Cup", "Mug"]);
}

#[tokio::test]
async fn search_treats_wildcards_literally() {
    let app = catalogue_of(&[
        json!({"name": "50% off sticker", "price": 1}),
        json!({"name": "500 sheets", "price": 1}),
    ])
    .await;

    assert_eq!(names_listed(&app, "q=50%25").await, ["50% off sticker"]);
    assert!(names_listed(&app, "q=_").await.is_empty());
}

#[tokio::test]
async fn the_price_range_is_inclusive() {
    let app = seeded_catalogue().await;
    let found = app.products().list_all("min_price=100&max_price=200").await;
    assert!(!found.is_empty());
    assert!(
        found
            .iter()
            .all(|p| (100..=200).contains(&p["price"].as_i64().unwrap()))
    );
    // Prices are (i % 5) * 100 for i in 0..57: 100 and 200 each appear 11 times.
    assert_eq!(found.len(), 23);
}

#[tokio::test]
async fn in_stock_filters_on_available_stock() {
    let app = seeded_catalogue().await;
    let with = app.products().list_all("in_stock=true").await;
    let without = app.products().list_all("in_stock=false").await;
    assert!(with.iter().all(|p| p["stock"].as_i64().unwrap() > 0));
    assert!(without.iter().all(|p| p["stock"].as_i64().unwrap() == 0));
    assert_eq!(with.len() + without.len(), 57);
    assert_eq!(without.len(), 15);
}

#[tokio::test]
async fn malformed_list_parameters_are_a_400() {
    let app = spawn_app().await;
    for query in [
        "sort=colour",
        "min_price=cheap",
        "in_stock=maybe",
        "limit=ten",
        "colour=red",
        "cursor=%25%25",
    ] {
        assert_problem(app.get(&format!("/api/v1/products?{query}")).await, 400).await;
    }
}

#[tokio::test]
async fn a_cursor_from_another_sort_order_is_a_400() {
    let app = seeded_catalogue().await;
    let page: Value = app
        .get("/api/v1/products?sort=price&limit=5")
        .await
        .json()
        .await
        .unwrap();
    let cursor = page["next_cursor"].as_str().unwrap();
    let res = app
        .get(&format!(
            "/api/v1/products?sort=name&limit=5&cursor={cursor}"
        ))
        .await;
    assert_problem(res, 400).await;
}
