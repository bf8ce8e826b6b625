//! The AsyncAPI 3.0 document of every subject an outside system may publish or subscribe to,
//! generated from the Rust message types, so the published schema cannot drift from the code.
//! `docs/asyncapi.json` is its committed copy (a test keeps the two equal, and the test suite
//! validates it with the AsyncAPI project's own parser).

use crate::messages::{
    AdjustStock, AfterSale, DeliverOrder, FulfilOrder, FulfilmentChanged, OrderStatusChanged,
    PaymentFailed, PaymentSucceeded, PlaceOrder, RefundChanged, RefundFailed, RefundOrder,
    RefundPayment, RefundSucceeded, ReturnChanged, TransitionOrder,
};
use crate::messaging::Message;
use serde_json::{Map, Value, json};
use utoipa::openapi::{RefOr, schema::Schema};
use utoipa::{PartialSchema, ToSchema};

/// What the order service does on a channel: AsyncAPI 3 describes operations from the
/// application's side, so `Receive` is where others publish to the service and `Send` where
/// others may subscribe to what it publishes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Action {
    Send,
    Receive,
}

/// Every channel of the document, one entry each: the message type (which names its subject),
/// what the service does there, and what an integrator needs to know.
fn channels() -> Vec<Channel> {
    use Action::{Receive, Send};
    vec![
        channel::<PlaceOrder>(
            &[Send, Receive],
            "Place an order (the api, a POS, a storefront). Work-queue stream ORDERS_CMD; the order id is chosen by the publisher and must be new. The inventory worker records it once, CONFIRMED with every line's stock reserved or REJECTED with the reason, and publishes orders.evt.status_changed. An optional shipping_address is checked field by field (a bad one is dead-lettered naming the field) and kept with the order. Publish with header Nats-Msg-Id: order:<order_id>:place.",
        ),
        channel::<TransitionOrder>(
            &[Send],
            "The order service's own command (the api for staff and customers, the expiry sweeper): move an order along its lifecycle (PAID, SHIPPED, DELIVERED, CANCELLED), with its stock effect in the same transaction (released on CANCELLED, sold at SHIPPED). Outside systems may not publish it (NATS permissions): warehouses and carriers use orders.cmd.fulfil and orders.cmd.deliver, payment providers payments.evt.*. Optional allowed_from narrows the statuses it applies from. A move to SHIPPED may carry carrier and tracking_number (together) and tracking_url (http or https), stored with the order in the same transaction and carried in the SHIPPED status event; on another status they are refused. Illegal or invalid moves are dead-lettered. Nats-Msg-Id: order:<order_id>:to:<STATUS>:request:<request> (request names the HTTP request: its Idempotency-Key, else its request id), or order:<order_id>:to:<STATUS>:<actor> without one (the expiry sweeper), so two requests for one step are two commands.",
        ),
        channel::<FulfilOrder>(
            &[Receive],
            "A warehouse shipped a PAID (or PARTIALLY_SHIPPED) order: with lines, those quantities (each at most what is left of its line; more is dead-lettered naming the line), one fulfilment, the order PARTIALLY_SHIPPED or SHIPPED, orders.evt.fulfilment_changed published; without lines, everything left of it, with carrier and tracking_number (and optionally tracking_url, http or https). The order worker moves it to SHIPPED with the shipment, its reservation becoming a sale, in one transaction, and publishes orders.evt.status_changed with the shipment; the timeline records system:warehouse as the actor and the reference as the reason. Applied once per reference: a report republished with its reference changes nothing twice; one naming another order's reference, another shipment of a shipped order, or an order not PAID is dead-lettered with the reason. NATS user warehouse. Work-queue stream ORDERS_CMD. Nats-Msg-Id: fulfil:<reference>.",
        ),
        channel::<DeliverOrder>(
            &[Receive],
            "A carrier (or a warehouse delivering itself) delivered one shipment (fulfilment_id: it becomes DELIVERED, orders.evt.fulfilment_changed follows, and the order is DELIVERED once it is SHIPPED and every shipment is), or without fulfilment_id a SHIPPED order: the order worker moves it to DELIVERED, recording system:carrier as the actor and the reference as the reason. Applied once per reference, like orders.cmd.fulfil; an order not SHIPPED is dead-lettered with the reason. NATS users carrier and warehouse. Work-queue stream ORDERS_CMD. Nats-Msg-Id: deliver:<reference>.",
        ),
        channel::<AdjustStock>(
            &[Receive],
            "Add or remove available stock (warehouse receipts, counts, breakage), recorded in the product's stock ledger once per reference. Stock never goes below zero: such an adjustment, or one for an unknown or archived product, is dead-lettered with the reason. Work-queue stream INVENTORY_CMD. Nats-Msg-Id: adjustment:<reference>.",
        ),
        channel::<OrderStatusChanged>(
            &[Send],
            "An order was recorded (from null to CONFIRMED or REJECTED) or changed status; a SHIPPED event made with tracking carries the shipment. Stream EVENTS, kept 7 days: subscribe with your own durable consumer.",
        ),
        channel::<PaymentSucceeded>(
            &[Receive],
            "A payment provider captured a payment. The right amount for a CONFIRMED order pays it; anything else is recorded for refund. Nats-Msg-Id: payment:<provider_reference>:succeeded.",
        ),
        channel::<PaymentFailed>(
            &[Receive],
            "A payment failed for good: a CONFIRMED order is cancelled and its stock released, in one transaction. Nats-Msg-Id: payment:<provider_reference>:failed.",
        ),
        channel::<RefundOrder>(
            &[Send, Receive],
            "Refund part or all of an order's captured money, or (with payment_reference) a payment recorded refund_required. The order worker records the refund REQUESTED, under the order's row lock, only if the REQUESTED and SUCCEEDED refunds stay within what was paid, then publishes payments.cmd.refund; else it records the refund REFUSED with the reason (failure_reason), announced on orders.evt.refund_changed and never sent to the payment system. A payment_reference that is not one of the order's payments to give back is dead-lettered. Work-queue stream ORDERS_CMD. Nats-Msg-Id: refund:<refund_id>:request.",
        ),
        channel::<RefundPayment>(
            &[Send],
            "The order service asks the payment system to give money back. Work-queue stream PAYMENTS_CMD: the payment system reads it through its own durable consumer and answers payments.evt.refunded or payments.evt.refund_failed with the same refund_id. Nats-Msg-Id: refund-<refund_id>, so a command published again is dropped inside the duplicate window.",
        ),
        channel::<RefundSucceeded>(
            &[Receive],
            "A refund's money went back: the refund becomes SUCCEEDED and the order's amount_refunded grows, in one transaction; recorded once per provider_reference. Nats-Msg-Id: refund:<provider_reference>:refunded.",
        ),
        channel::<RefundFailed>(
            &[Receive],
            "A refund could not be made: the refund becomes FAILED and its amount counts as paid again (it may be asked for anew); recorded once per provider_reference. Nats-Msg-Id: refund:<provider_reference>:failed.",
        ),
        channel::<AfterSale>(
            &[Receive],
            "The order service's own after-sale steps (only the api and the order worker may publish): ship some quantities of a PAID or PARTIALLY_SHIPPED order, mark one shipment delivered, cancel what is left (stock back, value refunded), ask for a return of delivered quantities, receive it (restock per line, value refunded), reject or cancel it. Each step is one transaction under the order's row lock; its outcome is recorded under request_id (made, or refused with the reason). Work-queue stream ORDERS_CMD. Nats-Msg-Id: order:<order_id>:after-sale:<request_id>.",
        ),
        channel::<FulfilmentChanged>(
            &[Send],
            "A shipment of an order was made (SHIPPED) or delivered (DELIVERED), with the order's status after the change. Stream EVENTS, kept 7 days. Nats-Msg-Id: fulfilment:<id>:<status>.",
        ),
        channel::<ReturnChanged>(
            &[Send],
            "A return of an order was requested, received, rejected or cancelled. Stream EVENTS, kept 7 days. Nats-Msg-Id: return:<id>:<status>.",
        ),
        channel::<RefundChanged>(
            &[Send],
            "A refund of an order was requested, succeeded, failed or refused (REFUSED: the order worker found it over what is left to refund, or nothing captured; reason says why), with the order's payment_status, amount_paid and amount_refunded after the change. Stream EVENTS, kept 7 days.",
        ),
    ]
}

