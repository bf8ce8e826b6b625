//! Response headers that keep answers out of caches, browsers from guessing content types, the
//! docs page out of frames, and the auth cookies' names tied to `Secure`.

use crate::helpers::{cookie_value, set_cookie, spawn_app, spawn_app_with};
use common::domain::Role;

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
async fn answers_to_an_authenticated_caller_are_never_stored() {
    let app = spawn_app().await;
    let user = app.create_user(Role::Client).await;

    for path in ["/api/v1/users/me", "/api/v1/orders"] {
        let res = app.get_as(&user, path).await;
        assert_eq!(res.status(), 200, "{path}");
        assert_eq!(header(&res, "cache-control"), Some("no-store"), "{path}");
    }
}

#[tokio::test]
async fn answers_setting_cookies_are_never_stored() {
    let app = spawn_app().await;

    let registered = app.accounts().register("ann@example.com").await;

    assert_eq!(registered.status(), 201);
    assert_eq!(header(&registered, "cache-control"), Some("no-store"));
}

#[tokio::test]
async fn the_public_catalogue_stays_cacheable_for_a_logged_in_caller() {
    let app = spawn_app().await;
    let user = app.create_user(Role::Client).await;

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

    let res = app.accounts().register("ann@example.com").await;

    let access = set_cookie(&res, "__Host-access_token").expect("a __Host- access cookie");
    assert!(
        access.contains("; Path=/;") && access.contains("; Secure"),
        "{access}"
    );
    assert!(!access.contains("Domain"), "{access}");
    let refresh = set_cookie(&res, "__Secure-refresh_token").expect("a __Secure- refresh cookie");
    assert!(refresh.contains("; Secure"), "{refresh}");
}

#[tokio::test]
async fn with_cookie_secure_only_the_prefixed_access_cookie_authenticates() {
    let app = spawn_app_with(&[("COOKIE_SECURE", "true")]).await;
    let res = app.accounts().register("ann@example.com").await;
    let token = cookie_value(&res, "__Host-access_token");

    // An unprefixed cookie is one a subdomain could plant.
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
