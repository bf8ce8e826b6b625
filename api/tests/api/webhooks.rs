//! Webhook endpoints over HTTP: ADMINs register, list, read, change and delete them; the secret
//! is shown at creation and rotation only; bad fields are 422s naming them; and a deployment
//! without WEBHOOK_ENCRYPTION_KEY answers 503.

use crate::helpers::{assert_problem, fields, spawn_app, spawn_app_with};
use common::domain::Role;
use serde_json::{Value, json};

const URL: &str = "http://127.0.0.1:9/hook";

#[tokio::test]
async fn an_admin_registers_an_endpoint_and_sees_its_secret_only_then() {
    let app = spawn_app().await;
    let admin = app.create_user(Role::Admin).await;

    let created = app
        .webhooks()
        .create(&admin, URL, &["order.status_changed"])
        .await;

    let secret = created["secret"].as_str().unwrap();
    assert!(
        secret.starts_with("whsec_") && secret.len() >= 6 + 32,
        "{secret}"
    );
    assert_eq!(created["events"], json!(["order.status_changed"]));
    assert_eq!(
        (
            created["enabled"].clone(),
            created["disabled_reason"].clone()
        ),
        (json!(true), Value::Null)
    );
    let id = created["id"].as_str().unwrap();
    let read: Value = app
        .get_as(&admin, &format!("/api/v1/webhooks/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(read["url"], URL);
    assert!(read.get("secret").is_none(), "{read}");
    let stored: Vec<u8> = sqlx::query_scalar("SELECT secret FROM webhook_endpoints")
        .fetch_one(&app.state.db)
        .await
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&stored).contains(secret.trim_start_matches("whsec_")),
        "stored sealed"
    );
}

#[tokio::test]
async fn endpoints_are_listed_a_page_at_a_time() {
    let app = spawn_app().await;
    let admin = app.create_user(Role::Admin).await;
    for _ in 0..3 {
        app.webhooks().create(&admin, URL, &["*"]).await;
    }

    let first: Value = app
        .get_as(&admin, "/api/v1/webhooks?limit=2")
        .await
        .json()
        .await
        .unwrap();
    let cursor = first["next_cursor"].as_str().unwrap();
    let second: Value = app
        .get_as(&admin, &format!("/api/v1/webhooks?limit=2&cursor={cursor}"))
        .await
        .json()
        .await
        .unwrap();

    assert_eq!(first["items"].as_array().unwrap().len(), 2);
    assert_eq!(second["items"].as_array().unwrap().len(), 1);
    assert!(second["next_cursor"].is_null());
}

#[tokio::test]
async fn unknown_event_types_are_a_422_naming_events() {
    let app = spawn_app().await;
    let admin = app.create_user(Role::Admin).await;

    let res = app
        .post_as(
            &admin,
            "/api/v1/webhooks",
            &json!({"url": URL, "events": ["order.status_changed", "order.exploded"]}),
            &[],
        )
        .await;

    let problem = assert_problem(res, 422).await;
    assert_eq!(fields(&problem), ["events"]);
    assert!(problem.to_string().contains("order.exploded"), "{problem}");
    assert_eq!(app.count("SELECT count(*) FROM webhook_endpoints").await, 0);
}

#[tokio::test]
async fn a_change_re_enables_an_endpoint_and_clears_its_reason() {
    let app = spawn_app().await;
    let admin = app.create_user(Role::Admin).await;
    let id = app.webhooks().create(&admin, URL, &["*"]).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/api/v1/webhooks/{id}");

    let disabled: Value = app
        .patch_as(&admin, &path, &json!({"enabled": false}), &[])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (
            disabled["enabled"].clone(),
            disabled["disabled_reason"].clone()
        ),
        (json!(false), json!("disabled by an ADMIN"))
    );
    let res = app
        .patch_as(
            &admin,
            &path,
            &json!({"enabled": true, "events": ["order.refund_changed"], "description": "CRM"}),
            &[],
        )
        .await;

    assert_eq!(res.status(), 200);
    let enabled: Value = res.json().await.unwrap();
    assert_eq!(enabled["enabled"], true);
    assert!(enabled["disabled_reason"].is_null());
    assert_eq!(
        (enabled["events"].clone(), enabled["description"].clone()),
        (json!(["order.refund_changed"]), json!("CRM"))
    );
}

