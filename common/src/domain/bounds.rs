//! The bounds of an order and of the texts it carries: each stated once, here.

/// Bounds of an order, enforced by the api and again by the workers (other systems publish too).
pub const MAX_ORDER_LINES: usize = 100;
pub const MAX_LINE_QUANTITY: i32 = 10_000;

/// Bounds of the texts on the bus and in HTTP, each checked by its type
/// ([`Reason`](super::Reason), [`Actor`](super::Actor), [`Reference`](super::Reference)) and
/// again by the database: why (a transition, a refund, a return, an adjustment, a provider's
/// explanation), who asked, and a publisher's own id of what it reports.
pub const MAX_REASON_CHARS: usize = 500;
pub const MAX_ACTOR_CHARS: usize = 200;
pub const MAX_REFERENCE_CHARS: usize = 200;

/// What the database keeps of a reason the workers compose from a [`Reason`](super::Reason)
/// (`order cancelled: <reason>`, a refusal): its columns hold up to 1000 characters.
pub const MAX_STORED_REASON_CHARS: usize = 1000;
