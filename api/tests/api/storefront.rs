//! The storefront example (`examples/storefront`) in a real browser: headless Chromium driven by
//! playwright-core (`examples/storefront/browser-test/journey.mjs`), against the real api and
//! workers, with the page served from a trusted origin and from one that is not.
//! `scripts/test` installs what the browser test needs (Debian's chromium, npm's playwright-core).

use crate::helpers::{TestApp, spawn_app_with};
use axum::response::Html;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::Duration;

const ADMIN_EMAIL: &str = "admin@shop.example";
const ADMIN_PASSWORD: &str = "staff password 123";
const CUSTOMER_EMAIL: &str = "ann@example.com";
const CUSTOMER_PASSWORD: &str = "correct horse battery";

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/storefront")
}

/// Serves the storefront page on a port of its own; returns its origin.
async fn serve_page() -> String {
    let page = std::fs::read_to_string(examples().join("index.html")).expect("the page");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new().route("/", axum::routing::get(move || async { Html(page) }));
    tokio::spawn(async move { axum::serve(listener, app).await });
    origin
}

/// Registers the customer the journey logs in as.
async fn register_customer(app: &TestApp) {
    let res = app
        .register_with(json!({"email": CUSTOMER_EMAIL, "password": CUSTOMER_PASSWORD}))
        .await;
    assert_eq!(res.status(), 201);
}

#[tokio::test]
async fn the_storefront_on_a_trusted_origin_follows_an_order_live_and_another_origin_is_refused() {
    let tools = examples().join("browser-test");
    assert!(
        tools.join("node_modules/playwright-core").is_dir(),
        "playwright-core is missing: run scripts/test, or `npm ci` in {}",
        tools.display()
    );
    let shop = serve_page().await;
    let foreign = serve_page().await;
    let app = spawn_app_with(&[
        ("TRUSTED_ORIGINS", &shop),
        ("ADMIN_EMAIL", ADMIN_EMAIL),
        ("ADMIN_PASSWORD", ADMIN_PASSWORD),
    ])
    .await;
    app.start_workers(app.env.config()).await;
    app.create_product("Desk lamp", 2500, 5).await;
    register_customer(&app).await;

    let run = tokio::process::Command::new(std::env::var("NODE").unwrap_or_else(|_| "node".into()))
        .arg(tools.join("journey.mjs"))
        .env("API_URL", &app.address)
        .env("SHOP_URL", &shop)
        .env("FOREIGN_URL", &foreign)
        .env("PRODUCT_NAME", "Desk lamp")
        .env("CUSTOMER_EMAIL", CUSTOMER_EMAIL)
        .env("CUSTOMER_PASSWORD", CUSTOMER_PASSWORD)
        .env("ADMIN_EMAIL", ADMIN_EMAIL)
        .env("ADMIN_PASSWORD", ADMIN_PASSWORD)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(150), run)
        .await
        .expect("the browser journey finishes in time")
        .expect("node runs (scripts/test installs it)");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{said}");
    assert!(said.contains("journey passed"), "{said}");
    eprintln!("{said}");
}
