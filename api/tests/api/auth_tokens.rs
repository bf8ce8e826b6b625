//! Access tokens: a genuine one is accepted as a Bearer token or a cookie; a forged, tampered,
//! expired or foreign one, or one for a session that never existed, is 401.

use crate::helpers::{TestApp, assert_problem, spawn_app};
use api::auth::token::Claims;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::domain::Role;
use common::testing::TEST_JWT_SECRET;
use jsonwebtoken::Algorithm::{HS256, HS512};
use serde_json::{Value, json};

/// Claims of a genuine token for a user with a live session, to be forged in various ways.
async fn genuine_claims(app: &TestApp) -> (String, Claims) {
    let user = app.create_user(Role::Admin).await;
    let claims = app
        .state
        .tokens
        .verify(&user.token)
        .expect("genuine token verifies");
    (user.token, claims)
}

/// `claims` signed with `algorithm` and `secret`.
fn sign(claims: &Claims, algorithm: jsonwebtoken::Algorithm, secret: &str) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(algorithm),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

fn b64(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap())
}

/// Asserts the api refuses `token` with a 401.
async fn assert_refused(app: &TestApp, token: &str) {
    assert_problem(app.accounts().me_with(token).await, 401).await;
}

#[tokio::test]
async fn a_genuine_access_token_is_accepted_as_bearer() {
    let app = spawn_app().await;
    let (token, _) = genuine_claims(&app).await;

    assert_eq!(app.accounts().me_with(&token).await.status(), 200);
}

#[tokio::test]
async fn a_genuine_access_token_is_accepted_as_cookie() {
    let app = spawn_app().await;
    let (token, _) = genuine_claims(&app).await;

    let res = reqwest::Client::new()
        .get(app.url("/api/v1/users/me"))
        .header("cookie", format!("access_token={token}"))
        .send()
        .await
        .unwrap();

    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn a_token_with_a_tampered_payload_is_401() {
    let app = spawn_app().await;
    let (token, claims) = genuine_claims(&app).await;
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let mut payload = serde_json::to_value(&claims).unwrap();
    payload["exp"] = json!(claims.exp + 3600);
    parts[1] = b64(&payload);

    assert_refused(&app, &parts.join(".")).await;
}

#[tokio::test]
async fn a_token_with_a_tampered_signature_is_401() {
    let app = spawn_app().await;
    let (token, _) = genuine_claims(&app).await;
    let (head, signature) = token.rsplit_once('.').unwrap();
    let mut sig = URL_SAFE_NO_PAD.decode(signature).unwrap();
    sig[0] ^= 1;

    assert_refused(&app, &format!("{head}.{}", URL_SAFE_NO_PAD.encode(sig))).await;
}

#[tokio::test]
async fn an_alg_none_token_is_401() {
    let app = spawn_app().await;
    let (_, claims) = genuine_claims(&app).await;
    let header = b64(&json!({"alg": "none", "typ": "JWT"}));
    let payload = b64(&serde_json::to_value(&claims).unwrap());

    assert_refused(&app, &format!("{header}.{payload}.")).await;
}

#[tokio::test]
async fn a_token_signed_with_another_secret_is_401() {
    let app = spawn_app().await;
    let (_, claims) = genuine_claims(&app).await;

    let forged = sign(&claims, HS256, "another-secret-another-secret-0123456");

    assert_refused(&app, &forged).await;
}

#[tokio::test]
async fn an_hs512_token_signed_with_the_right_secret_is_401() {
    let app = spawn_app().await;
    let (_, claims) = genuine_claims(&app).await;

    let forged = sign(&claims, HS512, TEST_JWT_SECRET);

    assert_refused(&app, &forged).await;
}

#[tokio::test]
async fn an_expired_token_is_401() {
    let app = spawn_app().await;
    let (_, mut claims) = genuine_claims(&app).await;
    claims.iat -= 3600;
    claims.exp = claims.iat + 60;

    let expired = sign(&claims, HS256, TEST_JWT_SECRET);

    assert_refused(&app, &expired).await;
}

#[tokio::test]
async fn a_token_from_another_issuer_is_401() {
    let app = spawn_app().await;
    let (_, mut claims) = genuine_claims(&app).await;
    claims.iss = "someone-else".into();

    let forged = sign(&claims, HS256, TEST_JWT_SECRET);

    assert_refused(&app, &forged).await;
}

#[tokio::test]
async fn a_validly_signed_token_for_a_session_that_never_existed_is_401() {
    let app = spawn_app().await;
    let user = app.create_user(Role::Admin).await;

    let token = app
        .state
        .tokens
        .issue(user.id, Role::Admin, uuid::Uuid::new_v4())
        .unwrap();

    assert_refused(&app, &token).await;
}
