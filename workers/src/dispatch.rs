//! Routes the deliveries of one consumer to their handler by the envelope's `type`, decoding
//! `data` into the handler's message type once. A delivery whose `data` does not decode is a
//! permanent failure of its own; the others of its group go on.

use crate::consumer::{Delivery, Failure, Handled, Handler};
use common::correlation::CorrelationId;
use common::messaging::Message;
use futures::future::BoxFuture;
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use tracing::Instrument;

/// A delivered message of type `M`, as a handler sees it.
#[derive(Debug)]
pub struct Incoming<M> {
    pub message: M,
    pub correlation_id: CorrelationId,
    /// How many times the server has delivered it (1 on first delivery).
    pub delivered: i64,
    /// Where to send the outcome at once, if the publisher asked (see [`Delivery::reply_to`]).
    pub reply_to: Option<String>,
    trace: common::trace::Context,
    span: tracing::Span,
}

impl<M> Incoming<M> {
    /// A message as if delivered for the first time, in a new trace: for handing to a
    /// handler directly.
    pub fn new(message: M, correlation_id: &str) -> Self {
        Incoming {
            message,
            correlation_id: CorrelationId::bounded(correlation_id),
            delivered: 1,
            reply_to: None,
            trace: common::trace::new_root(),
            span: tracing::Span::none(),
        }
    }

    /// Runs `work` as part of this message's handling: in its trace (what it publishes
    /// continues the publisher's trace) and its log span.
    pub fn within<F: Future>(&self, work: F) -> impl Future<Output = F::Output> {
        common::trace::scope(self.trace.clone(), work).instrument(self.span.clone())
    }
}

type Route = Arc<dyn Fn(Vec<Delivery>) -> BoxFuture<'static, Vec<Handled>> + Send + Sync>;

/// A table from message type to handler. A message whose type has no handler can never
/// succeed here and is dead-lettered with that reason.
#[derive(Default, Clone)]
pub struct Dispatch {
    routes: HashMap<&'static str, Route>,
}

impl Dispatch {
    pub fn new() -> Self {
        Self::default()
    }

    /// Messages of type `M` received together are handled in one call of `handler`, which
    /// gives one result per message, in order.
    pub fn on<M, F, Fut>(mut self, handler: F) -> Self
    where
        M: Message,
        F: Fn(Vec<Incoming<M>>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Vec<Handled>> + Send + 'static,
    {
        let handler = Arc::new(handler);
        let route: Route = Arc::new(move |deliveries| {
            let handler = Arc::clone(&handler);
            Box::pin(decode_and_handle(deliveries, move |m| handler(m)))
        });
        self.routes.insert(M::TYPE, route);
        self
    }
}

/// Decodes each delivery's data as `M` and hands those that decode to `handler`.
async fn decode_and_handle<M, F, Fut>(deliveries: Vec<Delivery>, handler: F) -> Vec<Handled>
where
    M: Message,
    F: FnOnce(Vec<Incoming<M>>) -> Fut,
    Fut: Future<Output = Vec<Handled>>,
{
    let mut results: Vec<Option<Handled>> = (0..deliveries.len()).map(|_| None).collect();
    let mut decoded = Vec::with_capacity(deliveries.len());
    let mut positions = Vec::with_capacity(deliveries.len());
    for (i, delivery) in deliveries.into_iter().enumerate() {
        match delivery.envelope.data_as::<M>() {
            Ok(message) => {
                if let Some(order_id) = message.order_id() {
                    delivery
                        .span
                        .record("order_id", tracing::field::display(order_id));
                }
                positions.push(i);
                decoded.push(Incoming {
                    message,
                    correlation_id: delivery.correlation_id,
                    delivered: delivery.delivered,
                    reply_to: delivery.reply_to,
                    trace: delivery.trace,
                    span: delivery.span,
                });
            }
            Err(e) => results[i] = Some(Err(e.into())),
        }
    }
    if !decoded.is_empty() {
        for (i, result) in positions.into_iter().zip(handler(decoded).await) {
            results[i] = Some(result);
        }
    }
    results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(Failure::transient("the handler gave no result"))))
        .collect()
}

impl Handler for Dispatch {
    fn group(&self, delivery: &Delivery) -> Result<&'static str, Failure> {
        let kind = delivery.envelope.kind.as_str();
        self.routes
            .get_key_value(kind)
            .map(|(group, _)| *group)
            .ok_or_else(|| {
                Failure::permanent(format!(
                    "no handler for message type {kind:?} on {}",
                    delivery.subject
                ))
            })
    }

    async fn handle(&self, group: &'static str, deliveries: Vec<Delivery>) -> Vec<Handled> {
        match self.routes.get(group) {
            Some(route) => route(deliveries).await,
            None => deliveries
                .iter()
                .map(|_| Err(Failure::permanent(format!("no handler for {group}"))))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::domain::MAX_REASON_CHARS;
    use common::messages::TransitionOrder;
    use common::messaging::RawEnvelope;
    use uuid::Uuid;

    fn delivery(reason: &str) -> Delivery {
        let payload = serde_json::json!({"id": Uuid::nil(), "type": "orders.transition",
            "version": 1, "occurred_at": "2026-01-01T00:00:00Z", "correlation_id": "c",
            "data": {"order_id": Uuid::nil(), "to": "CANCELLED", "actor": "system:test",
                     "reason": reason}});
        Delivery {
            subject: TransitionOrder::SUBJECT.to_owned(),
            envelope: RawEnvelope::parse(payload.to_string().as_bytes()).expect("an envelope"),
            delivered: 1,
            stream_sequence: 1,
            correlation_id: CorrelationId::bounded("c"),
            trace: common::trace::Context::new(),
            span: tracing::Span::none(),
            reply_to: None,
        }
    }

    #[tokio::test]
    async fn a_message_that_does_not_decode_fails_for_good_naming_the_field_and_alone() {
        let long = "r".repeat(MAX_REASON_CHARS + 1);
        let deliveries = vec![delivery(&long), delivery("changed my mind")];
        let handled = decode_and_handle(deliveries, |decoded: Vec<Incoming<TransitionOrder>>| {
            let reasons: Vec<Option<String>> = decoded
                .iter()
                .map(|d| d.message.reason.as_ref().map(ToString::to_string))
                .collect();
            assert_eq!(reasons, vec![Some("changed my mind".to_owned())]);
            async move { decoded.iter().map(|_| Ok(())).collect() }
        })
        .await;
        match &handled[0] {
            Err(Failure::Permanent(why)) => assert!(
                why.contains(&format!(
                    "orders.transition: reason: must be 1 to {MAX_REASON_CHARS} characters"
                )),
                "{why}"
            ),
            other => panic!("expected a permanent failure, got {other:?}"),
        }
        assert!(handled[1].is_ok(), "{:?}", handled[1]);
    }
}
