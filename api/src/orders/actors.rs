//! Who made a change, as the reader of an order sees it. ADMINs see every actor as recorded.
//! A customer sees their own actions as themselves (`user:<their id>`) and the systems by name
//! (`system:payments`, …), but a staff account only as `staff`: the ids of ADMIN accounts are
//! not for customers to collect.

use super::entries::StreamEntry;
use super::model::{Order, TimelineItem};
use uuid::Uuid;

/// The actor a customer sees for any account but their own.
pub const STAFF: &str = "staff";

/// Who reads: `Some(customer)`, or `None` for an ADMIN.
pub type Viewer = Option<Uuid>;

/// `actor` as `viewer` sees it.
pub fn seen_by(actor: &mut String, viewer: Viewer) {
    let Some(me) = viewer else { return };
    if let Some(account) = actor.strip_prefix("user:")
        && Uuid::parse_str(account).ok() != Some(me)
    {
        *actor = STAFF.to_owned();
    }
}

impl Order {
    /// The order with every actor of its timeline and refunds as `viewer` sees it.
    pub fn seen_by(mut self, viewer: Viewer) -> Self {
        for item in &mut self.timeline {
            match item {
                TimelineItem::Status(e) => seen_by(&mut e.actor, viewer),
                TimelineItem::Refund(e) => seen_by(&mut e.actor, viewer),
                TimelineItem::Part(e) => seen_by(&mut e.actor, viewer),
            }
        }
        for refund in &mut self.refunds {
            seen_by(&mut refund.actor, viewer);
        }
        self
    }
}

impl StreamEntry {
    /// The entry with its actor as `viewer` sees it.
    pub fn seen_by(&self, viewer: Viewer) -> StreamEntry {
        let mut entry = self.clone();
        match &mut entry {
            StreamEntry::Status(e) => seen_by(&mut e.actor, viewer),
            StreamEntry::Refund(e) => seen_by(&mut e.actor, viewer),
            StreamEntry::Fulfilment(e) => seen_by(&mut e.actor, viewer),
            StreamEntry::Return(e) => seen_by(&mut e.actor, viewer),
        }
        entry
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(actor: &str, viewer: Viewer) -> String {
        let mut actor = actor.to_owned();
        seen_by(&mut actor, viewer);
        actor
    }

    #[test]
    fn a_customer_sees_staff_accounts_as_staff_and_themselves_and_systems_by_name() {
        let (me, admin) = (Uuid::new_v4(), Uuid::new_v4());
        assert_eq!(seen(&format!("user:{admin}"), Some(me)), "staff");
        assert_eq!(seen(&format!("user:{me}"), Some(me)), format!("user:{me}"));
        assert_eq!(seen("system:payments", Some(me)), "system:payments");
        assert_eq!(seen("user:not-a-uuid", Some(me)), "staff");
    }

    #[test]
    fn an_admin_sees_every_actor_as_recorded() {
        let admin = Uuid::new_v4();
        assert_eq!(
            seen(&format!("user:{admin}"), None),
            format!("user:{admin}")
        );
        assert_eq!(seen("system:expiry", None), "system:expiry");
    }
}
