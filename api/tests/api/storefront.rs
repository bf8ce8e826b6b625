//! The storefront example (`examples/storefront`) in a real browser: its TypeScript built
//! against types generated from the OpenAPI document the api under test serves, then headless
//! Chromium driven by playwright-core (`examples/storefront/browser-test/journey.mjs`) against
//! the real api and workers, with the page served from a trusted origin and from one that is
//! not. `scripts/test` installs what the test needs (Debian's chromium, the storefront's npm
//! packages).

use crate::helpers::{TestApp, spawn_app_with};
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

/// Serves the storefront's folder (the page, its built module, its npm packages) on a port of
/// its own, as `python3 -m http.server` would; returns its origin.
async fn serve_page() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new().fallback_service(tower_http::services::ServeDir::new(examples()));
    tokio::spawn(async move { axum::serve(listener, app).await });
    origin
}

/// Runs a node script of the storefront's packages in its folder; panics with what it said
/// unless it succeeds.
async fn node(script: &str, args: &[&std::ffi::OsStr]) {
    let out = tokio::process::Command::new(std::env::var("NODE").unwrap_or_else(|_| "node".into()))
        .current_dir(examples())
        .arg(script)
        .args(args)
        .output()
        .await
        .expect("node runs (scripts/test installs it)");
    assert!(
        out.status.success(),
        "{script} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Builds the page as a frontend team would: types generated from the OpenAPI document `app`
/// serves, then `tsc`, which type-checks the page against them and writes `dist/app.js`.
async fn build_page(app: &TestApp) {
    let res = app.get("/openapi.json").await;
    assert_eq!(res.status(), 200);
    let document = std::env::temp_dir().join(format!("openapi-{}.json", uuid::Uuid::new_v4()));
    std::fs::write(&document, res.bytes().await.unwrap()).unwrap();
    node(
        "node_modules/openapi-typescript/bin/cli.js",
        &[
            document.as_os_str(),
            "--output".as_ref(),
            "src/api.d.ts".as_ref(),
        ],
    )
    .await;
    let _ = std::fs::remove_file(&document);
    node("node_modules/typescript/bin/tsc", &[]).await;
}

/// Registers the customer the journey logs in as.
async fn register_customer(app: &TestApp) {
    let res = app
        .accounts()
        .register_with(json!({"email": CUSTOMER_EMAIL, "password": CUSTOMER_PASSWORD}))
        .await;
    assert_eq!(res.status(), 201);
}

#[tokio::test]
async fn the_storefront_on_a_trusted_origin_follows_an_order_live_and_another_origin_is_refused() {
    let packages = examples().join("node_modules");
    for package in [
        "playwright-core",
        "typescript",
        "openapi-typescript",
        "openapi-fetch",
    ] {
        assert!(
            packages.join(package).is_dir(),
            "{package} is missing: run scripts/test, or `npm ci` in {}",
            examples().display()
        );
    }
    let shop = serve_page().await;
    let foreign = serve_page().await;
    let app = spawn_app_with(&[
        ("TRUSTED_ORIGINS", &shop),
        ("ADMIN_EMAIL", ADMIN_EMAIL),
        ("ADMIN_PASSWORD", ADMIN_PASSWORD),
    ])
    .await;
    build_page(&app).await;
    app.start_workers(app.env.config()).await;
    app.products().create("Desk lamp", 2500, 5).await;
    register_customer(&app).await;

    let run = tokio::process::Command::new(std::env::var("NODE").unwrap_or_else(|_| "node".into()))
        .arg(examples().join("browser-test/journey.mjs"))
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
