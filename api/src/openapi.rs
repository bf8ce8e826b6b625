//! The OpenAPI document: metadata and security schemes here, paths collected from the routers.

use utoipa::OpenApi;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityScheme};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Order service",
        description = "Order management: accounts, a product catalogue with stock, and orders \
                       placed through JetStream and settled by workers.\n\n\
                       Every request may carry `X-Request-Id`: 1 to 128 letters, digits and \
                       `-._:/+=@`; any other value is replaced by a generated id. Every answer \
                       echoes the id used in `X-Request-Id`; it is also the correlation id of \
                       every message the request leads to, stored with the order it places.",
        license(name = "Apache-2.0")
    ),
    components(schemas(crate::error::Problem, crate::error::FieldError)),
    tags(
        (name = "health", description = "Liveness, readiness and metrics"),
        (name = "products", description = "The catalogue: public reading, ADMIN writes, stock adjustments and their ledger"),
        (name = "orders", description = "Placing orders and following them"),
        (name = "after the sale", description = "Shipments of some lines, deliveries, cancelling what is left, returns with restock"),
        (name = "operations", description = "ADMIN operations: dead letters, payments and the refund queue, stock and money reconciliation"),
        (name = "auth", description = "Registration, login, session refresh, logout, password change"),
        (name = "users", description = "Own profile; for ADMINs, the accounts, their management and audit trail"),
        (name = "webhooks", description = "ADMIN: outbound webhooks (Standard Webhooks) of the order events: endpoints, signing secrets, the delivery log, re-sending and replay"),
    )
)]
pub struct ApiDoc;

/// The document with the routers' paths merged in, made whole: the errors every operation can
/// give, and the ways to authenticate (the cookies' names follow `COOKIE_SECURE`).
pub fn complete(
    mut openapi: utoipa::openapi::OpenApi,
    cookie_secure: bool,
) -> utoipa::openapi::OpenApi {
    add_common_errors(&mut openapi);
    crate::webhooks::add_webhooks(&mut openapi);
    add_security_schemes(
        &mut openapi,
        crate::auth::cookies::Cookies {
            secure: cookie_secure,
        },
    );
    openapi
}

/// The ways to authenticate: the access cookie browsers keep, the same JWT as a Bearer token
/// for other clients, and the refresh cookie of `/auth/refresh`. The cookies' names depend on
/// `COOKIE_SECURE` (`__Host-access_token` and `__Secure-refresh_token` when secure).
fn add_security_schemes(
    openapi: &mut utoipa::openapi::OpenApi,
    cookies: crate::auth::cookies::Cookies,
) {
    let components = openapi.components.get_or_insert_with(Default::default);
    let mut cookie = ApiKeyValue::new(cookies.access_name());
    cookie.description = Some(
        "Short-lived HS256 JWT set by login, registration and refresh (HttpOnly, \
         SameSite=Strict). Unsafe requests authenticated by it must come from the api's \
         own origin or a trusted one."
            .into(),
    );
    components.add_security_scheme("cookie", SecurityScheme::ApiKey(ApiKey::Cookie(cookie)));
    let mut bearer = Http::new(HttpAuthScheme::Bearer);
    bearer.bearer_format = Some("JWT".into());
    bearer.description =
        Some("The access token (the value of the access cookie) as a Bearer token.".into());
    components.add_security_scheme("bearer", SecurityScheme::Http(bearer));
    let mut refresh = ApiKeyValue::new(cookies.refresh_name());
    refresh.description = Some(
        "Opaque 256-bit refresh token, HttpOnly, sent only to /api/v1/auth; single use.".into(),
    );
    components.add_security_scheme(
        "refresh_cookie",
        SecurityScheme::ApiKey(ApiKey::Cookie(refresh)),
    );
}

/// Adds the error responses every operation can give to each operation that does not document
/// them already: a malformed request (400), a wrong media type or oversized body where there is
/// a body (415, 413), invalid parameters or fields where there are any (422), and a dependency
/// down or an internal error (503, 500). Run on the assembled document, after the routers'
/// paths are merged in.
fn add_common_errors(openapi: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
    let problem = |description: &str| {
        ResponseBuilder::new()
            .description(description)
            .content(
                crate::error::PROBLEM_JSON,
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("Problem")))
                    .build(),
            )
            .build()
    };
    for (path, item) in openapi.paths.paths.iter_mut() {
        let is_api = path.starts_with("/api/");
        for operation in [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ]
        .into_iter()
        .flatten()
        {
            let has_body = operation.request_body.is_some();
            let has_params = operation.parameters.as_ref().is_some_and(|p| !p.is_empty());
            let mut defaults = vec![("500", "Internal error; the cause is logged, never sent")];
            if is_api {
                defaults.push((
                    "400",
                    "Malformed request: bad JSON, path or query parameter",
                ));
                defaults.push(("503", "A dependency (PostgreSQL, JetStream) is unavailable"));
            }
            if has_body {
                defaults.push(("413", "Body over 64 KiB"));
                defaults.push(("415", "Content-Type is not application/json"));
                defaults.push(("422", "Well-formed but invalid: `errors` names each field"));
            } else if has_params && is_api {
                defaults.push(("422", "Invalid parameter value, e.g. `limit` out of range"));
            }
            for (code, description) in defaults {
                operation
                    .responses
                    .responses
                    .entry(code.to_owned())
                    .or_insert_with(|| problem(description).into());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use common::domain::{MAX_REASON_CHARS, MAX_REFERENCE_CHARS};
    use serde_json::Value;

    /// The bounds the document states, `(schema, property, maxLength)`, of every property
    /// named `name` that states one.
    fn stated(doc: &Value, name: &str) -> Vec<(String, String, u64)> {
        let mut found = Vec::new();
        let schemas = doc["components"]["schemas"]
            .as_object()
            .into_iter()
            .flatten();
        for (schema, body) in schemas {
            let properties = body["properties"].as_object().into_iter().flatten();
            for (property, spec) in properties {
                if property == name
                    && let Some(max) = spec["maxLength"].as_u64()
                {
                    found.push((schema.clone(), property.clone(), max));
                }
            }
        }
        found
    }

    #[test]
    fn the_documented_bounds_of_reasons_and_references_are_the_ones_common_checks() {
        let doc = serde_json::to_value(crate::app::openapi(true)).expect("encodes");
        let reasons = stated(&doc, "reason");
        assert!(reasons.len() >= 5, "{reasons:?}");
        for (schema, property, max) in reasons {
            assert_eq!(max, MAX_REASON_CHARS as u64, "{schema}.{property}");
        }
        let references = stated(&doc, "payment_reference");
        assert!(!references.is_empty());
        for (schema, property, max) in references {
            assert_eq!(max, MAX_REFERENCE_CHARS as u64, "{schema}.{property}");
        }
    }
}
