//! Account management by ADMINs: reading and filtering accounts, promoting, demoting,
//! disabling and enabling them, the last-ADMIN rule, the audit trail, and what each change
//! does to the account's sessions in every replica.

use crate::helpers::{TestUser, assert_problem, client, spawn_app};
use common::domain::Role;
use common::testing::eventually;
use serde_json::{Value, json};
use std::time::Duration;

use crate::helpers::PASSWORD;

async fn ok_json(res: reqwest::Response) -> Value {
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

#[tokio::test]
async fn an_admin_reads_one_account_and_others_cannot() {
    let app = spawn_app().await;
    let admin = app.create_user(Role::Admin).await;
    let customer = app.create_user(Role::Client).await;
    let path = format!("/api/v1/users/{}", customer.id);

    let user = ok_json(app.get_as(&admin, &path).await).await;
    assert_eq!(user["email"], customer.email);
    assert_eq!(user["role"], "CLIENT");
    assert_eq!(user["disabled"], false);
    assert!(user.get("password_hash").is_none());
    assert_problem(app.get_as(&customer, &path).await, 403).await;
    let unknown = format!("/api/v1/users/{}", uuid::Uuid::new_v4());
    assert_problem(app.get_as(&admin, &unknown).await, 404).await;
}

#[tokio::test]
async fn the_account_list_filters_by_role_and_email_prefix() {
    let app = spawn_app().await;
    let admin = app.create_user(Role::Admin).await;
    app.register_client("ann.smith@example.com").await;
    app.register_client("ann.jones@example.com").await;
    app.register_client("bob@example.com").await;

    let page = ok_json(app.get_as(&admin, "/api/v1/users?email=ANN.").await).await;
    let emails: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["email"].as_str().unwrap())
        .collect();
    assert_eq!(emails, ["ann.smith@example.com", "ann.jones@example.com"]);

    let page = ok_json(app.get_as(&admin, "/api/v1/users?role=ADMIN").await).await;
    let ids: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [admin.id.to_string()]);

    let page = ok_json(
        app.get_as(&admin, "/api/v1/users?role=CLIENT&email=bob")
            .await,
    )
    .await;
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn wildcards_in_an_email_prefix_match_only_themselves() {
    let app = spawn_app().await;
    let admin = app.create_user(Role::Admin).await;
    app.register_client("ann_x@example.com").await;
    app.register_client("annex@example.com").await;
    let page = ok_json(app.get_as(&admin, "/api/v1/users?email=ann_").await).await;
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{page}");
    assert_eq!(items[0]["email"], "ann_x@example.com");
    let page = ok_json(app.get_as(&admin, "/api/v1/users?email=%25").await).await;
    assert!(page["items"].as_array().unwrap().is_empty(), "{page}");
}

#[tokio::test]
async fn a_bad_role_or_empty_email_filter_is_refused() {
    let app = spawn_app().await;
    let admin = app.create_user(Role::Admin).await;
    assert_problem(app.get_as(&admin, "/api/v1/users?role=OWNER").await, 400).await;
    let body = assert_problem(app.get_as(&admin, "/api/v1/users?email=%20").await, 422).await;
    assert_eq!(body["errors"][0]["field"], "email");
}

#[tokio::test]
async fn a_demoted_admins_open_session_loses_admin_routes_on_its_next_request_in_every_replica() {
    let app = spawn_app().await;
    let other = app.replica(&[]).await;
    let boss = app.create_user(Role::Admin).await;
    let deputy = app.create_user(Role::Admin).await;
    // Both replicas have seen the deputy's session as an ADMIN's.
    assert_eq!(app.get_as(&deputy, "/api/v1/users").await.status(), 200);
    assert_eq!(other.get_as(&deputy, "/api/v1/users").await.status(), 200);

    let user = ok_json(
        app.change_account(&boss, &deputy.id.to_string(), json!({"role": "CLIENT"}))
            .await,
    )
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
    let app = spawn_app().await;
    let admin = app.create_user(Role::Admin).await;
    let clerk = app.create_user(Role::Client).await;
    assert_problem(app.get_as(&clerk, "/api/v1/users").await, 403).await;
    ok_json(
        app.change_account(&admin, &clerk.id.to_string(), json!({"role": "ADMIN"}))
            .await,
    )
    .await;
    assert_eq!(app.get_as(&clerk, "/api/v1/users").await.status(), 200);
}

#[tokio::test]
async fn a_disabled_account_cannot_log_in_and_gets_the_same_answer_as_a_wrong_password() {
    let app = spawn_app().await;
    let admin = app.create_user(Role::Admin).await;
    let (id, _) = app.register_client("ann@example.com").await;
    let wrong = assert_problem(
        app.login(&client(), "ann@example.com", "not the password")
            .await,
        401,
    )
    .await;

    let user = ok_json(
        app.change_account(&admin, &id, json!({"disabled": true}))
            .await,
    )
    .await;
    assert_eq!(user["disabled"], true);

    let refused =
        assert_problem(app.login(&client(), "ann@example.com", PASSWORD).await, 401).await;
    assert_eq!(refused, wrong);
}

#[tokio::test]
async fn disabling_ends_the_accounts_sessions_and_its_refresh_fails() {
    let app = spawn_app().await;
    let admin = app.create_user(Role::Admin).await;
    let (id, browser) = app.register_client("ann@example.com").await;
    let me = browser
        .get(app.url("/api/v1/users/me"))
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);

    ok_json(
        app.change_account(&admin, &id, json!({"disabled": true}))
            .await,
    )
    .await;

    let me = browser
        .get(app.url("/api/v1/users/me"))
        .send()
        .await
        .unwrap();
    assert_problem(me, 401).await;
    let refreshed = browser
        .post(app.url("/api/v1/auth/refresh"))
        .send()
        .await
        .unwrap();
    assert_problem(refreshed, 401).await;
}