/// One subject and the one message type carried on it.
struct Channel {
    subject: &'static str,
    actions: &'static [Action],
    description: &'static str,
    message: &'static str,
    version: u32,
    /// The name of the message's `data` schema.
    schema: String,
    /// That schema and every schema it refers to.
    schemas: Vec<(String, RefOr<Schema>)>,
}

fn channel<M: Message + ToSchema>(
    actions: &'static [Action],
    description: &'static str,
) -> Channel {
    let mut schemas = vec![(M::name().into_owned(), <M as PartialSchema>::schema())];
    M::schemas(&mut schemas);
    Channel {
        subject: M::SUBJECT,
        actions,
        description,
        message: M::TYPE,
        version: M::VERSION,
        schema: M::name().into_owned(),
        schemas,
    }
}

impl Channel {
    /// Channel ids may not contain dots: `orders.cmd.place` is `orders_cmd_place`.
    fn id(&self) -> String {
        self.subject.replace('.', "_")
    }

    fn message_id(&self) -> String {
        self.message.replace('.', "_")
    }

    /// The message in `components.messages`: the envelope, with this type's `data`.
    fn message(&self) -> Value {
        let mut headers = json!({
            "Nats-Msg-Id": {"type": "string", "description": "Deterministic id; duplicates inside 2 minutes are dropped"},
            "Correlation-Id": {"type": "string", "description": CORRELATION_DESCRIPTION},
            "traceparent": {"type": "string", "description": "W3C trace context, continued by every step the message causes"}
        });
        if self.subject == <crate::messages::PlaceOrder as crate::messaging::Message>::SUBJECT {
            headers[crate::messaging::OUTCOME_REPLY_HEADER] = json!({"type": "string", "maxLength": crate::messages::MAX_REPLY_SUBJECT,
                "description": "Optional: a core NATS subject the inventory worker sends the recorded order to at once, before the status event (not stored, at most once)"});
        }
        json!({
            "name": self.message,
            "title": self.message,
            "summary": format!("Envelope of a {} message, version {}", self.message, self.version),
            "contentType": "application/json",
            "headers": {
                "type": "object",
                "properties": headers
            },
            "payload": {
                "type": "object",
                "additionalProperties": false,
                "required": ["id", "type", "version", "occurred_at", "correlation_id", "data"],
                "properties": {
                    "id": {"type": "string", "format": "uuid"},
                    "type": {"type": "string", "const": self.message},
                    "version": {"type": "integer", "const": self.version},
                    "occurred_at": {"type": "string", "format": "date-time"},
                    "correlation_id": {"type": "string", "description": CORRELATION_DESCRIPTION},
                    "data": {"$ref": format!("#/components/schemas/{}", self.schema)}
                }
            }
        })
    }
}

