//! After the sale, at the HTTP edge: shipments of some lines, deliveries, cancelling what is
//! left, and returns. The api checks who asks and the request's shape (422 naming each bad
//! field), publishes the step (`orders.cmd.after_sale`), and waits for the order worker's
//! outcome, recorded under the request's id: the order once the step is made, a 409 with the
//! worker's reason when the order does not allow it (a quantity over what is left, a return
//! past its window, a second receipt). The worker is the one judge, under the order's row
//! lock, so two racing requests cannot both take the last unit.

pub mod routes;

use super::command::{Wait, about_order, idempotency_key, preference_applied, request_id};
use super::repo;
use super::service::{broker_unavailable, not_acknowledged};
use crate::auth::AuthUser;
use crate::error::{ApiError, FieldError};
use crate::state::AppState;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use common::correlation::CorrelationId;
use common::domain::{Actor, Lines, OrderStatus, Reason};
use common::messages::{AfterSale, AfterSaleStep, LineRequest};
use common::shipping::Shipment;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// How long a step is waited for without `Prefer: wait` (the order worker takes milliseconds;
/// past this the answer is `202`).
const DEFAULT_WAIT: Duration = Duration::from_secs(5);
/// How often the recorded outcome is looked for while waiting.
const OUTCOME_POLL: Duration = Duration::from_millis(10);

/// One step asked for over HTTP.
pub struct StepRequest<'a> {
    pub user: &'a AuthUser,
    pub order_id: Uuid,
    pub step: AfterSaleStep,
    pub headers: &'a HeaderMap,
    pub correlation: &'a CorrelationId,
    pub wait: Wait,
    /// The status of the answer once the step is made (`201` for what it creates).
    pub made: StatusCode,
}

/// Publishes the step and answers its outcome: the order with `made`, a 409 naming why the
/// order worker refused it, or `202` with the order when the wait ran out.
pub async fn run(state: &AppState, r: StepRequest<'_>) -> Result<Response, ApiError> {
    let owner = (!r.user.is_admin()).then_some(r.user.id);
    repo::find(&state.db, r.order_id, owner)
        .await?
        .ok_or(ApiError::NotFound("order"))?;
    let request = request_id(r.user.id, idempotency_key(r.headers)?, r.correlation);
    if state.nats.connection_state() != async_nats::connection::State::Connected {
        return Err(broker_unavailable());
    }
    let command = AfterSale {
        order_id: r.order_id,
        request_id: request,
        actor: Actor::user(r.user.id),
        staff: r.user.is_admin(),
        step: r.step,
    };
    state
        .bus
        .publish(command, r.correlation)
        .await
        .map_err(|e| not_acknowledged("after-sale", r.order_id, e))?;
    let outcome = outcome(&state.db, request, r.wait.0.unwrap_or(DEFAULT_WAIT)).await?;
    let order = repo::find(&state.db, r.order_id, owner)
        .await?
        .ok_or(ApiError::NotFound("order"))?;
    let status = match outcome {
        Some(None) => r.made,
        Some(Some(why)) => {
            let mut extensions = serde_json::Map::new();
            extensions.insert("current_status".into(), serde_json::json!(order.status));
            return Err(ApiError::Conflict {
                detail: why,
                extensions,
            });
        }
        None => StatusCode::ACCEPTED,
    };
    Ok(preference_applied(
        about_order(status, r.order_id, &order),
        r.wait,
    ))
}

/// The step's recorded outcome (`Some(None)` made, `Some(Some(why))` refused), or `None` if
/// none was recorded within `wait`.
async fn outcome(
    db: &sqlx::PgPool,
    request: Uuid,
    wait: Duration,
) -> Result<Option<Option<String>>, ApiError> {
    let deadline = Instant::now() + wait;
    loop {
        let found = sqlx::query_scalar!(
            "SELECT refusal FROM after_sale_outcomes WHERE request_id = $1",
            request,
        )
        .fetch_optional(db)
        .await?;
        if found.is_some() || Instant::now() >= deadline {
            return Ok(found);
        }
        tokio::time::sleep(OUTCOME_POLL).await;
    }
}

/// Lines of a shipment or a return, repeated products merged and bounded as an order's; or
/// each bad field named.
fn check_lines(lines: &[LineRequest], errors: &mut Vec<FieldError>) -> Option<Lines> {
    Lines::merging(lines)
        .map_err(|bad| {
            errors.extend(bad.into_iter().map(|(field, message)| {
                let field = field.replacen("items", "lines", 1);
                FieldError::new(field, message.replace("an order needs", "name"))
            }));
        })
        .ok()
}

/// A reason ([`Reason`]), or the field named at fault.
fn check_reason(reason: &str, errors: &mut Vec<FieldError>) -> Option<Reason> {
    Reason::new(reason)
        .map_err(|message| errors.push(FieldError::new("reason", message)))
        .ok()
}

/// Carrier and tracking of a shipment, both required.
fn check_shipment(
    carrier: &str,
    tracking_number: &str,
    tracking_url: Option<&str>,
    errors: &mut Vec<FieldError>,
) -> Option<Shipment> {
    match common::shipping::shipment(
        OrderStatus::Shipped,
        Some(carrier),
        Some(tracking_number),
        tracking_url,
    ) {
        Ok(shipment) => shipment,
        Err(bad) => {
            errors.extend(bad.into_iter().map(|(f, m)| FieldError::new(f, m)));
            None
        }
    }
}

/// `value` when nothing was found wrong, else one 422 naming each bad field.
fn checked<T>(value: Option<T>, errors: Vec<FieldError>) -> Result<T, ApiError> {
    match value {
        Some(value) if errors.is_empty() => Ok(value),
        _ => Err(ApiError::Validation(errors)),
    }
}
