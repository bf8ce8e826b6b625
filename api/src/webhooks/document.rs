//! The OpenAPI 3.1 `webhooks` section: one entry per event type an endpoint may subscribe to
//! (and the test event), the request the webhooks worker sends: its Standard Webhooks headers
//! and its `{"type","timestamp","data"}` body, `data` being the event as published on NATS.

use common::webhooks::{TEST_EVENT, event_types};
use serde_json::{Value, json};
use utoipa::openapi::OpenApi;
use utoipa::openapi::path::{PathItem, Paths};

/// Adds the `webhooks` section, and the schemas of the events' data to the components.
pub fn add_webhooks(openapi: &mut OpenApi) {
    let mut paths = Paths::new();
    let components = openapi.components.get_or_insert_with(Default::default);
    let mut entries: Vec<(String, String, Value)> = Vec::new();
    for event in event_types() {
        let (name, schemas) = (event.schemas)();
        for (schema_name, schema) in schemas {
            components.schemas.entry(schema_name).or_insert(schema);
        }
        let data = json!({"$ref": format!("#/components/schemas/{name}")});
        entries.push((event.name(), event.description.to_owned(), data));
    }
    entries.push((
        TEST_EVENT.to_owned(),
        "Sent by POST /webhooks/{id}/test, whatever the endpoint subscribes to.".to_owned(),
        json!({
            "type": "object",
            "required": ["endpoint_id", "message"],
            "properties": {
                "endpoint_id": {"type": "string", "format": "uuid"},
                "message": {"type": "string"}
            }
        }),
    ));
    for (name, description, data) in entries {
        match serde_json::from_value::<PathItem>(path_item(&name, &description, data)) {
            Ok(item) => {
                paths.paths.insert(name, item);
            }
            Err(e) => tracing::error!(error = %e, webhook = %name, "webhook not documented"),
        }
    }
    openapi.webhooks = Some(paths);
}

fn path_item(name: &str, description: &str, data: Value) -> Value {
    let header = |header: &str, description: &str, example: &str| {
        json!({"name": header, "in": "header", "required": true, "description": description,
               "schema": {"type": "string"}, "example": example})
    };
    json!({
        "post": {
            "operationId": format!("webhook_{}", name.replace('.', "_")),
            "tags": ["webhooks"],
            "summary": name,
            "description": format!("{description} Signed per Standard Webhooks: verify with any of its libraries and the endpoint's `whsec_` secret; deduplicate on `webhook-id`."),
            "parameters": [
                header("webhook-id", "The delivery's id: the same on every attempt, retry and replay.", "msg_2f1c0e6a9b7d4c3e8a5f0b1d2c3e4f5a"),
                header("webhook-timestamp", "When this attempt was sent, in Unix seconds.", "1714557600"),
                header("webhook-signature", "`v1,` and the base64 HMAC-SHA256 of `{webhook-id}.{webhook-timestamp}.{body}` with the secret's decoded bytes; two, space separated, while a rotated secret still signs.", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
            ],
            "requestBody": {
                "required": true,
                "content": {"application/json": {"schema": {
                    "type": "object",
                    "required": ["type", "timestamp", "data"],
                    "properties": {
                        "type": {"type": "string", "enum": [name]},
                        "timestamp": {"type": "string", "format": "date-time", "description": "When the event happened"},
                        "data": data
                    }
                }}}
            },
            "responses": {
                "2XX": {"description": "Received. Any other answer, or none within WEBHOOK_TIMEOUT_SECS, is retried on the schedule."}
            }
        }
    })
}
