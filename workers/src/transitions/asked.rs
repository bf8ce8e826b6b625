//! What a batch of transitions is asked to do: each transition, and the payments recorded with
//! it. Read by the transaction that judges them (`tx.rs`) and the statement that writes them
//! (`write.rs`).

use common::domain::{OrderStatus, PaymentKind, PaymentOutcome};
use common::money::{Currency, Money};
use common::shipping::Shipment;
use uuid::Uuid;

/// Who ships orders, in their timeline.
pub const WAREHOUSE: &str = "system:warehouse";
/// Who delivers them.
pub const CARRIER: &str = "system:carrier";

/// A transition asked for.
#[derive(Debug, Clone)]
pub struct Asked {
    pub order_id: Uuid,
    pub to: OrderStatus,
    /// Narrower than the lifecycle: the statuses the order may be in (`None`: any).
    pub allowed_from: Option<Vec<OrderStatus>>,
    pub actor: String,
    pub reason: Option<String>,
    /// Carrier and tracking, with the transition to SHIPPED.
    pub shipment: Option<Shipment>,
    /// An outside system's reference of the step (a warehouse's shipment, a carrier's
    /// delivery): the step is made once per reference, which its timeline entry keeps.
    pub reference: Option<String>,
}

/// A payment to record with the batch.
#[derive(Debug, Clone)]
pub struct NewPayment {
    pub provider_reference: String,
    pub order_id: Uuid,
    pub kind: PaymentKind,
    pub amount: Money,
    pub currency: Currency,
    pub outcome: PaymentOutcome,
    pub note: Option<String>,
}
