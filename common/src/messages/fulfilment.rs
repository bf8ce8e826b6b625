//! What outside systems report about an order after the sale: a warehouse ships it
//! (`orders.cmd.fulfil`), a carrier delivers it (`orders.cmd.deliver`). Each report names the
//! publisher's own `reference`, from which its message id derives, and the order worker applies
//! it once per reference. The messages carry no actor: the order worker records the role the
//! subject stands for (`system:warehouse`, `system:carrier`), and NATS permissions decide who
//! may publish on which subject.
//!
//! Both grow only by optional fields (a fulfilment of some lines, for split shipments, will
//! add `lines`), so a publisher written against this version stays understood.

use crate::message;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// `orders.cmd.fulfil`: a warehouse shipped a paid order: everything left of it, with carrier
/// and tracking. The order becomes `SHIPPED` with the shipment, its reservation a sale, in one
/// transaction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FulfilOrder {
    pub order_id: Uuid,
    /// The warehouse's unique id of this shipment (1 to 200 characters): applied once, however
    /// often it arrives; another order's reference, or another shipment of a shipped order, is
    /// refused (dead-lettered).
    pub reference: String,
    /// Who carries the parcel (1 to 100 characters).
    pub carrier: String,
    /// The carrier's tracking number (1 to 100 characters).
    pub tracking_number: String,
    /// Where to follow the parcel: an http or https URL (at most 2000 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracking_url: Option<String>,
}

message!(FulfilOrder {
    subject: "orders.cmd.fulfil",
    kind: "orders.fulfil",
    version: 1,
    id: |m| format!("fulfil:{}", m.reference),
    order: |m| m.order_id,
});

/// `orders.cmd.deliver`: a carrier (or a warehouse delivering itself) delivered a shipped order.
/// The order becomes `DELIVERED`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeliverOrder {
    pub order_id: Uuid,
    /// The carrier's unique id of this delivery (1 to 200 characters): applied once, however
    /// often it arrives; another order's reference, or another delivery of a delivered order,
    /// is refused (dead-lettered).
    pub reference: String,
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
            reference: "wms-1".into(),
            carrier: "UPS".into(),
            tracking_number: "1Z".into(),
            tracking_url: None,
        };
        assert_eq!(fulfil.message_id(), "fulfil:wms-1");
        let json = serde_json::to_value(&fulfil).expect("encodes");
        assert!(json.get("tracking_url").is_none(), "{json}");
        let deliver = DeliverOrder {
            order_id: Uuid::nil(),
            reference: "pod-1".into(),
        };
        assert_eq!(deliver.message_id(), "deliver:pod-1");
        let with_actor = serde_json::json!({
            "order_id": Uuid::nil(), "reference": "pod-1", "actor": "user:someone"
        });
        assert!(serde_json::from_value::<DeliverOrder>(with_actor).is_err());
    }
}
