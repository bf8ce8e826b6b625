//! `Idempotency-Key` for `POST /orders`: the same key from the same user returns the same
//! order; the same key with another body is refused; a retry racing the first request is told
//! to wait (409) instead of creating a second order.

use chrono::{DateTime, Utc};
use common::messages::LineRequest;
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use uuid::Uuid;

/// A key whose first request has not finished after this long is taken over by a retry
/// (the first api process died between claiming the key and publishing).
const IN_FLIGHT_TIMEOUT_SECS: f64 = 30.0;

pub enum Claim {
    /// First use of the key (or a takeover of an abandoned one): publish this order.
    Fresh { order_id: Uuid },
    /// The key was used for this order, already published.
    Replay {
        order_id: Uuid,
        items: Vec<LineRequest>,
        at: DateTime<Utc>,
    },
    /// The first request with this key is still being processed.
    InFlight,
    /// The key was used with a different body.
    Mismatch,
}

/// Validates the header value: 1 to 255 visible ASCII characters.
pub fn valid_key(key: &str) -> bool {
    (1..=255).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic())
}

pub fn request_hash(lines: &[LineRequest]) -> Vec<u8> {
    let canonical = serde_json::to_vec(lines).unwrap_or_default();
    Sha256::digest(&canonical).to_vec()
}

#[derive(sqlx::FromRow)]
struct Existing {
    request_hash: Vec<u8>,
    order_id: Uuid,
    items: sqlx::types::Json<Vec<LineRequest>>,
    state: String,
    created_at: DateTime<Utc>,
    age_secs: f64,
}

pub async fn claim(
    db: &PgPool,
    user_id: Uuid,
    key: &str,
    lines: &[LineRequest],
    new_order_id: Uuid,
) -> sqlx::Result<Claim> {
    let hash = request_hash(lines);
    // The primary key serialises racing retries: exactly one insert wins.
    let inserted = sqlx::query(
        "INSERT INTO idempotency_keys (user_id, key, request_hash, order_id, items, state)
         VALUES ($1, $2, $3, $4, $5, 'in_flight')
         ON CONFLICT (user_id, key) DO NOTHING",
    )
    .bind(user_id)
    .bind(key)
    .bind(&hash)
    .bind(new_order_id)
    .bind(sqlx::types::Json(lines))
    .execute(db)
    .await?
    .rows_affected()
        == 1;
    if inserted {
        return Ok(Claim::Fresh {
            order_id: new_order_id,
        });
    }
    let existing: Existing = sqlx::query_as(
        "SELECT request_hash, order_id, items, state, created_at,
                EXTRACT(EPOCH FROM now() - created_at)::float8 AS age_secs
           FROM idempotency_keys WHERE user_id = $1 AND key = $2",
    )
    .bind(user_id)
    .bind(key)
    .fetch_one(db)
    .await?;
    if existing.request_hash != hash {
        return Ok(Claim::Mismatch);
    }
    if existing.state == "published" {
        return Ok(Claim::Replay {
            order_id: existing.order_id,
            items: existing.items.0,
            at: existing.created_at,
        });
    }
    if existing.age_secs < IN_FLIGHT_TIMEOUT_SECS {
        return Ok(Claim::InFlight);
    }
    // Abandoned: take it over, guarded so that only one retry does.
    let taken = sqlx::query(
        "UPDATE idempotency_keys SET created_at = now()
          WHERE user_id = $1 AND key = $2 AND state = 'in_flight' AND created_at = $3",
    )
    .bind(user_id)
    .bind(key)
    .bind(existing.created_at)
    .execute(db)
    .await?
    .rows_affected()
        == 1;
    Ok(if taken {
        Claim::Fresh {
            order_id: existing.order_id,
        }
    } else {
        Claim::InFlight
    })
}

pub async fn mark_published(db: &PgPool, user_id: Uuid, key: &str) -> sqlx::Result<()> {
    sqlx::query("UPDATE idempotency_keys SET state = 'published' WHERE user_id = $1 AND key = $2")
        .bind(user_id)
        .bind(key)
        .execute(db)
        .await?;
    Ok(())
}

/// The publish failed: forget the key so that a retry can try again.
pub async fn release(db: &PgPool, user_id: Uuid, key: &str) -> sqlx::Result<()> {
    sqlx::query(
        "DELETE FROM idempotency_keys WHERE user_id = $1 AND key = $2 AND state = 'in_flight'",
    )
    .bind(user_id)
    .bind(key)
    .execute(db)
    .await?;
    Ok(())
}
