//! Account management by ADMINs: reading one account and filtering the list. Changing
//! accounts is in `accounts_changes`.

use crate::helpers::{TestApp, TestUser, assert_problem, spawn_app};
use common::domain::Role;
use serde_json::Value;

/// An app with one ADMIN.
pub async fn app_with_admin() -> (TestApp, TestUser) {
    let app = spawn_app().await;
    let admin = app.create_user(Role::Admin).await;
    (app, admin)
}

/// The `field` of every account of the list at `query`, as `admin` reads it.
async fn listed(app: &TestApp, admin: &TestUser, query: &str, field: &str) -> Vec<String> {
    let res = app.get_as(admin, &format!("/api/v1/users?{query}")).await;
    assert_eq!(res.status(), 200, "{query}");
    let page: Value = res.json().await.unwrap();
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u[field].as_str().unwrap().to_owned())
        .collect()
}

// --- reading ------------------------------------------------------------------------------

#[tokio::test]
async fn an_admin_reads_one_account_without_its_password_hash() {
    let (app, admin) = app_with_admin().await;
    let customer = app.create_user(Role::Client).await;

    let res = app
        .get_as(&admin, &format!("/api/v1/users/{}", customer.id))
        .await;

    assert_eq!(res.status(), 200);
    let user: Value = res.json().await.unwrap();
    assert_eq!(user["email"], customer.email);
    assert_eq!(user["role"], "CLIENT");
    assert_eq!(user["disabled"], false);
    assert!(user.get("password_hash").is_none());
}

#[tokio::test]
async fn a_client_cannot_read_an_account() {
    let app = spawn_app().await;
    let customer = app.create_user(Role::Client).await;

    let res = app
        .get_as(&customer, &format!("/api/v1/users/{}", customer.id))
        .await;

    assert_problem(res, 403).await;
}

#[tokio::test]
async fn reading_an_unknown_account_is_404() {
    let (app, admin) = app_with_admin().await;

    let res = app
        .get_as(&admin, &format!("/api/v1/users/{}", uuid::Uuid::new_v4()))
        .await;

    assert_problem(res, 404).await;
}

// --- filtering the list -------------------------------------------------------------------

#[tokio::test]
async fn the_account_list_filters_by_email_prefix_in_any_case() {
    let (app, admin) = app_with_admin().await;
    for email in [
        "ann.smith@example.com",
        "ann.jones@example.com",
        "bob@example.com",
    ] {
        app.accounts().sign_up(email).await;
    }

    let emails = listed(&app, &admin, "email=ANN.", "email").await;

    assert_eq!(emails, ["ann.smith@example.com", "ann.jones@example.com"]);
}

#[tokio::test]
async fn the_account_list_filters_by_role() {
    let (app, admin) = app_with_admin().await;
    app.accounts().sign_up("ann@example.com").await;

    let ids = listed(&app, &admin, "role=ADMIN", "id").await;

    assert_eq!(ids, [admin.id.to_string()]);
}

#[tokio::test]
async fn the_account_list_filters_by_role_and_email_prefix_together() {
    let (app, admin) = app_with_admin().await;
    for email in ["ann@example.com", "bob@example.com"] {
        app.accounts().sign_up(email).await;
    }

    let emails = listed(&app, &admin, "role=CLIENT&email=bob", "email").await;

    assert_eq!(emails, ["bob@example.com"]);
}

#[tokio::test]
async fn wildcards_in_an_email_prefix_match_only_themselves() {
    let (app, admin) = app_with_admin().await;
    for email in ["ann_x@example.com", "annex@example.com"] {
        app.accounts().sign_up(email).await;
    }

    assert_eq!(
        listed(&app, &admin, "email=ann_", "email").await,
        ["ann_x@example.com"]
    );
    assert!(listed(&app, &admin, "email=%25", "email").await.is_empty());
}

#[tokio::test]
async fn an_unknown_role_filter_is_400() {
    let (app, admin) = app_with_admin().await;

    assert_problem(app.get_as(&admin, "/api/v1/users?role=OWNER").await, 400).await;
}

#[tokio::test]
async fn a_blank_email_filter_is_422_naming_it() {
    let (app, admin) = app_with_admin().await;

    let body = assert_problem(app.get_as(&admin, "/api/v1/users?email=%20").await, 422).await;

    assert_eq!(body["errors"][0]["field"], "email");
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
