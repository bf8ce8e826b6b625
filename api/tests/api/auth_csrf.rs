//! Cross-site request forgery: a cookie-authenticated POST must come from the api's own origin
//! or a trusted one; Bearer-authenticated requests carry no ambient authority and pass.

use crate::helpers::{assert_problem, spawn_app, spawn_app_with};
use common::domain::Role;

#[tokio::test]
async fn a_cookie_authenticated_post_from_a_foreign_origin_is_403() {
    let app = spawn_app().await;
    let ann = app.accounts().sign_up("ann@example.com").await;

    let res = ann
        .browser
        .post_from("https://evil.example", "/api/v1/auth/logout")
        .await;

    assert_problem(res, 403).await;
    assert_eq!(ann.browser.me().await.status(), 200, "the session survived");
}

#[tokio::test]
async fn a_cookie_authenticated_post_from_the_apis_own_origin_passes() {
    let app = spawn_app().await;
    let ann = app.accounts().sign_up("ann@example.com").await;

    let res = ann
        .browser
        .post_from(&app.address, "/api/v1/auth/logout")
        .await;

    assert_eq!(res.status(), 204);
}

#[tokio::test]
async fn a_cookie_authenticated_post_from_a_trusted_origin_passes() {
    let app = spawn_app_with(&[("TRUSTED_ORIGINS", "https://shop.example")]).await;
    let ann = app.accounts().sign_up("ann@example.com").await;

    let res = ann
        .browser
        .post_from("https://shop.example", "/api/v1/auth/refresh")
        .await;

    assert_eq!(res.status(), 204);
}

#[tokio::test]
async fn a_cross_site_refresh_is_403_and_leaves_the_token_usable() {
    let app = spawn_app().await;
    let ann = app.accounts().sign_up("ann@example.com").await;

    let res = ann
        .browser
        .post_with_headers("/api/v1/auth/refresh", &[("sec-fetch-site", "cross-site")])
        .await;

    assert_problem(res, 403).await;
    assert_eq!(ann.browser.refresh().await.status(), 204);
}

#[tokio::test]
async fn a_bearer_authenticated_post_is_not_subject_to_the_origin_check() {
    let app = spawn_app().await;
    let user = app.create_user(Role::Client).await;

    let res = app
        .post_empty_as(
            &user,
            "/api/v1/auth/logout",
            &[("origin", "https://elsewhere.example")],
        )
        .await;

    assert_eq!(res.status(), 204);
}
