//! The start-up ADMIN of `ADMIN_EMAIL` and `ADMIN_PASSWORD`: created, updated or promoted
//! at start-up, and refused a password against the policy.

use crate::helpers::{TestApp, assert_problem, cookie_value, spawn_app, spawn_app_with};
use serde_json::Value;

pub const ADMIN_EMAIL: &str = "Root@Example.com";
pub const ADMIN_PASSWORD: &str = "an administrator passphrase";
const NEWER_PASSWORD: &str = "a newer administrator passphrase";

/// An app started with the ADMIN of [`ADMIN_EMAIL`] and [`ADMIN_PASSWORD`] configured.
pub async fn app_with_admin() -> TestApp {
    spawn_app_with(&[
        ("ADMIN_EMAIL", ADMIN_EMAIL),
        ("ADMIN_PASSWORD", ADMIN_PASSWORD),
    ])
    .await
}

/// Seeds the ADMIN of [`ADMIN_EMAIL`] with `password`, as a start-up does.
async fn seed_admin(app: &TestApp, password: &str) {
    let seed = common::config::AdminSeed {
        email: ADMIN_EMAIL.into(),
        password: common::config::SecretString::from(password),
    };
    api::auth::service::seed_admin(&app.state.db, &app.state.passwords, &seed)
        .await
        .unwrap();
}

#[tokio::test]
async fn the_configured_admin_exists_at_start_up_and_can_log_in() {
    let app = app_with_admin().await;

    let res = app
        .accounts()
        .login("root@example.com", ADMIN_PASSWORD)
        .await;

    assert_eq!(res.status(), 200);
    let access = cookie_value(&res, "access_token");
    let user: Value = res.json().await.unwrap();
    assert_eq!(user["role"], "ADMIN");
    assert_eq!(user["email"], "root@example.com");
    let list = app.get_with_token("/api/v1/users", &access).await;
    assert_eq!(list.status(), 200);
}

#[tokio::test]
async fn seeding_again_with_a_new_password_updates_it() {
    let app = app_with_admin().await;

    seed_admin(&app, NEWER_PASSWORD).await;

    assert_eq!(app.accounts().count().await, 1);
    assert_problem(app.accounts().login(ADMIN_EMAIL, ADMIN_PASSWORD).await, 401).await;
    app.accounts().log_in(ADMIN_EMAIL, NEWER_PASSWORD).await;
}

#[tokio::test]
async fn seeding_again_with_a_new_password_ends_old_sessions() {
    let app = app_with_admin().await;
    let old = app.accounts().log_in(ADMIN_EMAIL, ADMIN_PASSWORD).await;

    seed_admin(&app, NEWER_PASSWORD).await;

    assert_problem(app.accounts().me_with(&old.access).await, 401).await;
}

#[tokio::test]
async fn an_existing_client_with_the_admin_email_is_promoted_at_start_up() {
    let app = spawn_app().await;
    app.accounts().sign_up("root@example.com").await;

    seed_admin(&app, ADMIN_PASSWORD).await;

    let res = app.accounts().login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(res.json::<Value>().await.unwrap()["role"], "ADMIN");
    assert_eq!(app.accounts().count().await, 1);
}

#[tokio::test]
async fn an_admin_password_against_the_policy_stops_start_up() {
    let env = common::testing::TestEnv::new().await;
    let config = env.config_with(&[("ADMIN_EMAIL", ADMIN_EMAIL), ("ADMIN_PASSWORD", "short")]);

    let err = api::Application::build(config)
        .await
        .err()
        .expect("start-up fails");

    assert!(err.to_string().contains("ADMIN_PASSWORD"), "{err}");
}
