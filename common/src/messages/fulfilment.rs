//! What outside systems report about an order after the sale: a warehouse ships it
//! (`orders.cmd.fulfil`), a carrier delivers it (`orders.cmd.deliver`). Each report names the
//! publisher's own `reference`, from which its message id derives, and the order worker applies
//! it once per reference. The messages carry no actor: the order worker records the role the
//! subject stands for (`system:warehouse`, `system:carrier`), and NATS permissions decide who
//! may publish on which subject.
//!
//! Both grow only by optional fields (`lines` for a shipment of some quantities,
//! `fulfilment_id` for the delivery of one shipment), so a publisher written against an earlier
//! version stays understood.

use crate::domain::LineRequest;
use crate::domain::{Lines, OrderStatus, Reference};
use crate::message;
use crate::shipping::{Shipment, describe, shipment};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// `orders.cmd.fulfil`: a warehouse shipped some or all of a paid order, with carrier and
/// tracking: one fulfilment, its quantities' reservation a sale, and the order
/// `PARTIALLY_SHIPPED` (something left) or `SHIPPED` (nothing left), in one transaction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
// Its carrier and tracking are checked as it decodes (as `shipment` checks them for a move to
// SHIPPED), and held trimmed: a bad one is refused naming the field.
#[serde(deny_unknown_fields, try_from = "FulfilFields")]
pub struct FulfilOrder {
    pub order_id: Uuid,
    /// The warehouse's unique id of this shipment (1 to 200 characters): applied once, however
    /// often it arrives; another order's reference, or another shipment of a shipped order, is
    /// refused (dead-lettered).
    #[schema(value_type = String)]
    pub reference: Reference,
    /// Who carries the parcel (1 to 100 characters).
    pub carrier: String,
    /// The carrier's tracking number (1 to 100 characters).
    pub tracking_number: String,
    /// Where to follow the parcel: an http or https URL (at most 2000 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracking_url: Option<String>,
    /// The quantities shipped, each at most what is left of its line. Absent: everything
    /// left. A quantity over what is left is refused (dead-lettered).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<LineRequest>>)]
    pub lines: Option<Lines>,
}

impl FulfilOrder {
    /// The carrier and tracking the report gives.
    pub fn shipment(&self) -> Shipment {
        Shipment {
            carrier: self.carrier.clone(),
            tracking_number: self.tracking_number.clone(),
            tracking_url: self.tracking_url.clone(),
        }
    }
}

/// `orders.cmd.fulfil` as received, its shipment not checked yet.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FulfilFields {
    order_id: Uuid,
    reference: Reference,
    carrier: String,
    tracking_number: String,
    #[serde(default)]
    tracking_url: Option<String>,
    #[serde(default)]
    lines: Option<Lines>,
}

impl TryFrom<FulfilFields> for FulfilOrder {
    type Error = String;
    fn try_from(f: FulfilFields) -> Result<Self, Self::Error> {
        let checked = shipment(
            OrderStatus::Shipped,
            Some(&f.carrier),
            Some(&f.tracking_number),
            f.tracking_url.as_deref(),
        )
        .map_err(|errors| describe(&errors))?;
        let Some(Shipment {
            carrier,
            tracking_number,
            tracking_url,
        }) = checked
        else {
            return Err("carrier: required".to_owned());
        };
        Ok(FulfilOrder {
            order_id: f.order_id,
            reference: f.reference,
            carrier,
            tracking_number,
            tracking_url,
            lines: f.lines,
        })
    }
}

message!(FulfilOrder {
    subject: "orders.cmd.fulfil",
    kind: "orders.fulfil",
    version: 1,
    id: |m| format!("fulfil:{}", m.reference),
    order: |m| m.order_id,
});

/// `orders.cmd.deliver`: a carrier (or a warehouse delivering itself) delivered one shipment
/// of an order (`fulfilment_id`), or every shipment of a shipped order (absent). The order
/// becomes `DELIVERED` once every shipment is and nothing is left to ship.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeliverOrder {
    pub order_id: Uuid,
    /// The carrier's unique id of this delivery (1 to 200 characters): applied once, however
    /// often it arrives; another order's reference, or another delivery of a delivered order,
    /// is refused (dead-lettered).
    #[schema(value_type = String)]
    pub reference: Reference,
    /// The shipment delivered (a fulfilment's id). Absent: every shipment of a `SHIPPED` order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fulfilment_id: Option<Uuid>,
}

message!(DeliverOrder {
    subject: "orders.cmd.deliver",
    kind: "orders.deliver",
    version: 1,
    id: |m| format!("deliver:{}", m.reference),
    order: |m| m.order_id,
});

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messaging::Message;

    #[test]
    fn outside_reports_are_named_by_their_reference_and_carry_no_actor() {
        let fulfil = FulfilOrder {
            order_id: Uuid::nil(),
            reference: Reference::new("wms-1").expect("valid"),
            carrier: "UPS".into(),
            tracking_number: "1Z".into(),
            tracking_url: None,
            lines: None,
        };
        assert_eq!(fulfil.message_id(), "fulfil:wms-1");
        let json = serde_json::to_value(&fulfil).expect("encodes");
        assert!(json.get("tracking_url").is_none(), "{json}");
        let deliver = DeliverOrder {
            order_id: Uuid::nil(),
            reference: Reference::new("pod-1").expect("valid"),
            fulfilment_id: None,
        };
        assert_eq!(deliver.message_id(), "deliver:pod-1");
        let report = |url: &str| {
            serde_json::json!({"order_id": Uuid::nil(), "reference": "wms-2", "carrier": " DHL ",
                "tracking_number": "JD-2", "tracking_url": url})
        };
        let read = serde_json::from_value::<FulfilOrder>(report("https://dhl.example/JD-2"))
            .expect("valid");
        assert_eq!(read.carrier, "DHL");
        assert_eq!(read.shipment().tracking_number, "JD-2");
        let refused = serde_json::from_value::<FulfilOrder>(report("ftp://dhl.example/JD-2"))
            .expect_err("refused")
            .to_string();
        assert!(
            refused.starts_with("tracking_url: must be an http"),
            "{refused}"
        );
        let mut extra = report("https://dhl.example/JD-2");
        extra["surprise"] = serde_json::json!(1);
        assert!(serde_json::from_value::<FulfilOrder>(extra).is_err());
        let with_actor = serde_json::json!({
            "order_id": Uuid::nil(), "reference": "pod-1", "actor": "user:someone"
        });
        assert!(serde_json::from_value::<DeliverOrder>(with_actor).is_err());
    }
}
