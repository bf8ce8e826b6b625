//! Routes the messages of one consumer to a handler by their envelope `type`.

use crate::consumer::{Delivery, Failure, Handler};
use futures::future::BoxFuture;
use std::collections::HashMap;
use std::sync::Arc;

type Route = Arc<dyn Fn(Delivery) -> BoxFuture<'static, Result<(), Failure>> + Send + Sync>;

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

    pub fn on<F, Fut>(mut self, message_type: &'static str, handler: F) -> Self
    where
        F: Fn(Delivery) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<(), Failure>> + Send + 'static,
    {
        self.routes
            .insert(message_type, Arc::new(move |d| Box::pin(handler(d))));
        self
    }
}

impl Handler for Dispatch {
    async fn handle(&self, delivery: Delivery) -> Result<(), Failure> {
        let Some(kind) = common::messaging::peek_type(&delivery.payload) else {
            return Err(Failure::permanent(
                "payload is not a JSON envelope with a type",
            ));
        };
        match self.routes.get(kind.as_str()) {
            Some(route) => route(delivery).await,
            None => Err(Failure::permanent(format!(
                "no handler for message type {kind:?} on {}",
                delivery.subject
            ))),
        }
    }
}
