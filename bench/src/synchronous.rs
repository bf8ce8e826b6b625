//! The synchronous baseline: what a design without the bus would do per order, as one bare
//! axum handler. It parses the same body, verifies the same bearer token (HS256 with the api's
//! key and issuer) and runs the ceiling's transaction (all lines' stock, guarded, and the
//! order row) before answering 201. It runs on its own runtime, like a separate server
//! process, with a pool the size of the api's, and is driven over HTTP from the same
//! customers as `place`. `place` divided by this is the price of the bus.

use crate::bare::Bare;
use crate::ceiling;
use crate::driver::Plan;
use crate::scenarios::{Measured, Order, Shop};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use sqlx::postgres::PgPoolOptions;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// The body `POST /orders` takes.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlaceBody {
    items: Vec<Line>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    product_id: Uuid,
    quantity: i32,
}

#[derive(Deserialize)]
struct Claims {
    #[allow(dead_code)] // verified, as the api does
    sub: Uuid,
}

#[derive(Clone)]
struct Handler {
    db: sqlx::PgPool,
    key: Arc<DecodingKey>,
    validation: Arc<Validation>,
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
    if jsonwebtoken::decode::<Claims>(token, &h.key, &h.validation).is_err() {
        return (StatusCode::UNAUTHORIZED, String::new());
    }
    let Ok(body) = serde_json::from_slice::<PlaceBody>(&body) else {
        return (StatusCode::BAD_REQUEST, String::new());
    };
    if body.items.is_empty()
        || body.items.len() > 100
        || body
            .items
            .iter()
            .any(|l| !(1..=10_000).contains(&l.quantity))
    {
        return (StatusCode::UNPROCESSABLE_ENTITY, String::new());
    }
    let mut products: Vec<Uuid> = body.items.iter().map(|l| l.product_id).collect();
    products.sort_unstable();
    products.dedup();
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

/// Runs the baseline for `duration` from `clients` of `shop`'s customers, ordering two lines
/// of `products` scratch products each time.
pub async fn run(
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
    let ids = Arc::new(ceiling::create_tables(&setup, products).await?);
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
    };
    let app = axum::Router::new()
        .route("/api/v1/orders", axum::routing::post(place))
        .with_state(handler);
    let server = Bare::start(app, shop.api.http.clone())?;
    // The same customers order two lines of the scratch products from the bare handler.
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
    ceiling::drop_tables(&setup).await?;
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
