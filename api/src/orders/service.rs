//! Placing an order: validate, claim the idempotency key, publish the command and wait for
//! JetStream's acknowledgement, optionally wait for the outcome.

use super::accepted::Pending;
use super::idempotency::{self, Claim};
use super::model::Order;
use super::repo;
use super::waiter::{Heard, Waiter};
use crate::error::{ApiError, FieldError};
use crate::state::AppState;
use chrono::Utc;
use common::domain::Lines;
use common::domain::UNPAID_LIMIT_REJECTION;
use common::messages::{LineRequest, PlaceOrder};
use common::shipping::{Address, ShippingAddress};
use std::time::Duration;
use uuid::Uuid;

/// The longest `Prefer: wait` honoured, well inside the request timeout.
pub const MAX_WAIT: Duration = Duration::from_secs(10);

/// UUID v5 namespace of order ids derived from idempotency keys.
const IDEMPOTENT_ORDER_IDS: Uuid = Uuid::from_u128(0x0d3c_9a4e_52b1_4f0e_9c7a_61e2_b8d4_f017);

/// How the api answers a command it published (a placement, a transition, a cancellation): with
/// the order as it stands once the command settled, or as it stood when JetStream stored it.
pub enum Commanded {
    /// Accepted, outcome not known yet (202).
    Accepted(Order),
    /// The outcome is in within the wait (201 for a placement, 200 otherwise).
    Outcome(Order),
}

/// The id of the order a user places under an idempotency key: the same for every retry.
pub fn idempotent_order_id(user_id: Uuid, key: &str) -> Uuid {
    Uuid::new_v5(&IDEMPOTENT_ORDER_IDS, format!("{user_id}:{key}").as_bytes())
}

/// The lines merged and bounded and the address normalised, or a 422 naming every bad field
/// of both.
pub fn validate(
    lines: &[LineRequest],
    shipping_address: Option<&ShippingAddress>,
) -> Result<(Lines, Option<Address>), ApiError> {
    let lines = Lines::merging(lines);
    let address = shipping_address
        .map(|a| Address::new(a, "shipping_address"))
        .transpose();
    match (lines, address) {
        (Ok(lines), Ok(address)) => Ok((lines, address)),
        (lines, address) => Err(ApiError::Validation(
            lines
                .err()
                .into_iter()
                .chain(address.err())
                .flatten()
                .map(|(field, message)| FieldError::new(field, message))
                .collect(),
        )),
    }
}

