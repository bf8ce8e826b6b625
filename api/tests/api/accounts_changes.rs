//! Account changes by ADMINs: promoting, demoting, disabling and enabling accounts, the
//! last-ADMIN rule, the audit trail, and what each change does to the account's sessions in
//! every replica.

use crate::accounts::app_with_admin;
use crate::helpers::{PASSWORD, TestApp, TestUser, assert_problem, spawn_app};
use common::domain::Role;
use common::testing::eventually;
use serde_json::{Value, json};
use std::time::Duration;

/// The account's role as stored.
async fn role_of(app: &TestApp, user: &TestUser) -> String {
    sqlx::query_scalar("SELECT role::text FROM users WHERE id = $1")
        .bind(user.id)
        .fetch_one(&app.state.db)
        .await
        .unwrap()
}

// --- promoting and demoting ---------------------------------------------------------------

#[tokio::test]
async fn a_demoted_admins_open_session_loses_admin_routes_on_its_next_request_in_every_replica() {
    let (app, boss) = app_with_admin().await;
    let other = app.replica(&[]).await;
    let deputy = app.create_user(Role::Admin).await;
    // Both replicas have seen the deputy's session as an ADMIN's.
    assert_eq!(app.get_as(&deputy, "/api/v1/users").await.status(), 200);
    assert_eq!(other.get_as(&deputy, "/api/v1/users").await.status(), 200);

    let user = app
        .accounts()
        .changed(&boss, &deputy.id.to_string(), json!({"role": "CLIENT"}))
        .await;
    assert_eq!(user["role"], "CLIENT");

    assert_problem(app.get_as(&deputy, "/api/v1/users").await, 401).await;
    eventually(
        Duration::from_secs(5),
        "the other replica to hear",
        || async { (other.get_as(&deputy, "/api/v1/users").await.status() == 401).then_some(()) },
    )
    .await;
}

#[tokio::test]
async fn a_promoted_clients_session_gets_admin_routes_at_once() {
    let (app, admin) = app_with_admin().await;
    let clerk = app.create_user(Role::Client).await;
    assert_problem(app.get_as(&clerk, "/api/v1/users").await, 403).await;

    app.accounts()
        .changed(&admin, &clerk.id.to_string(), json!({"role": "ADMIN"}))
        .await;

    assert_eq!(app.get_as(&clerk, "/api/v1/users").await.status(), 200);
}

// --- disabling and enabling ---------------------------------------------------------------

#[tokio::test]
async fn a_disabled_account_cannot_log_in_and_gets_the_same_answer_as_a_wrong_password() {
    let (app, admin) = app_with_admin().await;
    let ann = app.accounts().sign_up("ann@example.com").await;
    let wrong = assert_problem(
        app.accounts()
            .login("ann@example.com", "not the password")
            .await,
        401,
    )
    .await;

    let user = app
        .accounts()
        .changed(&admin, &ann.id, json!({"disabled": true}))
        .await;
    assert_eq!(user["disabled"], true);

    let refused =
        assert_problem(app.accounts().login("ann@example.com", PASSWORD).await, 401).await;
    assert_eq!(refused, wrong);
}

#[tokio::test]
async fn disabling_ends_the_accounts_sessions_and_its_refresh_fails() {
    let (app, admin) = app_with_admin().await;
    let ann = app.accounts().sign_up("ann@example.com").await;
    assert_eq!(ann.browser.me().await.status(), 200);

    app.accounts()
        .changed(&admin, &ann.id, json!({"disabled": true}))
        .await;

    assert_problem(ann.browser.me().await, 401).await;
    assert_problem(ann.browser.refresh().await, 401).await;
}

#[tokio::test]
async fn an_enabled_account_can_log_in_again() {
    let (app, admin) = app_with_admin().await;
    let ann = app.accounts().sign_up("ann@example.com").await;
    app.accounts()
        .changed(&admin, &ann.id, json!({"disabled": true}))
        .await;

    app.accounts()
        .changed(&admin, &ann.id, json!({"disabled": false}))
        .await;

    let res = app.accounts().login("ann@example.com", PASSWORD).await;
    assert_eq!(res.status(), 200);
}

// --- the last active ADMIN ----------------------------------------------------------------

#[tokio::test]
async fn the_last_active_admin_cannot_be_demoted() {
    let (app, admin) = app_with_admin().await;

    let res = app
        .accounts()
        .change(&admin, &admin.id.to_string(), json!({"role": "CLIENT"}))
        .await;

    let body = assert_problem(res, 409).await;
    let detail = body["detail"].as_str().unwrap();
    assert!(detail.contains("last active ADMIN"), "{body}");
    assert_eq!(role_of(&app, &admin).await, "ADMIN");
}

#[tokio::test]
async fn the_last_active_admin_cannot_be_disabled() {
    let (app, admin) = app_with_admin().await;

    let res = app
        .accounts()
        .change(&admin, &admin.id.to_string(), json!({"disabled": true}))
        .await;

    assert_problem(res, 409).await;
}