#[tokio::test]
async fn an_empty_change_is_a_422_and_changes_nothing() {
    let app = spawn_app().await;
    let admin = app.create_user(Role::Admin).await;
    let id = app.webhooks().create(&admin, URL, &["*"]).await["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let res = app
        .patch_as(&admin, &format!("/api/v1/webhooks/{id}"), &json!({}), &[])
        .await;

    assert_problem(res, 422).await;
}

#[tokio::test]
async fn a_deleted_endpoint_is_gone() {
    let app = spawn_app().await;
    let admin = app.create_user(Role::Admin).await;
    let id = app.webhooks().create(&admin, URL, &["*"]).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/api/v1/webhooks/{id}");

    assert_eq!(app.delete_as(&admin, &path).await.status(), 204);

    assert_problem(app.get_as(&admin, &path).await, 404).await;
    assert_problem(app.delete_as(&admin, &path).await, 404).await;
}

#[tokio::test]
async fn a_rotation_answers_a_new_secret_and_keeps_the_old_one_signing_for_the_overlap() {
    let app = spawn_app_with(&[("WEBHOOK_SECRET_OVERLAP_SECS", "3600")]).await;
    let admin = app.create_user(Role::Admin).await;
    let created = app.webhooks().create(&admin, URL, &["*"]).await;
    let id = created["id"].as_str().unwrap();

    let res = app
        .post_empty_as(&admin, &format!("/api/v1/webhooks/{id}/rotate-secret"), &[])
        .await;

    assert_eq!(res.status(), 200);
    let rotated: Value = res.json().await.unwrap();
    assert_ne!(rotated["secret"], created["secret"]);
    let expires: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(rotated["previous_secret_expires_at"].clone()).unwrap();
    let overlap = expires - chrono::Utc::now();
    assert!(
        overlap > chrono::Duration::minutes(59) && overlap <= chrono::Duration::hours(1),
        "{overlap}"
    );
}

#[tokio::test]
async fn only_admins_manage_webhooks() {
    let app = spawn_app().await;
    let client = app.create_user(Role::Client).await;

    let res = app
        .post_as(
            &client,
            "/api/v1/webhooks",
            &json!({"url": URL, "events": ["*"]}),
            &[],
        )
        .await;

    assert_problem(res, 403).await;
    assert_problem(app.get("/api/v1/webhooks").await, 401).await;
}

#[tokio::test]
async fn without_an_encryption_key_the_webhook_routes_answer_503() {
    let app = spawn_app_with(&[("WEBHOOK_ENCRYPTION_KEY", "")]).await;
    let admin = app.create_user(Role::Admin).await;

    let res = app
        .post_as(
            &admin,
            "/api/v1/webhooks",
            &json!({"url": URL, "events": ["*"]}),
            &[],
        )
        .await;

    let problem = assert_problem(res, 503).await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("WEBHOOK_ENCRYPTION_KEY"),
        "{problem}"
    );
    assert_problem(app.get_as(&admin, "/api/v1/webhooks").await, 503).await;
}

#[tokio::test]
async fn the_openapi_document_describes_each_webhook_payload() {
    let app = spawn_app().await;

    let doc: Value = app.get("/openapi.json").await.json().await.unwrap();

    let webhooks = doc["webhooks"].as_object().expect("a webhooks section");
    for name in [
        "order.status_changed",
        "order.refund_changed",
        "webhook.test",
    ] {
        let body = &webhooks[name]["post"]["requestBody"]["content"]["application/json"]["schema"];
        assert_eq!(body["properties"]["type"]["enum"], json!([name]), "{name}");
        assert_eq!(body["required"], json!(["type", "timestamp", "data"]));
    }
    assert_eq!(
        webhooks["order.status_changed"]["post"]["requestBody"]["content"]["application/json"]["schema"]
            ["properties"]["data"]["$ref"],
        "#/components/schemas/OrderStatusChanged"
    );
}
