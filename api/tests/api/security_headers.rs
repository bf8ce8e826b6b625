//! Response headers that keep answers out of caches, browsers from guessing content types, the
//! docs page out of frames, and the auth cookies' names tied to `Secure`.

use crate::helpers::{client, spawn_app, spawn_app_with};
use common::domain::Role;
use serde_json::json;

fn header<'a>(res: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    res.headers().get(name).and_then(|v| v.to_str().ok())
}

#[tokio::test]
async fn every_answer_forbids_content_type_sniffing() {
    let app = spawn_app().await;
    for path in [
        "/health/live",
        "/openapi.json",
        "/docs/",
        "/api/v1/products",
        "/nowhere",
    ] {
        let res = app.get(path).await;
        assert_eq!(
            header(&res, "x-content-type-options"),
            Some("nosniff"),
            "{path}"
        );
    }
}

#[tokio::test]
async fn answers_to_an_authenticated_caller_or_setting_cookies_are_never_stored() {
    let app = spawn_app().await;
    let user = app.create_user(Role::Client).await;

    let me = app.get_as(&user, "/api/v1/users/me").await;
    assert_eq!(me.status(), 200);
    assert_eq!(header(&me, "cache-control"), Some("no-store"));
    let orders = app.get_as(&user, "/api/v1/orders").await;
    assert_eq!(header(&orders, "cache-control"), Some("no-store"));
    let registered = client()
        .post(app.url("/api/v1/auth/register"))
        .json(&json!({"email": "ann@example.com", "password": "correct horse battery staple"}))
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), 201);
    assert_eq!(header(&registered, "cache-control"), Some("no-store"));

    // The public catalogue stays cacheable, also for a logged-in caller.
    let catalogue = app.get_as(&user, "/api/v1/products").await;
    assert_ne!(header(&catalogue, "cache-control"), Some("no-store"));
}

#[tokio::test]
async fn the_docs_page_may_run_only_its_own_scripts_and_never_in_a_frame() {
    let app = spawn_app().await;
    for path in ["/docs/", "/docs/swagger-initializer.js"] {
        let res = app.get(path).await;
        assert_eq!(res.status(), 200, "{path}");
        let csp = header(&res, "content-security-policy").unwrap_or_default();
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert!(csp.contains("script-src 'self'"), "{path}: {csp}");
        assert!(!csp.contains("unsafe-eval"), "{path}: {csp}");
    }
}

#[tokio::test]
async fn with_cookie_secure_the_auth_cookies_carry_host_and_secure_prefixes() {
    let app = spawn_app_with(&[("COOKIE_SECURE", "true")]).await;

    let res = client()
        .post(app.url("/api/v1/auth/register"))
        .json(&json!({"email": "ann@example.com", "password": "correct horse battery staple"}))
        .send()
        .await
        .unwrap();

    let cookies: Vec<&str> = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    let access = cookies
        .iter()
        .find(|c| c.starts_with("__Host-access_token="))
        .unwrap_or_else(|| panic!("{cookies:?}"));
    assert!(
        access.contains("; Path=/;") && access.contains("; Secure"),
        "{access}"
    );
    assert!(!access.contains("Domain"), "{access}");
    let refresh = cookies
        .iter()
        .find(|c| c.starts_with("__Secure-refresh_token="))
        .unwrap_or_else(|| panic!("{cookies:?}"));
    assert!(refresh.contains("; Secure"), "{refresh}");
    // The prefixed cookie authenticates; an unprefixed one (which a subdomain could plant)
    // does not.
    let token = access
        .split(';')
        .next()
        .and_then(|p| p.split_once('='))
        .map(|(_, v)| v.to_owned())
        .unwrap();
    for (name, status) in [("__Host-access_token", 200), ("access_token", 401)] {
        let res = reqwest::Client::new()
            .get(app.url("/api/v1/users/me"))
            .header("cookie", format!("{name}={token}"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), status, "{name}");
    }
}

/// The headless Chromium that scripts/test installs.
fn chromium() -> std::path::PathBuf {
    let names = ["chromium", "chromium-browser"];
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .flat_map(|dir| names.map(|n| dir.join(n)))
        .find(|p| p.is_file())
        .expect("chromium is installed (scripts/test installs it)")
}

#[tokio::test]
async fn swagger_ui_renders_every_route_in_a_real_browser_under_its_csp() {
    let app = spawn_app().await;
    let url = app.url("/docs/");

    let out = tokio::process::Command::new(chromium())
        .args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=10000",
            "--dump-dom",
            &url,
        ])
        .output()
        .await
        .expect("chromium runs");

    let dom = String::from_utf8_lossy(&out.stdout);
    let console = String::from_utf8_lossy(&out.stderr);
    for path in ["/api/v1/orders", "/api/v1/auth/register", "/health/ready"] {
        assert!(
            dom.contains(&format!("data-path=\"{path}\"")),
            "Swagger UI did not render {path}:\n{console}"
        );
    }
    assert!(
        !console.contains("Content Security Policy"),
        "the CSP blocked part of Swagger UI:\n{console}"
    );
}
