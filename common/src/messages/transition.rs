//! How `orders.cmd.transition` decodes: through its fields as received, its shipment fields
//! checked against the move they come with ([`shipment`]) and kept trimmed, so a bad one is
//! refused naming the field.

use super::TransitionOrder;
use crate::domain::{Actor, OrderStatus, Reason, blank_is_absent};
use crate::shipping::{Shipment, describe, shipment};
use serde::Deserialize;
use uuid::Uuid;

/// `orders.cmd.transition` as received, its shipment fields not checked yet.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TransitionFields {
    order_id: Uuid,
    to: OrderStatus,
    actor: Actor,
    #[serde(default, deserialize_with = "blank_is_absent")]
    reason: Option<Reason>,
    #[serde(default)]
    allowed_from: Option<Vec<OrderStatus>>,
    #[serde(default)]
    carrier: Option<String>,
    #[serde(default)]
    tracking_number: Option<String>,
    #[serde(default)]
    tracking_url: Option<String>,
    #[serde(default)]
    request: Option<Uuid>,
}

impl TryFrom<TransitionFields> for TransitionOrder {
    type Error = String;
    fn try_from(f: TransitionFields) -> Result<Self, Self::Error> {
        let checked = shipment(
            f.to,
            f.carrier.as_deref(),
            f.tracking_number.as_deref(),
            f.tracking_url.as_deref(),
        )
        .map_err(|errors| describe(&errors))?;
        Ok(TransitionOrder {
            order_id: f.order_id,
            to: f.to,
            actor: f.actor,
            reason: f.reason,
            allowed_from: f.allowed_from,
            carrier: checked.as_ref().map(|s| s.carrier.clone()),
            tracking_number: checked.as_ref().map(|s| s.tracking_number.clone()),
            tracking_url: checked.and_then(|s| s.tracking_url),
            request: f.request,
        })
    }
}

impl TransitionOrder {
    /// The carrier and tracking the move to SHIPPED comes with, if any.
    pub fn shipment(&self) -> Option<Shipment> {
        match (&self.carrier, &self.tracking_number) {
            (Some(carrier), Some(tracking_number)) => Some(Shipment {
                carrier: carrier.clone(),
                tracking_number: tracking_number.clone(),
                tracking_url: self.tracking_url.clone(),
            }),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decoded(to: &str, shipment: serde_json::Value) -> Result<TransitionOrder, String> {
        let mut json = serde_json::json!({"order_id": Uuid::nil(), "to": to, "actor": "a"});
        if let (Some(json), Some(fields)) = (json.as_object_mut(), shipment.as_object()) {
            json.extend(fields.clone());
        }
        serde_json::from_value(json).map_err(|e| e.to_string())
    }

    #[test]
    fn shipment_fields_decode_only_with_shipped_whole_and_trimmed() {
        let on_delivered = decoded(
            "DELIVERED",
            serde_json::json!({"carrier": "UPS", "tracking_number": "1Z"}),
        );
        assert!(
            on_delivered
                .expect_err("refused")
                .starts_with("carrier: only a move to SHIPPED")
        );
        let alone = decoded("SHIPPED", serde_json::json!({"carrier": "UPS"}));
        assert!(
            alone
                .expect_err("refused")
                .contains("tracking_number: required")
        );
        let ftp = serde_json::json!({"carrier": "UPS", "tracking_number": "1Z",
            "tracking_url": "ftp://carrier.example/1Z"});
        assert!(
            decoded("SHIPPED", ftp)
                .expect_err("refused")
                .starts_with("tracking_url")
        );
        let whole = serde_json::json!({"carrier": " UPS ", "tracking_number": "1Z",
            "tracking_url": "https://carrier.example/1Z"});
        let shipped = decoded("SHIPPED", whole).expect("valid");
        assert_eq!(shipped.carrier.as_deref(), Some("UPS"));
        let shipment = shipped.shipment().expect("a shipment");
        assert_eq!(
            shipment.tracking_url.as_deref(),
            Some("https://carrier.example/1Z")
        );
        let none = decoded("PAID", serde_json::json!({})).expect("valid");
        assert_eq!(none.shipment(), None);
        let extra = decoded("PAID", serde_json::json!({"surprise": 1}));
        assert!(extra.is_err());
    }
}
