//! The webhooks worker kind (`workers webhooks`).
mod client;
mod sign;
