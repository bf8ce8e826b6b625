//! `Idempotency-Key` for `POST /orders`: the same key from the same user returns the same
//! order; the same key with another body is refused; a retry racing the first request is told
//! to wait (409) instead of creating a second order.

use chrono::{DateTime, Utc};
use common::messages::Line;
use common::shipping::ShippingAddress;
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
        items: Vec<Line>,
        /// Boxed: most orders have none, and the other claims are small.
        shipping_address: Option<Box<ShippingAddress>>,
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

/// The hash of what a request asks for, once validated: its lines and its address. Without
/// an address it is the hash of the lines alone, as it was before orders had one, so keys
/// claimed then still match their retries.
pub fn request_hash(lines: &[Line], shipping_address: Option<&ShippingAddress>) -> Vec<u8> {
    let canonical = match shipping_address {
        None => serde_json::to_vec(lines),
        Some(address) => serde_json::to_vec(&serde_json::json!({
            "items": lines,
            "shipping_address": address,
        })),
    }
    .unwrap_or_default();
    Sha256::digest(&canonical).to_vec()
}

/// Where a key stands: claimed by a request still publishing its order, or used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::Type)]
#[sqlx(type_name = "idempotency_state", rename_all = "snake_case")]
enum KeyState {
    InFlight,
    Published,
}

struct Existing {
    request_hash: Vec<u8>,
    order_id: Uuid,
    items: sqlx::types::Json<Vec<Line>>,
    shipping_address: Option<sqlx::types::Json<ShippingAddress>>,
    state: KeyState,
    created_at: DateTime<Utc>,
    age_secs: f64,
}

pub async fn claim(
    db: &PgPool,
    user_id: Uuid,
    key: &str,
    lines: &[Line],
    shipping_address: Option<&ShippingAddress>,
    new_order_id: Uuid,
) -> sqlx::Result<Claim> {
    let hash = request_hash(lines, shipping_address);
    // The primary key serialises racing retries: exactly one insert wins.
    let inserted = sqlx::query!(
        "INSERT INTO idempotency_keys (user_id, key, request_hash, order_id, items,
                                       shipping_address, state)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (user_id, key) DO NOTHING",
        user_id,
        key,
        &hash,
        new_order_id,
        sqlx::types::Json(lines) as _,
        shipping_address.map(sqlx::types::Json) as _,
        KeyState::InFlight as KeyState,
    )
    .execute(db)
    .await?
    .rows_affected()
        == 1;
    if inserted {
        return Ok(Claim::Fresh {
            order_id: new_order_id,
        });
    }
    let existing = sqlx::query_as!(
        Existing,
        r#"SELECT request_hash, order_id,
                  items AS "items: sqlx::types::Json<Vec<Line>>",
                  shipping_address AS "shipping_address: sqlx::types::Json<ShippingAddress>",
                  state AS "state: KeyState", created_at,
                  EXTRACT(EPOCH FROM now() - created_at)::float8 AS "age_secs!"
             FROM idempotency_keys WHERE user_id = $1 AND key = $2"#,
        user_id,
        key,
    )
    .fetch_one(db)
    .await?;
    if existing.request_hash != hash {
        return Ok(Claim::Mismatch);
    }
    if existing.state == KeyState::Published {
        return Ok(Claim::Replay {
            order_id: existing.order_id,
            items: existing.items.0,
            shipping_address: existing.shipping_address.map(|a| Box::new(a.0)),
            at: existing.created_at,
        });
    }
    if existing.age_secs < IN_FLIGHT_TIMEOUT_SECS {
        return Ok(Claim::InFlight);
    }
    // Abandoned: take it over, guarded so that only one retry does.
    let taken = sqlx::query!(
        "UPDATE idempotency_keys SET created_at = now()
          WHERE user_id = $1 AND key = $2 AND state = 'in_flight' AND created_at = $3",
        user_id,
        key,
        existing.created_at,
    )
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
    sqlx::query!(
        "UPDATE idempotency_keys SET state = 'published' WHERE user_id = $1 AND key = $2",
        user_id,
        key,
    )
    .execute(db)
    .await?;
    Ok(())
}

/// The publish failed: forget the key so that a retry can try again.
pub async fn release(db: &PgPool, user_id: Uuid, key: &str) -> sqlx::Result<()> {
    sqlx::query!(
        "DELETE FROM idempotency_keys WHERE user_id = $1 AND key = $2 AND state = 'in_flight'",
        user_id,
        key,
    )
    .execute(db)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_address_is_part_of_the_request_hash_and_its_absence_keeps_the_old_one() {
        // The hash of checked lines is the hash of the lines as requested.
        let requested = [common::messages::LineRequest {
            product_id: Uuid::nil(),
            quantity: 1,
        }];
        let lines = common::domain::Lines::merging(&requested).expect("valid");
        let lines_only =
            Sha256::digest(serde_json::to_vec(&requested).unwrap_or_default()).to_vec();
        assert_eq!(request_hash(&lines, None), lines_only);
        let address = ShippingAddress {
            name: "A".into(),
            line1: "1 Road".into(),
            line2: None,
            city: "Town".into(),
            region: None,
            postal_code: "1000".into(),
            country: "BE".into(),
            phone: None,
        };
        let elsewhere = ShippingAddress {
            city: "City".into(),
            ..address.clone()
        };
        let with = request_hash(&lines, Some(&address));
        assert_ne!(with, lines_only);
        assert_ne!(with, request_hash(&lines, Some(&elsewhere)));
        assert_eq!(with, request_hash(&lines, Some(&address)));
    }
}
