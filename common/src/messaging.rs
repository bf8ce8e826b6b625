//! The message envelope, subjects and publishing.
//!
//! Every message on the bus is JSON in one versioned [`Envelope`]. Each message type knows its
//! subject and its deterministic message id ([`Message`]), and all publishing goes through
//! [`Bus`], so no handler touches raw subjects or headers.

mod bus;
mod envelope;
mod namespace;

pub use bus::{Bus, PublishError, Published};
pub use envelope::*;
pub use namespace::Namespace;
