//! Rotating `JWT_SECRET` without logging anyone out: the key of the previous rotation
//! (`JWT_PREVIOUS_SECRET`) still verifies the tokens it signed; new tokens are signed with the
//! current key only.

use crate::helpers::{TestApp, spawn_app_with};
use api::auth::token::TokenKeys;
use common::config::SecretString;
use common::domain::Role;
use common::testing::TEST_JWT_SECRET;

const CURRENT: &str = "rotated-key-rotated-key-rotated-key-0123";

/// An api whose key was rotated: `CURRENT` signs, the test suite's usual key is the previous.
async fn rotated_app() -> TestApp {
    spawn_app_with(&[
        ("JWT_SECRET", CURRENT),
        ("JWT_PREVIOUS_SECRET", TEST_JWT_SECRET),
    ])
    .await
}

fn keys(secret: &str) -> TokenKeys {
    TokenKeys::new(&SecretString::from(secret))
}

#[tokio::test]
async fn a_token_signed_with_the_previous_key_still_works() {
    let app = rotated_app().await;
    let user = app.create_user(Role::Client).await;
    let signed_before_rotation = keys(TEST_JWT_SECRET)
        .issue(user.id, Role::Client, user.session_id)
        .unwrap();

    let res = app.accounts().me_with(&signed_before_rotation).await;

    assert_eq!(res.status(), 200);
    let me: serde_json::Value = res.json().await.unwrap();
    assert_eq!(me["id"], user.id.to_string());
}

#[tokio::test]
async fn a_new_token_is_signed_with_the_current_key() {
    let app = rotated_app().await;

    let token = app
        .accounts()
        .sign_up("ann@example.com")
        .await
        .session
        .access;

    assert!(
        keys(CURRENT).verify(&token).is_some(),
        "not the current key"
    );
    assert!(
        keys(TEST_JWT_SECRET).verify(&token).is_none(),
        "signed with the previous key"
    );
}

#[tokio::test]
async fn a_token_signed_with_a_key_older_than_the_previous_one_is_401() {
    let app = rotated_app().await;
    let user = app.create_user(Role::Client).await;
    let retired = keys("retired-key-retired-key-retired-key-0123")
        .issue(user.id, Role::Client, user.session_id)
        .unwrap();

    let res = app.accounts().me_with(&retired).await;

    assert_eq!(res.status(), 401);
}