pub async fn place(
    state: &AppState,
    user_id: Uuid,
    lines: Vec<LineRequest>,
    shipping_address: Option<ShippingAddress>,
    idempotency_key: Option<&str>,
    wait: Option<Duration>,
    correlation_id: &common::correlation::CorrelationId,
) -> Result<Commanded, ApiError> {
    let (lines, shipping_address) = validate(&lines, shipping_address.as_ref())?;
    // With a key the order id is derived from it: should a command whose acknowledgement was
    // lost reach the stream after all, a retry under the same key names the same order.
    let fresh_id = match idempotency_key {
        Some(key) => idempotent_order_id(user_id, key),
        None => state.accepted.order_id(),
    };
    let order_id = match idempotency_key {
        None => fresh_id,
        Some(key) => match idempotency::claim(
            &state.db,
            user_id,
            key,
            &lines,
            shipping_address.as_deref(),
            fresh_id,
        )
        .await?
        {
            Claim::Fresh { order_id } => order_id,
            Claim::Replay {
                order_id,
                items,
                shipping_address,
                at,
            } => {
                let pending = Pending {
                    user_id,
                    lines: items,
                    accepted_at: at,
                    shipping_address: shipping_address.map(|a| *a),
                };
                return await_outcome(state, order_id, &pending, None, wait).await;
            }
            Claim::InFlight => {
                return Err(ApiError::conflict(
                    "a request with this Idempotency-Key is still in flight; retry shortly",
                ));
            }
            Claim::Mismatch => {
                return Err(ApiError::Unprocessable(
                    "this Idempotency-Key was already used with a different request body".into(),
                ));
            }
        },
    };

    // An account at its bound of unpaid orders is refused before anything is published; the
    // inventory worker counts again where it records the order, so racing placements cannot
    // pass the bound either (they are recorded REJECTED, answered 429 to those who wait).
    if let Some(max) = state.config.max_unpaid_orders_per_user {
        let unpaid = repo::unpaid(&state.db, user_id, max).await?;
        if unpaid.held >= i64::from(max) {
            let detail = format!(
                "{UNPAID_LIMIT_REJECTION}: the account already holds {max}, the most allowed; \
                 pay or cancel one, or wait for one to expire"
            );
            let refusal = unpaid_limit(state, &unpaid, detail, None);
            return unpublished(state, user_id, idempotency_key, refusal).await;
        }
    }

    // A product known to have sold out is refused here, once PostgreSQL confirms it, instead
    // of being published and recorded REJECTED.
    if let Err(refusal) = super::sold_out::refuse_unless_stocked(state, &lines).await {
        return unpublished(state, user_id, idempotency_key, refusal).await;
    }

    // A disconnected client would queue the command and send it on reconnect, long after the
    // client was told 503; refuse up front instead.
    if state.nats.connection_state() != async_nats::connection::State::Connected {
        return unpublished(state, user_id, idempotency_key, broker_unavailable()).await;
    }
    // Listen before publishing, so a fast outcome is not missed; one who waits has the
    // outcome sent straight here as well as announced. Without a waiter, this replica still
    // hears the order's status event, which tells it the order accepted here is recorded.
    let waiter = match wait {
        Some(_) => Some(state.watch.register(order_id).await),
        None => {
            state.watch.hear().await;
            None
        }
    };
    let reply_to = wait.map(|_| state.outcomes.reply_to(order_id));
    // Subscribed before publishing: the acknowledgement follows the subscription on the
    // connection, so any replica asked after the 202 finds this one answering for the order.
    let answering = state.accepted.answering(order_id).await;
    let command = PlaceOrder {
        order_id,
        user_id,
        items: lines.clone(),
        shipping_address: shipping_address.clone(),
    };
    let pending = Pending {
        user_id,
        lines: lines.to_vec(),
        accepted_at: Utc::now(),
        shipping_address: shipping_address.map(ShippingAddress::from),
    };
    let published = match state
        .bus
        .publish_asking(command, correlation_id, reply_to.as_deref())
        .await
    {
        Ok(published) => published,
        Err(e) => {
            let refusal = not_acknowledged("place", order_id, e);
            return unpublished(state, user_id, idempotency_key, refusal).await;
        }
    };
    metrics::counter!("orders_placed_total").increment(1);
    state
        .accepted
        .accepted(order_id, pending.clone(), answering);
    if let Some(key) = idempotency_key {
        idempotency::mark_published(&state.db, user_id, key).await?;
    }
    if wait.is_none() && !published.duplicate {
        // Just stored and not waited for: the order is PENDING as far as this answer goes, so
        // answer with what was accepted instead of looking for it.
        return Ok(Commanded::Accepted(
            super::lookup::pending_view(state, order_id, &pending).await?,
        ));
    }
    // A waiter registered before the publish hears every outcome of this command. A duplicate
    // (a command of this id already stored by an attempt whose acknowledgement was lost) may
    // have settled before it listened, like a replay.
    let waiter = waiter.map(|w| match published.duplicate {
        false => Listening::SincePublish(w),
        true => Listening::Late(w),
    });
    await_outcome(state, order_id, &pending, waiter, wait).await
}

const BROKER_UNAVAILABLE: &str =
    "the order could not be accepted right now (message broker unavailable); retry later";

pub(super) fn broker_unavailable() -> ApiError {
    ApiError::Unavailable(BROKER_UNAVAILABLE.into())
}

/// A command JetStream did not acknowledge: a 503, whose cause the error middleware logs once.
pub(super) fn not_acknowledged(
    what: &str,
    order_id: uuid::Uuid,
    e: impl Into<anyhow::Error>,
) -> ApiError {
    let cause = e.into().context(format!(
        "{what} command for order {order_id} not acknowledged by JetStream"
    ));
    ApiError::unavailable_because(BROKER_UNAVAILABLE, cause)
}

/// `refusal` for a placement whose command was not published, once its `Idempotency-Key` (if
/// any) is released: a retry under the key starts afresh.
async fn unpublished(
    state: &AppState,
    user_id: Uuid,
    idempotency_key: Option<&str>,
    refusal: ApiError,
) -> Result<Commanded, ApiError> {
    if let Some(key) = idempotency_key {
        idempotency::release(&state.db, user_id, key).await?;
    }
    Err(refusal)
}

/// A 429 for an account at its bound of unpaid orders, to retry once the oldest of them
/// expires (unless paid or cancelled sooner); `order_id` names the order recorded `REJECTED`
/// for it, if any.
fn unpaid_limit(
    state: &AppState,
    unpaid: &repo::Unpaid,
    detail: String,
    order_id: Option<Uuid>,
) -> ApiError {
    let ttl = chrono::Duration::from_std(state.config.reservation_ttl).unwrap_or_default();
    let until_expiry = unpaid
        .oldest
        .map_or(ttl, |oldest| oldest + ttl - Utc::now());
    let retry_after_secs = u64::try_from((until_expiry.num_milliseconds() + 999) / 1000)
        .unwrap_or(0)
        .max(1);
    let mut extensions = serde_json::Map::new();
    extensions.insert("unpaid_orders".into(), unpaid.held.into());
    if let Some(order_id) = order_id {
        extensions.insert("order_id".into(), order_id.to_string().into());
    }
    ApiError::Limited {
        detail,
        retry_after_secs,
        extensions,
    }
}

