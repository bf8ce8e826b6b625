//! Integration tests of the api, one binary: each test starts its own server against a fresh
//! database and NATS namespace on the real servers.

#![allow(clippy::unwrap_used)] // tests fail loudly on a broken set-up
#![allow(dead_code)] // each test module uses a part of the helpers

mod accounts;
mod auth;
mod caches;
mod cors;
mod health;
mod helpers;
mod lifecycle;
mod nats_permissions;
mod observability;
mod order_events;
mod orders;
mod orders_delivery;
mod problems;
mod products;
mod storefront;
mod users;