/// What the correlation id of a message may be (see [`crate::correlation`]).
const CORRELATION_DESCRIPTION: &str = "Travels to every step the message causes (the header wins over the envelope). 1 to 128 characters of letters, digits and - . _ : / + = @; any other is replaced by a digest of it (a UUID), never refused";

/// Builds the document. Subjects are shown without a namespace; a deployment with
/// `NATS_NAMESPACE=x` prefixes each with `x.`.
pub fn document() -> Value {
    let mut schemas = Map::new();
    let mut messages = Map::new();
    let mut channel_map = Map::new();
    let mut operations = Map::new();
    for c in channels() {
        for (name, schema) in &c.schemas {
            schemas.insert(
                name.clone(),
                serde_json::to_value(schema).unwrap_or(Value::Null),
            );
        }
        let (id, message) = (c.id(), c.message_id());
        messages.insert(message.clone(), c.message());
        channel_map.insert(
            id.clone(),
            json!({
                "address": c.subject,
                "description": c.description,
                "messages": {&message: {"$ref": format!("#/components/messages/{message}")}}
            }),
        );
        for action in c.actions {
            let (verb, summary) = match action {
                Action::Send => (
                    "send",
                    format!("The order service publishes {}.", c.subject),
                ),
                Action::Receive => (
                    "receive",
                    format!("The order service consumes {}.", c.subject),
                ),
            };
            operations.insert(
                format!("{verb}_{id}"),
                json!({
                    "action": verb,
                    "summary": summary,
                    "channel": {"$ref": format!("#/channels/{id}")},
                    "messages": [{"$ref": format!("#/channels/{id}/messages/{message}")}]
                }),
            );
        }
    }
    json!({
        "asyncapi": "3.0.0",
        "info": {
            "title": "Order service messaging",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Subjects of the order service on NATS JetStream. Every message is JSON in one envelope (id, type, version, occurred_at, correlation_id, data); unknown fields are rejected and an invalid message is dead-lettered with its reason (subject dlq.<original subject>). Prefix every subject with NATS_NAMESPACE and a dot when the deployment sets one. Operations are the service's own: `receive` where other systems may publish to it, `send` where they may subscribe to what it publishes.",
            "license": {"name": "Apache-2.0", "url": "https://www.apache.org/licenses/LICENSE-2.0"}
        },
        "defaultContentType": "application/json",
        "servers": {
            "local": {"host": "127.0.0.1:4222", "protocol": "nats", "description": "nats-server 2.9 or later with JetStream"}
        },
        "channels": channel_map,
        "operations": operations,
        "components": {"messages": messages, "schemas": schemas}
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn committed_path() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/asyncapi.json")
    }

    /// Regenerate with `UPDATE_ASYNCAPI=1 cargo test -p common asyncapi`.
    #[test]
    fn the_committed_asyncapi_document_matches_the_rust_types() {
        let generated = serde_json::to_string_pretty(&document()).expect("serialises") + "\n";
        if std::env::var_os("UPDATE_ASYNCAPI").is_some() {
            std::fs::write(committed_path(), &generated).expect("write docs/asyncapi.json");
        }
        let committed = std::fs::read_to_string(committed_path()).unwrap_or_default();
        assert!(
            committed == generated,
            "docs/asyncapi.json is out of date: run UPDATE_ASYNCAPI=1 cargo test -p common asyncapi"
        );
    }

    #[test]
    fn every_schema_a_message_references_is_defined() {
        let doc = document();
        let text = doc.to_string();
        let schemas = doc["components"]["schemas"].as_object().expect("schemas");
        for piece in text.split("#/components/schemas/").skip(1) {
            let name: String = piece
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            assert!(
                schemas.contains_key(&name),
                "{name} is referenced but not defined"
            );
        }
    }

    #[test]
    fn an_envelope_produced_by_the_publisher_satisfies_the_documented_shape() {
        let doc = document();
        let message = &doc["components"]["messages"]["payments_succeeded"]["payload"];
        let envelope = crate::messaging::Envelope::<PaymentSucceeded>::new(
            PaymentSucceeded {
                order_id: uuid::Uuid::nil(),
                amount: crate::money::Money::new(1).unwrap(),
                currency: crate::money::Currency::new("USD").unwrap(),
                provider_reference: crate::domain::Reference::new("r").expect("valid"),
            },
            "c",
        );
        let value = serde_json::to_value(&envelope).expect("envelope");
        let required: Vec<&str> = message["required"]
            .as_array()
            .expect("required")
            .iter()
            .filter_map(|v| v.as_str())
            .collect();
        let keys: Vec<&str> = value
            .as_object()
            .expect("object")
            .keys()
            .map(|k| k.as_str())
            .collect();
        for key in &keys {
            assert!(required.contains(key), "{key} is not documented");
        }
        assert_eq!(keys.len(), required.len());
        let data = &doc["components"]["schemas"]["PaymentSucceeded"]["properties"];
        for field in value["data"].as_object().expect("data").keys() {
            assert!(data.get(field).is_some(), "data.{field} is not documented");
        }
    }
}