/// How a request waiting for an order's outcome listens to its status events.
enum Listening {
    /// Registered before the command was published: no outcome can have been missed.
    SincePublish(Waiter),
    /// Registered after the command may already have been handled (a replay, a duplicate).
    Late(Waiter),
}

/// Waits (if asked) for the outcome, then answers with the order as it now stands.
async fn await_outcome(
    state: &AppState,
    order_id: Uuid,
    pending: &Pending,
    waiter: Option<Listening>,
    wait: Option<Duration>,
) -> Result<Commanded, ApiError> {
    let user_id = pending.user_id;
    if let Some(wait) = wait {
        let listening = match waiter {
            Some(listening) => listening,
            None => Listening::Late(state.watch.register(order_id).await),
        };
        let mut waiter = match listening {
            Listening::SincePublish(waiter) => waiter,
            Listening::Late(waiter) => {
                // The outcome may have been announced before this listened: check once.
                if let Some(order) = repo::find(&state.db, order_id, Some(user_id)).await?
                    && order.status.is_recorded()
                {
                    return Ok(Commanded::Outcome(order));
                }
                waiter
            }
        };
        // Answered from the outcome sent straight here when it comes first; the bound on
        // unpaid orders' refusal is told with what the database holds, as below.
        if let Some(Heard::Outcome(outcome)) = waiter.wait_for_placement(wait).await
            && let Some(order) = repo::recorded(*outcome, Some(user_id))
            && !order
                .rejection_reason
                .as_deref()
                .is_some_and(|r| r.starts_with(UNPAID_LIMIT_REJECTION))
        {
            // Its outcome may have come before this replica held it: forget it now.
            state.accepted.forget(order_id);
            answered_from("outcome");
            return Ok(Commanded::Outcome(order));
        }
    }
    match repo::find(&state.db, order_id, Some(user_id)).await? {
        Some(order) if order.status.is_recorded() && wait.is_some() => {
            state.accepted.forget(order_id);
            answered_from("read");
            match (
                &order.rejection_reason,
                state.config.max_unpaid_orders_per_user,
            ) {
                // Refused where it was recorded, for the bound the api could not see yet.
                (Some(reason), Some(max)) if reason.starts_with(UNPAID_LIMIT_REJECTION) => {
                    let unpaid = repo::unpaid(&state.db, user_id, max).await?;
                    Err(unpaid_limit(state, &unpaid, reason.clone(), Some(order.id)))
                }
                _ => Ok(Commanded::Outcome(order)),
            }
        }
        Some(order) => Ok(Commanded::Accepted(order)),
        None => Ok(Commanded::Accepted(
            super::lookup::pending_view(state, order_id, pending).await?,
        )),
    }
}

/// Counts a waiting placement answered with its outcome: `outcome` as the worker sent it,
/// `read` from PostgreSQL (its status event came without it, or it was a replay).
fn answered_from(from: &'static str) {
    metrics::counter!("placements_answered_total", "from" => from).increment(1);
}

/// Parses `Prefer: wait=N` (RFC 7240), capped at [`MAX_WAIT`].
pub fn parse_prefer_wait(headers: &axum::http::HeaderMap) -> Option<Duration> {
    headers
        .get_all(axum::http::header::HeaderName::from_static("prefer"))
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split([',', ';']))
        .filter_map(|pref| {
            let (name, value) = pref.trim().split_once('=')?;
            name.trim()
                .eq_ignore_ascii_case("wait")
                .then(|| value.trim().trim_matches('"').parse::<u64>().ok())
                .flatten()
        })
        .next()
        .map(|secs| Duration::from_secs(secs).min(MAX_WAIT))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{HeaderMap, HeaderValue};

    #[test]
    fn prefer_wait_is_parsed_and_capped() {
        let mut h = HeaderMap::new();
        assert_eq!(parse_prefer_wait(&h), None);
        h.insert("prefer", HeaderValue::from_static("respond-async, wait=3"));
        assert_eq!(parse_prefer_wait(&h), Some(Duration::from_secs(3)));
        h.insert("prefer", HeaderValue::from_static("wait=3600"));
        assert_eq!(parse_prefer_wait(&h), Some(MAX_WAIT));
        h.insert("prefer", HeaderValue::from_static("wait=soon"));
        assert_eq!(parse_prefer_wait(&h), None);
    }
}
