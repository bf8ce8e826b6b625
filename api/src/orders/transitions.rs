//! Order transitions from the api: staff status changes and cancellations.
//! The api checks the transition against the order's current status before publishing (so the
//! common mistakes get an immediate 409), and the order worker checks again: it is the
//! authority, since the status may change between the two. Each command names the request it
//! carries out, so a retried request is one command (JetStream drops the copy as a duplicate,
//! and the retry is answered with what the first led to) and two requests are two.

use super::model::{Order, StatusChangeRequest};
use super::repo;
use super::service::{Commanded, broker_unavailable, not_acknowledged};
use crate::auth::AuthUser;
use crate::error::{ApiError, FieldError};
use crate::state::AppState;
use common::domain::{Actor, OrderStatus, Reason};
use common::messages::TransitionOrder;
use common::shipping::Shipment;
use serde_json::json;
use std::time::Duration;
use uuid::Uuid;

fn illegal(order: &Order, to: OrderStatus) -> ApiError {
    conflict(
        order,
        format!("order is {}; it cannot become {to}", order.status),
    )
}

/// A 409 naming the order's current status.
fn conflict(order: &Order, detail: String) -> ApiError {
    let mut extensions = serde_json::Map::new();
    extensions.insert("current_status".into(), json!(order.status));
    ApiError::Conflict { detail, extensions }
}

/// A transition asked for over HTTP.
pub struct TransitionRequest<'a> {
    pub user: AuthUser,
    pub order_id: Uuid,
    pub to: OrderStatus,
    pub reason: Option<Reason>,
    /// From which statuses this caller may make the transition, narrower than the lifecycle (a
    /// customer cancels only before payment); `None`: wherever the lifecycle allows. Carried in
    /// the command, so the order worker refuses the transition if the order moved on meanwhile.
    pub allowed_from: Option<&'static [OrderStatus]>,
    /// Carrier and tracking, with the transition to SHIPPED.
    pub shipment: Option<Shipment>,
    pub wait: Option<Duration>,
    pub correlation_id: &'a common::correlation::CorrelationId,
    /// The request the command carries out ([`super::command::request_id`]).
    pub request: Uuid,
}

/// Requests the transition: checked here, published, applied by the order worker.
pub async fn request(
    state: &AppState,
    request: TransitionRequest<'_>,
) -> Result<Commanded, ApiError> {
    let TransitionRequest {
        user,
        order_id,
        to,
        reason,
        allowed_from,
        shipment,
        wait,
        correlation_id,
        request,
    } = request;
    let allowed = |s: OrderStatus| s.can_become(to) && allowed_from.is_none_or(|a| a.contains(&s));
    let owner = (!user.is_admin()).then_some(user.id);
    let order = repo::find(&state.db, order_id, owner)
        .await?
        .ok_or(ApiError::NotFound("order"))?;
    if order.status == to {
        // Already there: asking again changes nothing. A shipment is given once, with the
        // transition; another one is not taken for a retry.
        if shipment.is_some() && order.shipment != shipment {
            return Err(conflict(
                &order,
                format!("order is already {to}; its shipment cannot be changed"),
            ));
        }
        return Ok(Commanded::Outcome(order));
    }
    if !allowed(order.status) {
        return Err(illegal(&order, to));
    }
    if state.nats.connection_state() != async_nats::connection::State::Connected {
        return Err(broker_unavailable());
    }
    let mut waiter = match wait {
        Some(_) => Some(state.watch.register(order_id).await),
        None => None,
    };
    let command = TransitionOrder {
        order_id,
        to,
        actor: Actor::user(user.id),
        reason,
        allowed_from: allowed_from.map(<[OrderStatus]>::to_vec),
        carrier: shipment.as_ref().map(|s| s.carrier.clone()),
        tracking_number: shipment.as_ref().map(|s| s.tracking_number.clone()),
        tracking_url: shipment.and_then(|s| s.tracking_url),
        request: Some(request),
    };
    let published = state
        .bus
        .publish(command, correlation_id)
        .await
        .map_err(|e| not_acknowledged("transition", order_id, e))?;
    // The outcome is in: the order got there, or moved where it cannot get there from any more.
    let settled = |s: OrderStatus| s == to || !allowed(s);
    if let (Some(waiter), Some(wait)) = (waiter.as_mut(), wait) {
        // A duplicate is this request published before (a retry under its Idempotency-Key),
        // perhaps applied before this listened: look first.
        let applied = published.duplicate
            && repo::find(&state.db, order_id, owner)
                .await?
                .is_some_and(|o| settled(o.status));
        if !applied {
            waiter.wait_for(wait, settled).await;
        }
    }
    let order = repo::find(&state.db, order_id, owner)
        .await?
        .ok_or(ApiError::NotFound("order"))?;
    if order.status == to {
        return Ok(Commanded::Outcome(order));
    }
    if (wait.is_some() || published.duplicate) && !allowed(order.status) {
        // The worker refused it: the order moved elsewhere meanwhile (paid before a
        // customer's cancel reached it, say). A retry learns it too: nothing new was accepted.
        return Err(illegal(&order, to));
    }
    Ok(Commanded::Accepted(order))
}

