//! The OpenAPI document: metadata and security schemes here, paths collected from the routers.

use utoipa::openapi::security::{ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Order service",
        description = "Order management: accounts, a product catalogue with stock, and orders \
                       placed through JetStream and settled by workers.",
        license(name = "Apache-2.0")
    ),
    modifiers(&SecuritySchemes),
    components(schemas(crate::error::Problem, crate::error::FieldError)),
    tags(
        (name = "health", description = "Liveness, readiness and metrics"),
        (name = "products", description = "The catalogue: public reading, ADMIN writes, stock adjustments and their ledger"),
        (name = "orders", description = "Placing orders and following them"),
        (name = "operations", description = "ADMIN operations: dead letters and stock reconciliation"),
        (name = "auth", description = "Registration, login, session refresh, logout, password change"),
        (name = "users", description = "Own profile; the list of accounts for ADMINs"),
    )
)]
pub struct ApiDoc;

/// The ways to authenticate: the `access_token` cookie browsers keep, the same JWT as a
/// Bearer token for other clients, and the `refresh_token` cookie of `/auth/refresh`.
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut cookie = ApiKeyValue::new("access_token");
        cookie.description = Some(
            "Short-lived HS256 JWT set by login, registration and refresh (HttpOnly, \
             SameSite=Strict). Unsafe requests authenticated by it must come from the api's \
             own origin or a trusted one."
                .into(),
        );
        components.add_security_scheme("cookie", SecurityScheme::ApiKey(ApiKey::Cookie(cookie)));
        let mut bearer = Http::new(HttpAuthScheme::Bearer);
        bearer.bearer_format = Some("JWT".into());
        bearer.description = Some(
            "The access token (the value of the access_token cookie) as a Bearer token.".into(),
        );
        components.add_security_scheme("bearer", SecurityScheme::Http(bearer));
        let mut refresh = ApiKeyValue::new("refresh_token");
        refresh.description = Some(
            "Opaque 256-bit refresh token, HttpOnly, sent only to /api/v1/auth; single use.".into(),
        );
        components.add_security_scheme(
            "refresh_cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(refresh)),
        );
    }
}