#[tokio::test]
async fn a_disabled_admin_does_not_count_as_an_active_one() {
    let (app, admin) = app_with_admin().await;
    // A disabled ADMIN cannot log in to act.
    let dormant = app.create_user(Role::Admin).await;
    app.accounts()
        .changed(&admin, &dormant.id.to_string(), json!({"disabled": true}))
        .await;

    let res = app
        .accounts()
        .change(&admin, &admin.id.to_string(), json!({"role": "CLIENT"}))
        .await;

    assert_problem(res, 409).await;
    assert_eq!(role_of(&app, &admin).await, "ADMIN");
}

#[tokio::test]
async fn admins_demoting_each_other_at_once_leave_an_active_admin() {
    let app = spawn_app().await;
    let admins = [
        app.create_user(Role::Admin).await,
        app.create_user(Role::Admin).await,
        app.create_user(Role::Admin).await,
    ];
    // Each demotes the two others, all at once.
    let pairs: Vec<(&TestUser, String)> = admins
        .iter()
        .flat_map(|actor| {
            admins
                .iter()
                .filter(|t| t.id != actor.id)
                .map(move |t| (actor, t.id.to_string()))
        })
        .collect();
    let requests = pairs.iter().map(|(actor, target)| {
        app.accounts()
            .change(actor, target, json!({"role": "CLIENT"}))
    });
    let answers: Vec<u16> = futures::future::join_all(requests)
        .await
        .iter()
        .map(|r| r.status().as_u16())
        .collect();
    assert!(
        answers.iter().all(|s| [200, 401, 409].contains(s)),
        "{answers:?}"
    );
    let active = app
        .count("SELECT count(*) FROM users WHERE role = 'ADMIN' AND disabled_at IS NULL")
        .await;
    assert_eq!(active, 1, "{answers:?}");
}

// --- the audit trail ----------------------------------------------------------------------

#[tokio::test]
async fn each_change_is_recorded_with_who_when_and_what_in_the_audit_trail() {
    let (app, admin) = app_with_admin().await;
    let id = app.create_user(Role::Client).await.id.to_string();
    app.accounts()
        .changed(&admin, &id, json!({"role": "ADMIN"}))
        .await;
    app.accounts()
        .changed(&admin, &id, json!({"role": "CLIENT", "disabled": true}))
        .await;
    // Asking for what the account already has records nothing.
    app.accounts()
        .changed(&admin, &id, json!({"disabled": true}))
        .await;

    let res = app
        .get_as(&admin, &format!("/api/v1/users/{id}/audit"))
        .await;

    assert_eq!(res.status(), 200);
    let trail: Value = res.json().await.unwrap();
    let entries = trail["items"].as_array().unwrap();
    assert_eq!(entries.len(), 2, "{trail}");
    assert_eq!(entries[0]["actor_id"], admin.id.to_string());
    assert_eq!(entries[0]["user_id"], id);
    assert!(entries[0]["at"].is_string());
    assert_eq!(
        entries[0]["changes"],
        json!({"role": {"from": "CLIENT", "to": "ADMIN"}})
    );
    assert_eq!(
        entries[1]["changes"],
        json!({"role": {"from": "ADMIN", "to": "CLIENT"}, "disabled": {"from": false, "to": true}})
    );
}

#[tokio::test]
async fn a_client_cannot_read_an_audit_trail() {
    let app = spawn_app().await;
    let clerk = app.create_user(Role::Client).await;

    let res = app
        .get_as(&clerk, &format!("/api/v1/users/{}/audit", clerk.id))
        .await;

    assert_problem(res, 403).await;
}

// --- refused changes ----------------------------------------------------------------------

#[tokio::test]
async fn a_change_naming_nothing_an_unknown_role_or_another_field_is_422() {
    let (app, admin) = app_with_admin().await;
    let id = app.create_user(Role::Client).await.id.to_string();

    for (change, field) in [
        (json!({}), None),
        (json!({"role": "OWNER"}), Some("role")),
        (json!({"email": "x@y.z"}), None),
    ] {
        let body = assert_problem(app.accounts().change(&admin, &id, change).await, 422).await;
        if let Some(field) = field {
            assert_eq!(body["errors"][0]["field"], field, "{body}");
        }
    }
}

#[tokio::test]
async fn changing_an_unknown_account_is_404() {
    let (app, admin) = app_with_admin().await;
    let unknown = uuid::Uuid::new_v4().to_string();

    let res = app
        .accounts()
        .change(&admin, &unknown, json!({"disabled": true}))
        .await;

    assert_problem(res, 404).await;
}

#[tokio::test]
async fn a_client_cannot_change_accounts() {
    let app = spawn_app().await;
    let clerk = app.create_user(Role::Client).await;

    let res = app
        .accounts()
        .change(&clerk, &clerk.id.to_string(), json!({"role": "ADMIN"}))
        .await;

    assert_problem(res, 403).await;
}
