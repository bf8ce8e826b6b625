//! Sessions: refresh-token rotation and theft detection, logging out, and changing the
//! password.

use crate::helpers::{PASSWORD, Session, assert_problem, set_cookie, spawn_app, spawn_app_with};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

const NEW_PASSWORD: &str = "a brand new passphrase";

// --- refresh ------------------------------------------------------------------------------

#[tokio::test]
async fn refreshing_rotates_the_refresh_token_and_issues_a_new_access_token() {
    let app = spawn_app().await;
    let first = app.accounts().sign_up("ann@example.com").await.session;

    let res = app.accounts().refresh_with(&first.refresh).await;

    assert_eq!(res.status(), 204);
    let second = Session::set_by(&res);
    assert_ne!(second.refresh, first.refresh);
    assert_eq!(app.accounts().me_with(&second.access).await.status(), 200);
    assert_eq!(
        app.accounts().refresh_with(&second.refresh).await.status(),
        204
    );
}

#[tokio::test]
async fn a_browser_refreshes_with_its_cookie_alone() {
    let app = spawn_app().await;
    let ann = app.accounts().sign_up("ann@example.com").await;

    assert_eq!(ann.browser.refresh().await.status(), 204);

    let res = ann.browser.refresh().await;
    assert_eq!(res.status(), 204, "the rotated cookie replaced the old one");
}

#[tokio::test]
async fn reusing_a_rotated_refresh_token_revokes_the_whole_session() {
    let app = spawn_app().await;
    let stolen = app
        .accounts()
        .sign_up("ann@example.com")
        .await
        .session
        .refresh;
    let newer = Session::set_by(&app.accounts().refresh_with(&stolen).await);
    // In use, so the api remembers the session as live.
    assert_eq!(app.accounts().me_with(&newer.access).await.status(), 200);

    let res = app.accounts().refresh_with(&stolen).await;

    assert_problem(res, 401).await;
    assert_problem(app.accounts().refresh_with(&newer.refresh).await, 401).await;
    assert_problem(app.accounts().me_with(&newer.access).await, 401).await;
}

#[tokio::test]
async fn reuse_revokes_only_the_session_it_belongs_to() {
    let app = spawn_app().await;
    let stolen = app
        .accounts()
        .sign_up("ann@example.com")
        .await
        .session
        .refresh;
    let other = app.accounts().log_in("ann@example.com", PASSWORD).await;
    app.accounts().refresh_with(&stolen).await;

    assert_problem(app.accounts().refresh_with(&stolen).await, 401).await;

    assert_eq!(app.accounts().me_with(&other.access).await.status(), 200);
}

#[tokio::test]
async fn refreshing_without_a_refresh_token_is_401() {
    let app = spawn_app().await;

    assert_problem(app.accounts().browser().refresh().await, 401).await;
}

#[tokio::test]
async fn refreshing_with_an_unknown_refresh_token_is_401() {
    let app = spawn_app().await;

    assert_problem(app.accounts().refresh_with("not-a-token").await, 401).await;
}

#[tokio::test]
async fn refresh_tokens_are_256_random_bits_stored_only_as_hashes() {
    let app = spawn_app().await;
    let token = app
        .accounts()
        .sign_up("ann@example.com")
        .await
        .session
        .refresh;

    let stored: Vec<Vec<u8>> = sqlx::query_scalar("SELECT token_hash FROM refresh_tokens")
        .fetch_all(&app.state.db)
        .await
        .unwrap();

    let raw = URL_SAFE_NO_PAD.decode(&token).unwrap();
    assert_eq!(raw.len(), 32, "256 bits");
    assert_eq!(stored.len(), 1);
    assert_ne!(stored[0], token.as_bytes());
    assert_ne!(stored[0], raw);
}

// --- logout -------------------------------------------------------------------------------

#[tokio::test]
async fn logging_out_clears_the_cookies() {
    let app = spawn_app().await;
    let ann = app.accounts().sign_up("ann@example.com").await;

    let res = ann.browser.logout().await;

    assert_eq!(res.status(), 204);
    for name in ["access_token", "refresh_token"] {
        let cookie = set_cookie(&res, name).unwrap_or_else(|| panic!("{name} set"));
        assert!(cookie.contains("Max-Age=0"), "{cookie}");
    }
    assert_problem(ann.browser.me().await, 401).await;
}

#[tokio::test]
async fn logging_out_revokes_the_sessions_tokens() {
    let app = spawn_app().await;
    let ann = app.accounts().sign_up("ann@example.com").await;

    assert_eq!(ann.browser.logout().await.status(), 204);

    assert_problem(app.accounts().me_with(&ann.session.access).await, 401).await;
    assert_problem(app.accounts().refresh_with(&ann.session.refresh).await, 401).await;
}

#[tokio::test]
async fn logging_out_anonymously_is_401() {
    let app = spawn_app().await;

    assert_problem(app.accounts().browser().logout().await, 401).await;
}

// --- password change ----------------------------------------------------------------------

#[tokio::test]
async fn changing_the_password_revokes_every_other_session() {
    let app = spawn_app().await;
    let ann = app.accounts().sign_up("ann@example.com").await;
    let other = app.accounts().log_in("ann@example.com", PASSWORD).await;
    assert_eq!(app.accounts().me_with(&other.access).await.status(), 200);

    let res = ann.browser.change_password(PASSWORD, NEW_PASSWORD).await;

    assert_eq!(res.status(), 204);
    assert_problem(app.accounts().me_with(&other.access).await, 401).await;
    assert_problem(app.accounts().refresh_with(&other.refresh).await, 401).await;
    let me = ann.browser.me().await;
    assert_eq!(me.status(), 200, "the caller's own session stays");
}

#[tokio::test]
async fn after_a_password_change_only_the_new_password_logs_in() {
    let app = spawn_app().await;
    let ann = app.accounts().sign_up("ann@example.com").await;

    let res = ann.browser.change_password(PASSWORD, NEW_PASSWORD).await;

    assert_eq!(res.status(), 204);
    assert_problem(app.accounts().login("ann@example.com", PASSWORD).await, 401).await;
    app.accounts().log_in("ann@example.com", NEW_PASSWORD).await;
}

#[tokio::test]
async fn a_wrong_current_password_is_422_naming_it() {
    let app = spawn_app().await;
    let ann = app.accounts().sign_up("ann@example.com").await;

    let res = ann
        .browser
        .change_password("not my password", NEW_PASSWORD)
        .await;

    let body = assert_problem(res, 422).await;
    assert_eq!(body["errors"][0]["field"], "current_password");
}

#[tokio::test]
async fn a_new_password_against_the_policy_is_422_naming_it() {
    let app = spawn_app().await;
    let ann = app.accounts().sign_up("ann@example.com").await;

    let res = ann.browser.change_password(PASSWORD, "short").await;

    let body = assert_problem(res, 422).await;
    assert_eq!(body["errors"][0]["field"], "new_password");
}

#[tokio::test]
async fn wrong_current_passwords_over_the_account_limit_are_429() {
    let app = spawn_app_with(&[("LOGIN_RATE_PER_MINUTE", "2")]).await;
    let ann = app.accounts().sign_up("ann@example.com").await;
    let guess = || {
        ann.browser
            .change_password("a guessed password", NEW_PASSWORD)
    };
    for _ in 0..2 {
        assert_problem(guess().await, 422).await;
    }

    let res = guess().await;

    assert!(res.headers().contains_key("retry-after"));
    assert_problem(res, 429).await;
}