#[tokio::test]
async fn an_enabled_account_can_log_in_again() {
    let app = spawn_app().await;
    let admin = app.create_user(Role::Admin).await;
    let (id, _) = app.register_client("ann@example.com").await;
    ok_json(
        app.change_account(&admin, &id, json!({"disabled": true}))
            .await,
    )
    .await;
    ok_json(
        app.change_account(&admin, &id, json!({"disabled": false}))
            .await,
    )
    .await;
    assert_eq!(
        app.login(&client(), "ann@example.com", PASSWORD)
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn the_last_active_admin_can_be_neither_demoted_nor_disabled() {
    let app = spawn_app().await;
    let admin = app.create_user(Role::Admin).await;
    let me = admin.id.to_string();
    let body = assert_problem(
        app.change_account(&admin, &me, json!({"role": "CLIENT"}))
            .await,
        409,
    )
    .await;
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("last active ADMIN"),
        "{body}"
    );
    assert_problem(
        app.change_account(&admin, &me, json!({"disabled": true}))
            .await,
        409,
    )
    .await;

    // A disabled ADMIN does not count: it cannot log in to act.
    let dormant = app.create_user(Role::Admin).await;
    ok_json(
        app.change_account(&admin, &dormant.id.to_string(), json!({"disabled": true}))
            .await,
    )
    .await;
    assert_problem(
        app.change_account(&admin, &me, json!({"role": "CLIENT"}))
            .await,
        409,
    )
    .await;
    let still: String = sqlx::query_scalar("SELECT role::text FROM users WHERE id = $1")
        .bind(admin.id)
        .fetch_one(&app.state.db)
        .await
        .unwrap();
    assert_eq!(still, "ADMIN");
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
    let requests = pairs
        .iter()
        .map(|(actor, target)| app.change_account(actor, target, json!({"role": "CLIENT"})));
    let answers: Vec<u16> = futures::future::join_all(requests)
        .await
        .iter()
        .map(|r| r.status().as_u16())
        .collect();
    assert!(
        answers.iter().all(|s| [200, 401, 409].contains(s)),
        "{answers:?}"
    );
    let active: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM users WHERE role = 'ADMIN' AND disabled_at IS NULL",
    )
    .fetch_one(&app.state.db)
    .await
    .unwrap();
    assert_eq!(active, 1, "{answers:?}");
}

#[tokio::test]
async fn each_change_is_recorded_with_who_when_and_what_in_the_audit_trail() {
    let app = spawn_app().await;
    let admin = app.create_user(Role::Admin).await;
    let clerk = app.create_user(Role::Client).await;
    let id = clerk.id.to_string();
    ok_json(
        app.change_account(&admin, &id, json!({"role": "ADMIN"}))
            .await,
    )
    .await;
    ok_json(
        app.change_account(&admin, &id, json!({"role": "CLIENT", "disabled": true}))
            .await,
    )
    .await;
    // Asking for what the account already has records nothing.
    ok_json(
        app.change_account(&admin, &id, json!({"disabled": true}))
            .await,
    )
    .await;

    let trail = ok_json(
        app.get_as(&admin, &format!("/api/v1/users/{id}/audit"))
            .await,
    )
    .await;
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
    assert_problem(
        app.get_as(&clerk, &format!("/api/v1/users/{id}/audit"))
            .await,
        401,
    )
    .await;
}

#[tokio::test]
async fn a_change_naming_nothing_or_an_unknown_role_is_422() {
    let app = spawn_app().await;
    let admin = app.create_user(Role::Admin).await;
    let clerk = app.create_user(Role::Client).await;
    let id = clerk.id.to_string();
    assert_problem(app.change_account(&admin, &id, json!({})).await, 422).await;
    let body = assert_problem(
        app.change_account(&admin, &id, json!({"role": "OWNER"}))
            .await,
        422,
    )
    .await;
    assert_eq!(body["errors"][0]["field"], "role", "{body}");
    assert_problem(
        app.change_account(&admin, &id, json!({"email": "x@y.z"}))
            .await,
        422,
    )
    .await;
    let unknown = uuid::Uuid::new_v4().to_string();
    assert_problem(
        app.change_account(&admin, &unknown, json!({"disabled": true}))
            .await,
        404,
    )
    .await;
}

#[tokio::test]
async fn a_client_cannot_change_accounts() {
    let app = spawn_app().await;
    let clerk = app.create_user(Role::Client).await;
    let res = app
        .change_account(&clerk, &clerk.id.to_string(), json!({"role": "ADMIN"}))
        .await;
    assert_problem(res, 403).await;
}

#[tokio::test]
async fn the_openapi_document_describes_account_management() {
    let app = spawn_app().await;
    let doc: Value = app.get("/openapi.json").await.json().await.unwrap();
    let paths = &doc["paths"];
    assert!(paths["/api/v1/users/{id}"]["get"].is_object());
    assert!(paths["/api/v1/users/{id}"]["patch"]["responses"]["409"].is_object());
    assert!(paths["/api/v1/users/{id}/audit"]["get"].is_object());
    let params: Vec<&str> = paths["/api/v1/users"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert!(
        params.contains(&"role") && params.contains(&"email"),
        "{params:?}"
    );
    let user = &doc["components"]["schemas"]["User"]["properties"];
    assert!(user["disabled"].is_object(), "{user}");
}
