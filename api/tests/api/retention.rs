//! Tables that would only grow are purged, from any number of replicas at once, and a user's
//! live sessions are capped.

use crate::helpers::{PASSWORD, assert_eventually, spawn_app, spawn_app_with};
use common::domain::Role;
use std::time::Duration;

#[tokio::test]
async fn a_purge_removes_old_idempotency_keys_used_tokens_and_ended_sessions_and_nothing_else() {
    let app = spawn_app().await;
    let user = app.create_user(Role::Client).await;
    let old_key = app.orders().idempotency_key_aged(user.id, "25 hours").await;
    let fresh_key = app.orders().idempotency_key_aged(user.id, "23 hours").await;
    let stale_token = app
        .accounts()
        .session_with_token(user.id, Some("8 days"), None)
        .await;
    let recent_token = app
        .accounts()
        .session_with_token(user.id, Some("6 days"), None)
        .await;
    let unused_token = app.accounts().session_with_token(user.id, None, None).await;
    let ended = app
        .accounts()
        .session_with_token(user.id, None, Some("2 days"))
        .await;
    let just_ended = app
        .accounts()
        .session_with_token(user.id, None, Some("1 hour"))
        .await;

    let purged = api::retention::purge(&app.state.db)
        .await
        .unwrap()
        .expect("not locked");

    assert_eq!(purged.idempotency_keys, 1);
    assert_eq!(purged.sessions, 1);
    assert_eq!(purged.refresh_tokens, 1);
    let keys = app.count("SELECT count(*) FROM idempotency_keys").await;
    assert_eq!(keys, 1, "{old_key} went, {fresh_key} stays");
    for (session, tokens) in [
        (stale_token, 0),
        (recent_token, 1),
        (unused_token, 1),
        (just_ended, 1),
    ] {
        let left = app
            .count(&format!(
                "SELECT count(*) FROM refresh_tokens WHERE session_id = '{session}'"
            ))
            .await;
        assert_eq!(left, tokens, "tokens of session {session}");
    }
    let gone = app
        .count(&format!(
            "SELECT count(*) FROM sessions WHERE id = '{ended}'"
        ))
        .await;
    assert_eq!(gone, 0, "a session ended two days ago goes with its tokens");
}

#[tokio::test]
async fn a_purge_removes_webhook_deliveries_that_ended_a_month_ago_and_keeps_pending_ones() {
    let app = spawn_app().await;
    let endpoint = uuid::Uuid::new_v4();
    sqlx::query("INSERT INTO webhook_endpoints (id, url, events, secret) VALUES ($1, 'https://hooks.example.com/', '{*}', '\\x00')")
        .bind(endpoint)
        .execute(&app.state.db)
        .await
        .unwrap();
    for (status, next, age) in [
        ("SUCCEEDED", None, "31 days"),
        ("FAILED", None, "31 days"),
        ("SUCCEEDED", None, "29 days"),
        ("PENDING", Some("now()"), "40 days"),
    ] {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO webhook_deliveries (id, endpoint_id, event_id, event_type, payload, status, ticket, next_attempt_at, updated_at)
             VALUES (gen_random_uuid(), $1, gen_random_uuid(), 'order.status_changed', '{{}}', '{status}', gen_random_uuid(), {}, now() - interval '{age}')",
            next.unwrap_or("NULL")
        )))
        .bind(endpoint)
        .execute(&app.state.db)
        .await
        .unwrap();
    }

    let purged = api::retention::purge(&app.state.db)
        .await
        .unwrap()
        .expect("not locked");

    assert_eq!(purged.webhook_deliveries, 2);
    let left = app.count("SELECT count(*) FROM webhook_deliveries WHERE status = 'PENDING' OR updated_at > now() - interval '30 days'").await;
    assert_eq!(
        (
            left,
            app.count("SELECT count(*) FROM webhook_deliveries").await
        ),
        (2, 2)
    );
}

#[tokio::test]
async fn purges_from_many_replicas_at_once_each_remove_a_row_once() {
    let app = spawn_app().await;
    let user = app.create_user(Role::Client).await;
    for _ in 0..50 {
        app.orders().idempotency_key_aged(user.id, "2 days").await;
    }

    let purges =
        futures::future::join_all((0..4).map(|_| api::retention::purge(&app.state.db))).await;

    let removed: u64 = purges
        .into_iter()
        .map(|p| p.expect("no purge fails").map_or(0, |p| p.idempotency_keys))
        .sum();
    assert_eq!(removed, 50);
    assert_eq!(app.count("SELECT count(*) FROM idempotency_keys").await, 0);
}

#[tokio::test]
async fn the_api_purges_on_its_own_every_interval() {
    let app = spawn_app_with(&[("PURGE_INTERVAL_MS", "100")]).await;
    let user = app.create_user(Role::Client).await;
    app.orders().idempotency_key_aged(user.id, "2 days").await;

    assert_eventually(Duration::from_secs(10), "the old key purged", || async {
        app.count("SELECT count(*) FROM idempotency_keys").await == 0
    })
    .await;
}

#[tokio::test]
async fn a_login_past_the_session_cap_revokes_the_oldest_session() {
    let app = spawn_app_with(&[("MAX_SESSIONS_PER_USER", "2")]).await;
    let first = app.accounts().sign_up("ann@example.com").await.session;
    let second = app.accounts().log_in("ann@example.com", PASSWORD).await;

    let third = app.accounts().log_in("ann@example.com", PASSWORD).await;

    assert_eq!(
        app.accounts().me_with(&first.access).await.status(),
        401,
        "the oldest session is revoked"
    );
    assert_eq!(app.accounts().me_with(&second.access).await.status(), 200);
    assert_eq!(app.accounts().me_with(&third.access).await.status(), 200);
    let live = app
        .count("SELECT count(*) FROM sessions WHERE revoked_at IS NULL")
        .await;
    assert_eq!(live, 2);
}

#[tokio::test]
async fn a_purge_removes_after_sale_outcomes_recorded_more_than_a_day_ago() {
    let app = spawn_app().await;
    sqlx::query(
        "INSERT INTO after_sale_outcomes (request_id, order_id, refusal, recorded_at)
         VALUES (gen_random_uuid(), gen_random_uuid(), NULL, now() - interval '25 hours'),
                (gen_random_uuid(), gen_random_uuid(), 'refused', now() - interval '26 hours'),
                (gen_random_uuid(), gen_random_uuid(), NULL, now() - interval '23 hours')",
    )
    .execute(&app.state.db)
    .await
    .unwrap();

    let purged = api::retention::purge(&app.state.db)
        .await
        .unwrap()
        .expect("not locked");

    assert_eq!(purged.after_sale_outcomes, 2);
    assert_eq!(
        app.count("SELECT count(*) FROM after_sale_outcomes").await,
        1
    );
}
