//! The synchronous baselines: what a design without the bus would do per order, as one bare
//! axum handler. It parses the same body, verifies the same bearer token (HS256 with the api's
//! key and issuer) and runs one transaction before answering 201: the ceiling's (all lines'
//! stock, guarded, and the order row; [`Work::Ceiling`]) or the inventory worker's own
//! ([`Work::Recorded`]). It runs on its own runtime, like a separate server process, with a
//! pool the size of the api's, and is driven over HTTP from the same customers as `place`.
//! `place` divided by the first is the price of the bus and of what an order records; divided
//! by the second, the price of the bus alone.

use crate::bare::Bare;
use crate::ceiling;
use crate::driver::Plan;
use crate::scenarios::{Measured, Order, Shop};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use common::config::DEFAULT_STORE_CURRENCY;
use common::correlation::CorrelationId;
use common::domain::{LineRequest, Lines};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use sqlx::postgres::PgPoolOptions;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;
use workers::placing::new_order::NewOrder;
use workers::placing::record;

/// The body `POST /orders` takes.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlaceBody {
    items: Vec<LineRequest>,
}

#[derive(Deserialize)]
struct Claims {
    sub: Uuid,
}

/// The transaction the baseline runs per order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Work {
    /// The ceiling's, on its scratch tables ([`ceiling::one_order`]).
    Ceiling,
    /// The inventory worker's, on the shop's own products and tables
    /// ([`workers::placing::record`]): the order, its lines, reservations, stock taken and
    /// first timeline entry, with their indexes and triggers, in one commit.
    Recorded,
}

#[derive(Clone)]
struct Handler {
    db: sqlx::PgPool,
    key: Arc<DecodingKey>,
    validation: Arc<Validation>,
    work: Work,
    currency: Arc<str>,
}

async fn place(
    State(h): State<Handler>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> (StatusCode, String) {
    let token = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let Some(token) = token else {
        return (StatusCode::UNAUTHORIZED, String::new());
    };
    let Ok(claims) = jsonwebtoken::decode::<Claims>(token, &h.key, &h.validation) else {
        return (StatusCode::UNAUTHORIZED, String::new());
    };
    let Ok(body) = serde_json::from_slice::<PlaceBody>(&body) else {
        return (StatusCode::BAD_REQUEST, String::new());
    };
    // Checked as the api checks them: merged, sorted by product, within the bounds.
    let Ok(lines) = Lines::merging(&body.items) else {
        return (StatusCode::UNPROCESSABLE_ENTITY, String::new());
    };
    if h.work == Work::Recorded {
        return recorded(&h, claims.claims.sub, lines).await;
    }
    let products: Vec<Uuid> = lines.iter().map(|l| l.product_id).collect();
    match ceiling::one_order(&h.db, &products).await {
        Ok(true) => (
            StatusCode::CREATED,
            format!(r#"{{"id":"{}","status":"CONFIRMED"}}"#, Uuid::now_v7()),
        ),
        Ok(false) => (
            StatusCode::CREATED,
            format!(r#"{{"id":"{}","status":"REJECTED"}}"#, Uuid::now_v7()),
        ),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, String::new()),
    }
}

/// The inventory worker's transaction for one order of `lines`, as the api would send it.
async fn recorded(h: &Handler, user_id: Uuid, lines: Lines) -> (StatusCode, String) {
    let order = NewOrder {
        order_id: Uuid::now_v7(),
        user_id,
        lines: lines.as_slice().to_vec(),
        shipping_address: None,
        correlation_id: CorrelationId::generate(),
    };
    let id = order.order_id;
    let store = record::Store {
        db: &h.db,
        max_unpaid: None,
        currency: &h.currency,
    };
    match record::record(store, vec![order])
        .await
        .map(|mut r| r.pop())
    {
        Ok(Some(Ok(stepped))) => match stepped.event {
            Some(event) => (
                StatusCode::CREATED,
                format!(r#"{{"id":"{id}","status":"{}"}}"#, event.to.as_str()),
            ),
            None => (StatusCode::INTERNAL_SERVER_ERROR, String::new()),
        },
        _ => (StatusCode::SERVICE_UNAVAILABLE, String::new()),
    }
}

/// Runs the baseline for `duration` from `clients` of `shop`'s customers, ordering two lines
/// of `products` scratch products each time ([`Work::Ceiling`]) or of the shop's products
/// ([`Work::Recorded`], priced in the store's currency, `STORE_CURRENCY` as the api reads it).
pub async fn run(
    work: Work,
    shop: &Shop,
    database_url: &str,
    jwt_secret: &str,
    products: usize,
    clients: usize,
    duration: Duration,
) -> anyhow::Result<Measured> {
    let setup = PgPoolOptions::new()
        .max_connections(1)
        .connect(database_url)
        .await?;
    let ids = match work {
        Work::Ceiling => Arc::new(ceiling::create_tables(&setup, products).await?),
        Work::Recorded => Arc::clone(&shop.products),
    };
    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_issuer(&["order-service"]);
    validation.set_required_spec_claims(&["exp", "iat", "iss", "sub"]);
    let handler = Handler {
        // The api's default pool size.
        db: PgPoolOptions::new()
            .max_connections(10)
            .connect(database_url)
            .await?,
        key: Arc::new(DecodingKey::from_secret(jwt_secret.as_bytes())),
        validation: Arc::new(validation),
        work,
        currency: std::env::var("STORE_CURRENCY")
            .unwrap_or_else(|_| DEFAULT_STORE_CURRENCY.into())
            .into(),
    };
    let app = axum::Router::new()
        .route("/api/v1/orders", axum::routing::post(place))
        .with_state(handler);
    let server = Bare::start(app, shop.api.http.clone())?;
    // The same customers order two lines of the scratch products (or the shop's) from the
    // bare handler.
    let plan = Plan::For(duration);
    let bare = Shop {
        api: Arc::clone(&server.api),
        customers: Arc::clone(&shop.customers),
        products: ids,
    };
    let meter = crate::rss::CpuMeter::start(&[]);
    let (ran, recorder) = bare
        .order("synchronous", clients, plan, Order::two_lines(None))
        .await;
    let stats = recorder.snapshot();
    let postgres_ms = meter.ms_per("postgres", stats.accepted);
    server.stop().await;
    if work == Work::Ceiling {
        ceiling::drop_tables(&setup).await?;
    }
    setup.close().await;
    Ok(Measured {
        ran,
        stats,
        settled_after: None,
        settled: 0,
        confirmed: 0,
        postgres_ms: Some(postgres_ms),
    })
}
