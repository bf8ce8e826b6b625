//! What the accounts and sessions routes log: events, never secrets.

use crate::auth_admin::{ADMIN_PASSWORD, app_with_admin};
use crate::helpers::{PASSWORD, Session, capture_text_logs};

#[tokio::test]
async fn no_log_line_carries_a_password_a_hash_or_a_token() {
    let (logs, _guard) =
        capture_text_logs("debug,hyper=off,hyper_util=off,reqwest=off,cookie_store=off");
    let app = app_with_admin().await;
    let wrong = ["a wrong password", "another wrong password"];
    let new_password = "a brand new passphrase";

    let ann = app.accounts().sign_up("ann@example.com").await;
    app.accounts().login("ann@example.com", wrong[0]).await;
    app.accounts().login("nobody@example.com", wrong[1]).await;
    let refreshed = Session::set_by(&ann.browser.refresh().await);
    ann.browser.change_password(PASSWORD, new_password).await;
    ann.browser.logout().await;
    app.accounts().refresh_with(&refreshed.refresh).await;

    let text = logs.text();
    assert!(
        text.contains("account registered"),
        "logs were captured: {text}"
    );
    let secrets = [
        PASSWORD,
        ADMIN_PASSWORD,
        wrong[0],
        wrong[1],
        new_password,
        &ann.session.access,
        &ann.session.refresh,
        &refreshed.access,
        &refreshed.refresh,
    ];
    for secret in secrets {
        assert!(!text.contains(secret), "a secret was logged");
    }
    assert!(!text.contains("$argon2"), "a hash was logged");
}
