//! Integration tests of the api, one binary: each test starts its own server against a fresh
//! database and NATS namespace on the real servers.

#![allow(clippy::unwrap_used)] // tests fail loudly on a broken set-up

mod auth;
mod health;
mod helpers;
mod problems;
mod users;
