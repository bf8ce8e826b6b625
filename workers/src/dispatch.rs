//! Routes the messages of one consumer to a handler by their envelope `type`.

use crate::consumer::{Delivery, Failure, Handler};
use futures::future::BoxFuture;
use std::collections::HashMap;
use std::sync::Arc;

type One = Arc<dyn Fn(Delivery) -> BoxFuture<'static, Result<(), Failure>> + Send + Sync>;
type Many =
    Arc<dyn Fn(Vec<Delivery>) -> BoxFuture<'static, Vec<Result<(), Failure>>> + Send + Sync>;

#[derive(Clone)]
enum Route {
    One(One),
    /// Handles the messages of its group received together, in one call.
    Many {
        group: &'static str,
        handler: Many,
    },
}

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

    /// Messages of `message_type` are handled one by one.
    pub fn on<F, Fut>(mut self, message_type: &'static str, handler: F) -> Self
    where
        F: Fn(Delivery) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<(), Failure>> + Send + 'static,
    {
        self.routes.insert(
            message_type,
            Route::One(Arc::new(move |d| Box::pin(handler(d)))),
        );
        self
    }

    /// Messages of any of `message_types` received together are handled in one call (one
    /// outcome per message, in order).
    pub fn on_many<F, Fut>(mut self, message_types: &[&'static str], handler: F) -> Self
    where
        F: Fn(Vec<Delivery>) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Vec<Result<(), Failure>>> + Send + 'static,
    {
        let handler: Many = Arc::new(move |d| Box::pin(handler(d)));
        let group = message_types.first().copied().unwrap_or_default();
        for message_type in message_types {
            self.routes.insert(
                message_type,
                Route::Many {
                    group,
                    handler: Arc::clone(&handler),
                },
            );
        }
        self
    }

    fn route(&self, delivery: &Delivery) -> Result<&Route, Failure> {
        let Some(kind) = common::messaging::peek_type(&delivery.payload) else {
            return Err(Failure::permanent(
                "payload is not a JSON envelope with a type",
            ));
        };
        self.routes.get(kind.as_str()).ok_or_else(|| {
            Failure::permanent(format!(
                "no handler for message type {kind:?} on {}",
                delivery.subject
            ))
        })
    }
}

impl Handler for Dispatch {
    async fn handle(&self, delivery: Delivery) -> Result<(), Failure> {
        match self.route(&delivery)? {
            Route::One(handler) => handler(delivery).await,
            Route::Many { handler, .. } => {
                let mut outcomes = handler(vec![delivery]).await;
                outcomes.pop().unwrap_or_else(|| {
                    Err(Failure::Transient(anyhow::anyhow!(
                        "batch handler gave no outcome"
                    )))
                })
            }
        }
    }

    fn batch_group(&self, delivery: &Delivery) -> Option<&'static str> {
        match self.route(delivery) {
            Ok(Route::Many { group, .. }) => Some(group),
            _ => None,
        }
    }

    async fn handle_batch(&self, deliveries: Vec<Delivery>) -> Vec<Result<(), Failure>> {
        // The loop groups by `batch_group`: every delivery here has the same route.
        match deliveries.first().map(|d| self.route(d)) {
            Some(Ok(Route::Many { handler, .. })) => handler(deliveries).await,
            _ => {
                let mut outcomes = Vec::with_capacity(deliveries.len());
                for delivery in deliveries {
                    outcomes.push(self.handle(delivery).await);
                }
                outcomes
            }
        }
    }
}
