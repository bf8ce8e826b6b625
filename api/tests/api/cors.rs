//! CORS for browser frontends on the origins in `TRUSTED_ORIGINS`, the list the CSRF guard
//! reads too; nothing for any other origin.

use crate::helpers::{Browser, TestApp, spawn_app, spawn_app_with};

const SHOP: &str = "http://shop.example:5173";

async fn trusted_app() -> TestApp {
    spawn_app_with(&[("TRUSTED_ORIGINS", &format!("https://other.example,{SHOP}"))]).await
}

fn header<'a>(res: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    res.headers().get(name).and_then(|v| v.to_str().ok())
}

fn cors_headers(res: &reqwest::Response) -> Vec<String> {
    res.headers()
        .keys()
        .map(|k| k.as_str().to_owned())
        .filter(|k| k.starts_with("access-control-"))
        .collect()
}

async fn preflight(app: &TestApp, origin: &str) -> reqwest::Response {
    reqwest::Client::new()
        .request(reqwest::Method::OPTIONS, app.url("/api/v1/orders"))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "content-type, prefer, idempotency-key",
        )
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_preflight_from_a_trusted_origin_is_answered_with_credentials_and_cached() {
    let app = trusted_app().await;
    let res = preflight(&app, SHOP).await;
    assert!(res.status().is_success(), "{}", res.status());
    assert_eq!(header(&res, "access-control-allow-origin"), Some(SHOP));
    assert_eq!(
        header(&res, "access-control-allow-credentials"),
        Some("true")
    );
    assert_eq!(header(&res, "access-control-max-age"), Some("7200"));
    let methods = header(&res, "access-control-allow-methods").unwrap();
    assert!(
        methods.contains("POST") && methods.contains("PATCH"),
        "{methods}"
    );
    let allowed = header(&res, "access-control-allow-headers").unwrap();
    for name in ["content-type", "prefer", "idempotency-key", "last-event-id"] {
        assert!(allowed.contains(name), "{name} in {allowed}");
    }
}

#[tokio::test]
async fn answers_to_a_trusted_origin_expose_location_retry_after_and_the_request_id() {
    let app = trusted_app().await;
    let res = reqwest::Client::new()
        .get(app.url("/api/v1/products"))
        .header("origin", SHOP)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(header(&res, "access-control-allow-origin"), Some(SHOP));
    assert_eq!(
        header(&res, "access-control-allow-credentials"),
        Some("true")
    );
    let exposed = header(&res, "access-control-expose-headers").unwrap();
    for name in ["location", "retry-after", "x-request-id"] {
        assert!(exposed.contains(name), "{name} in {exposed}");
    }
}

#[tokio::test]
async fn an_origin_not_in_the_list_is_granted_nothing() {
    let app = trusted_app().await;
    let res = preflight(&app, "http://evil.example").await;
    assert!(cors_headers(&res).is_empty(), "{:?}", res.headers());
    let res = reqwest::Client::new()
        .get(app.url("/api/v1/products"))
        .header("origin", "http://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(cors_headers(&res).is_empty(), "{:?}", res.headers());
    assert_eq!(
        header(&res, "vary"),
        Some("origin"),
        "caches key on the origin"
    );
}

#[tokio::test]
async fn without_trusted_origins_no_origin_is_granted_anything() {
    let app = spawn_app().await;
    let res = preflight(&app, SHOP).await;
    assert!(cors_headers(&res).is_empty(), "{:?}", res.headers());
}

/// A same-site page on `origin` logging `browser` out.
async fn logout_from(browser: &Browser, origin: &str) -> reqwest::Response {
    browser
        .post_with_headers(
            "/api/v1/auth/logout",
            &[("origin", origin), ("sec-fetch-site", "same-site")],
        )
        .await
}

#[tokio::test]
async fn the_csrf_guard_reads_the_same_list_cookie_writes_from_a_trusted_origin_pass() {
    let app = trusted_app().await;
    let ann = app.accounts().sign_up("ann@example.com").await;

    assert_eq!(
        logout_from(&ann.browser, "http://evil.example")
            .await
            .status(),
        403
    );

    let accepted = logout_from(&ann.browser, SHOP).await;
    assert_eq!(accepted.status(), 204);
    assert_eq!(header(&accepted, "access-control-allow-origin"), Some(SHOP));
}
