//! Every authorization has an end: an order event stream ends when the access token that
//! opened it expires, or its session does, and the expired token opens no new one.

use crate::helpers::{TestApp, TestUser, assert_problem, open, request, spawn_app};
use api::auth::token::{Claims, ISSUER};
use chrono::{DateTime, TimeDelta, Utc};
use common::domain::Role;

/// The instant `secs` whole seconds from now (token expiries are whole seconds).
fn in_secs(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(Utc::now().timestamp() + secs, 0).unwrap()
}

/// An access token of `user`'s session that expires at `exp`.
fn token_until(user: &TestUser, exp: DateTime<Utc>) -> String {
    let claims = Claims {
        sub: user.id,
        role: Role::Client,
        sid: user.session_id,
        iat: Utc::now().timestamp(),
        exp: exp.timestamp(),
        iss: ISSUER.to_owned(),
    };
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(common::testing::TEST_JWT_SECRET.as_bytes()),
    )
    .unwrap()
}

/// Opens `path` as `user` and reads it until it ends; returns when it ended.
async fn ended_at(app: &TestApp, user: &TestUser, path: &str) -> DateTime<Utc> {
    let mut sse = open(&app.address, user, path, None).await;
    while sse.next_or_end().await.is_some() {}
    Utc::now()
}

#[tokio::test]
async fn an_order_event_stream_ends_when_the_token_that_opened_it_expires() {
    let app = spawn_app().await;
    let mut customer = app.create_user(Role::Client).await;
    let expiry = in_secs(3);
    customer.token = token_until(&customer, expiry);

    let ended = ended_at(&app, &customer, "/api/v1/orders/events").await;

    assert!(ended >= expiry, "ended {ended}, before the expiry {expiry}");
    assert!(ended < expiry + TimeDelta::seconds(2), "ended {ended}");
    // Within the clock leeway the token still authenticates, but opens no stream.
    let res = request(&app.address, &customer, "/api/v1/orders/events", None).await;
    let problem = assert_problem(res, 401).await;
    assert!(
        problem["detail"].as_str().unwrap().contains("expired"),
        "{problem}"
    );
}

#[tokio::test]
async fn a_stream_of_one_order_ends_when_the_token_that_opened_it_expires() {
    let app = spawn_app().await;
    let mut customer = app.create_user(Role::Client).await;
    let order = app.orders().insert(&customer, "CONFIRMED").await;
    let expiry = in_secs(3);
    customer.token = token_until(&customer, expiry);

    let ended = ended_at(&app, &customer, &format!("/api/v1/orders/{order}/events")).await;

    assert!(ended >= expiry, "ended {ended}, before the expiry {expiry}");
    assert!(ended < expiry + TimeDelta::seconds(2), "ended {ended}");
}

#[tokio::test]
async fn an_order_event_stream_ends_when_its_session_expires() {
    let app = spawn_app().await;
    let customer = app.create_user(Role::Client).await;
    let expiry: DateTime<Utc> = sqlx::query_scalar(
        "UPDATE sessions SET expires_at = now() + interval '3 seconds' WHERE id = $1
         RETURNING expires_at",
    )
    .bind(customer.session_id)
    .fetch_one(&app.state.db)
    .await
    .unwrap();

    let ended = ended_at(&app, &customer, "/api/v1/orders/events").await;

    assert!(
        ended >= expiry,
        "ended {ended}, before the session's end {expiry}"
    );
    assert!(ended < expiry + TimeDelta::seconds(2), "ended {ended}");
    let res = request(&app.address, &customer, "/api/v1/orders/events", None).await;
    assert_problem(res, 401).await;
}
