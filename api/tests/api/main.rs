//! Integration tests of the api, one binary: each test starts its own server against a fresh
//! database and NATS namespace on the real servers.

#![allow(clippy::unwrap_used)] // tests fail loudly on a broken set-up
#![allow(dead_code)] // each test module uses a part of the helpers

mod accounts;
mod accounts_changes;
mod adjustments;
mod auth_admin;
mod auth_csrf;
mod auth_login;
mod auth_logs;
mod auth_registration;
mod auth_sessions;
mod auth_tokens;
mod authorization_ends;
mod caches;
mod cancellation;
mod contracts;
mod cors;
mod database_roles;
mod dead_letters;
mod delivery_outages;
mod demo;
mod health;
mod helpers;
mod key_rotation;
mod lifecycle;
mod limits;
mod metric_labels;
mod metrics;
mod monitoring;
mod nats_event_reader;
mod nats_isolation;
mod nats_permissions;
mod nats_roles;
mod observability;
mod order_batches;
mod order_event_limits;
mod order_events;
mod order_reads;
mod order_retries;
mod orders;
mod orders_delivery;
mod payments;
mod private_nats;
mod problems;
mod products;
mod products_changes;
mod products_listing;
mod products_stock;
#[path = "../support/promql.rs"]
mod promql;
mod refund_answers;
mod refund_events;
mod refund_queue;
mod refund_refusals;
mod refunds;
mod refusal_logs;
mod request_ids;
mod retention;
mod security_headers;
mod shipments;
mod shipping;
mod slow_clients;
mod stock_conservation;
mod stock_read_back;
mod storefront;
mod timeline_actors;
mod unpaid_orders;
mod users;
mod warehouse_steps;
mod webhook_deliveries;
mod webhook_replay;
mod webhook_urls;
mod webhooks;