/// The change asked for, checked: a status staff may set by hand, a reason within its bounds,
/// and shipment fields only with SHIPPED, whole. The reason and the shipment, or one 422
/// naming every bad field.
pub fn validate_transition(
    body: &StatusChangeRequest,
) -> Result<(Option<Reason>, Option<Shipment>), ApiError> {
    let mut errors = Vec::new();
    if !body.status.is_staff_target() {
        errors.push(FieldError::new(
            "status",
            format!(
                "{} is set by the system; use {}",
                body.status,
                staff_targets()
            ),
        ));
    }
    let reason = body
        .reason
        .as_deref()
        .map(Reason::new)
        .transpose()
        .unwrap_or_else(|message| {
            errors.push(FieldError::new("reason", message));
            None
        });
    let shipment = common::shipping::shipment(
        body.status,
        body.carrier.as_deref(),
        body.tracking_number.as_deref(),
        body.tracking_url.as_deref(),
    )
    .map_err(|fields| {
        errors.extend(fields.into_iter().map(|(f, m)| FieldError::new(f, m)));
    })
    .ok()
    .flatten();
    if errors.is_empty() {
        Ok((reason, shipment))
    } else {
        Err(ApiError::Validation(errors))
    }
}

/// The statuses staff may set, as a sentence names them: `PAID, SHIPPED, DELIVERED or
/// CANCELLED`.
fn staff_targets() -> String {
    let names: Vec<&str> = OrderStatus::STAFF_TARGETS
        .iter()
        .map(|s| s.as_str())
        .collect();
    match names.split_last() {
        Some((last, [])) => (*last).to_owned(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::domain::MAX_REASON_CHARS;

    fn body(status: OrderStatus, reason: Option<String>) -> StatusChangeRequest {
        StatusChangeRequest {
            status,
            reason,
            carrier: None,
            tracking_number: None,
            tracking_url: None,
        }
    }

    #[test]
    fn one_answer_names_a_bad_status_and_a_bad_reason_together() {
        let long = Some("r".repeat(MAX_REASON_CHARS + 1));
        let Err(ApiError::Validation(errors)) =
            validate_transition(&body(OrderStatus::Pending, long))
        else {
            panic!("expected a 422");
        };
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["status", "reason"]);
        let longest = Some(format!(" {} ", "r".repeat(MAX_REASON_CHARS)));
        let (reason, shipment) =
            validate_transition(&body(OrderStatus::Paid, longest)).expect("valid");
        assert_eq!(reason.map(|r| r.len()), Some(MAX_REASON_CHARS));
        assert_eq!(shipment, None);
    }

    #[test]
    fn the_statuses_staff_may_set_are_named_in_a_sentence() {
        assert_eq!(staff_targets(), "PAID, SHIPPED, DELIVERED or CANCELLED");
    }
}
