//! The OpenAPI document: metadata here, paths collected from the routers.

use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Order service",
        description = "Order management: accounts, a product catalogue with stock, and orders \
                       placed through JetStream and settled by workers.",
        license(name = "Apache-2.0")
    ),
    components(schemas(crate::error::Problem, crate::error::FieldError)),
    tags(
        (name = "health", description = "Liveness, readiness and metrics"),
        (name = "products", description = "The catalogue: public reading, ADMIN writes, stock adjustments and their ledger"),
        (name = "orders", description = "Placing orders and following them"),
        (name = "operations", description = "ADMIN operations: dead letters and stock reconciliation"),
    )
)]
pub struct ApiDoc;
