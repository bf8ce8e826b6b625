//! Building and running the HTTP application: routes, middleware, graceful shutdown.

use crate::error::{PROBLEM_JSON, Problem};
use crate::openapi::ApiDoc;
use crate::request_id::REQUEST_ID;
use crate::routes;
use crate::state::AppState;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use common::messaging::Bus;
use common::startup::Broker;
use common::{Config, db};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::PropagateRequestIdLayer;
use tower_http::sensitive_headers::{
    SetSensitiveRequestHeadersLayer, SetSensitiveResponseHeadersLayer,
};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_swagger_ui::SwaggerUi;

/// Largest request body accepted; larger ones are answered 413.
pub const BODY_LIMIT_BYTES: usize = 64 * 1024;
/// Longest a request may take before it is answered 503.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A bound, ready-to-run api.
pub struct Application {
    listener: TcpListener,
    /// `METRICS_ADDR`: Prometheus scrapes here, apart from the public port.
    metrics_listener: TcpListener,
    router: Router,
    state: AppState,
}

impl Application {
    /// Connects to PostgreSQL (migrating it) and NATS (provisioning streams), and binds
    /// `HTTP_ADDR`. Port 0 picks a free port, which tests use.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let tokens = crate::auth::token::TokenKeys::new(config.jwt_secret()?)
            .with_previous(config.jwt_previous_secret());
        let metrics = common::metrics::install();
        crate::refusals::register();
        let db = db::connect(&config).await?;
        let passwords =
            crate::auth::password::Hashing::start(config.password_hash_concurrency).await?;
        let seeded = match &config.admin {
            Some(seed) => crate::auth::service::seed_admin(&db, &passwords, seed).await?,
            None => None,
        };
        let login_limits = Arc::new(crate::auth::rate_limit::LoginLimiter::new(
            config.login_ip_rate_per_minute,
            config.login_rate_per_minute,
            config.register_ip_rate_per_minute,
        ));
        let Broker {
            client: nats_client,
            jetstream: js,
            namespace: ns,
        } = Broker::connect(&config, "order-service-api").await?;
        let accepted = crate::orders::accepted::Accepted::start(&nats_client, &ns).await?;
        let (outcomes, replies) =
            crate::orders::outcomes::Outcomes::subscribe(&nats_client, &config.nats_inbox_prefix)
                .await?;
        let watch = crate::orders::watch::OrderWatch::start(
            &nats_client,
            &ns,
            crate::orders::watch::StreamLimits {
                per_account: config.sse_streams_per_user,
                total: config.sse_streams_max,
            },
            Arc::clone(&accepted),
            replies,
            config.order_events_idle,
        );
        let session_cache = Arc::new(crate::auth::session_cache::SessionCache::new(
            config.session_cache_ttl,
        ));
        let catalogue_cache = Arc::new(crate::products::cache::CatalogueCache::new(
            config.catalogue_cache_ttl,
        ));
        let evictions = crate::evictions::Evictions::start(
            &nats_client,
            &ns,
            Arc::clone(&session_cache),
            Arc::clone(&catalogue_cache),
            Arc::clone(&watch),
        )
        .await?;
        if let Some(admin) = seeded {
            // Replicas already running may remember the account's old sessions or role.
            evictions.user_changed(admin).await;
        }
        let state = AppState::new(crate::state::Shared {
            watch,
            accepted,
            outcomes,
            tokens,
            db,
            nats: nats_client,
            bus: Bus::new(js, ns),
            config: Arc::new(config),
            metrics,
            login_limits,
            passwords,
            session_cache,
            catalogue_cache,
            evictions,
        });
        let listener = TcpListener::bind(state.config.http_addr).await?;
        let metrics_listener = TcpListener::bind(state.config.metrics_addr).await?;
        Ok(Application {
            router: router(state.clone()),
            listener,
            metrics_listener,
            state,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Where `/metrics` is served (`METRICS_ADDR`).
    pub fn metrics_addr(&self) -> std::io::Result<SocketAddr> {
        self.metrics_listener.local_addr()
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` is cancelled, then stops accepting, ends the order event
    /// streams and finishes in-flight requests.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> std::io::Result<()> {
        tokio::spawn(crate::retention::run(
            self.state.db.clone(),
            self.state.config.purge_interval,
            shutdown.clone(),
        ));
        tracing::info!(
            addr = %self.listener.local_addr()?,
            metrics = %self.metrics_listener.local_addr()?,
            password_hash_concurrency = self.state.config.password_hash_concurrency,
            "api listening"
        );
        let header_read_timeout = self.state.config.http_header_read_timeout;
        let metrics_shutdown = shutdown.clone();
        tokio::spawn(common::serve::serve(
            self.metrics_listener,
            routes::health::metrics_router(self.state.clone()),
            header_read_timeout,
            async move { metrics_shutdown.cancelled().await },
        ));
        let streams = Arc::clone(&self.state.watch);
        common::serve::serve(
            self.listener,
            self.router,
            header_read_timeout,
            async move {
                shutdown.cancelled().await;
                streams.close();
            },
        )
        .await;
        Ok(())
    }
}

/// The documented routes: health, and the domain routes under `/api/v1`, with their paths in
/// the OpenAPI document.
fn documented_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(routes::health::router())
        .nest("/api/v1", crate::products::router())
        .nest("/api/v1", crate::orders::router())
        .nest("/api/v1", crate::ops::router())
        .nest("/api/v1", crate::webhooks::router())
        .nest(
            "/api/v1",
            crate::auth::router().merge(crate::users::router()),
        )
}

/// The OpenAPI document the api serves at `/openapi.json` (`api openapi` prints it). The
/// cookies' names in it follow `COOKIE_SECURE`.
pub fn openapi(cookie_secure: bool) -> utoipa::openapi::OpenApi {
    let (_, openapi) = documented_routes().split_for_parts();
    crate::openapi::complete(openapi, cookie_secure)
}

/// The public HTTP surface: domain routes under `/api/v1`, health, OpenAPI and docs (metrics
/// are served apart, on `METRICS_ADDR`), with CORS for `TRUSTED_ORIGINS`.
pub fn router(state: AppState) -> Router {
    let cors = crate::cors::layer(&state.config.trusted_origins);
    let (api_routes, openapi) = documented_routes().split_for_parts();
    let openapi = crate::openapi::complete(openapi, state.config.cookie_secure);
    let app = api_routes
        .merge(SwaggerUi::new("/docs").url("/openapi.json", openapi))
        .fallback(routes::not_found)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::auth::csrf::guard,
        ))
        .with_state(state);
    with_middleware_and_cors(app, cors)
}

/// The middleware every route runs behind: request ids, tracing, metrics, problem+json for
/// bare errors, panic recovery, timeouts and the body limit.
///
/// One `ServiceBuilder` applied with one `Router::layer`: each `Router::layer` call boxes every
/// route once more, and a request clones and drops each box, so the stack is built as a
/// single layer.
pub fn with_middleware(app: Router) -> Router {
    with_middleware_and_cors(app, None)
}

/// [`with_middleware`], with CORS answered outside everything that may turn an answer into a
/// problem, so error answers to a trusted origin carry the CORS headers too.
fn with_middleware_and_cors(app: Router, cors: Option<crate::cors::TrustedCorsLayer>) -> Router {
    // The first layer listed here sees a request first.
    app.layer(
        ServiceBuilder::new()
            .layer(SetSensitiveRequestHeadersLayer::new([
                header::AUTHORIZATION,
                header::COOKIE,
            ]))
            .map_request(crate::request_id::bound)
            .map_request(trace_parent)
            // Server errors are logged once, by `error::log_causes`, with their cause.
            .layer(
                TraceLayer::new_for_http()
                    .make_span_with(request_span)
                    .on_failure(()),
            )
            .layer(PropagateRequestIdLayer::new(REQUEST_ID))
            .option_layer(cors)
            .layer(middleware::from_fn(trace_context))
            .layer(middleware::from_fn(crate::http_metrics::track))
            .layer(middleware::from_fn(crate::headers::security_headers))
            .layer(middleware::map_response(crate::error::log_causes))
            .layer(middleware::map_response(problem_for_bare_errors))
            .layer(CatchPanicLayer::new())
            .layer(TimeoutLayer::with_status_code(
                StatusCode::SERVICE_UNAVAILABLE,
                REQUEST_TIMEOUT,
            ))
            // Inside the trace layer, so nothing it logs can show a token being set.
            .layer(SetSensitiveResponseHeadersLayer::new([header::SET_COOKIE]))
            .layer(DefaultBodyLimit::max(BODY_LIMIT_BYTES)),
    )
}

/// The caller's W3C trace context (`traceparent`), or a new trace: read once, before the
/// request span is made, so the span carries the trace id from the start and the request runs
/// in the same trace (see [`trace_context`]).
#[derive(Clone)]
struct TraceParent(common::trace::Context);

fn trace_parent(mut req: Request) -> Request {
    let caller = common::trace::from_http(req.headers());
    let parent = if common::trace::trace_id(&caller).is_some() {
        caller
    } else {
        common::trace::new_root()
    };
    req.extensions_mut().insert(TraceParent(parent));
    req
}

/// The span of a request; every log line of the request carries its fields.
fn request_span(req: &Request) -> tracing::Span {
    let request_id = req
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let parent = req.extensions().get::<TraceParent>().map(|p| &p.0);
    // The request id is the correlation id of every message the request publishes. The trace
    // id is the caller's (an exported span continues the caller's trace, and without export
    // the request's context is a child of it).
    let span = tracing::info_span!(
        "http",
        method = %req.method(),
        path = %req.uri().path(),
        request_id = %request_id,
        correlation_id = %request_id,
        trace_id = parent
            .and_then(common::trace::trace_id)
            .map(tracing::field::display),
        user_id = tracing::field::Empty,
    );
    // Before the span is entered, so an exported span has the caller's parent.
    if let Some(parent) = parent {
        common::trace::adopt(&span, parent);
    }
    span
}

/// Errors produced outside our handlers (method not allowed, timeouts, panics, body limits)
/// arrive without a body; give them the same problem+json shape as every other error.
async fn problem_for_bare_errors<B>(res: axum::http::Response<B>) -> Response
where
    B: axum::body::HttpBody<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    let status = res.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return res.map(axum::body::Body::new);
    }
    let is_problem = res
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(PROBLEM_JSON.as_bytes()));
    if is_problem {
        return res.map(axum::body::Body::new);
    }
    let detail = match status {
        StatusCode::METHOD_NOT_ALLOWED => "this method is not allowed on this resource",
        StatusCode::PAYLOAD_TOO_LARGE => "the request body is too large",
        StatusCode::SERVICE_UNAVAILABLE => "the request could not be completed in time",
        StatusCode::INTERNAL_SERVER_ERROR => "an internal error occurred; it has been logged",
        _ => status.canonical_reason().unwrap_or("error"),
    };
    let (parts, _) = res.into_parts();
    let mut fresh = Problem::new(status, "about:blank", detail).into_response();
    for name in [header::ALLOW, header::RETRY_AFTER, REQUEST_ID] {
        if let Some(v) = parts.headers.get(&name) {
            fresh.headers_mut().insert(name, v.clone());
        }
    }
    fresh
}

/// Runs the request in a child of the caller's W3C trace context (`traceparent`), or in a new
/// trace, so the commands it publishes carry it to the workers.
async fn trace_context(req: Request, next: Next) -> Response {
    let span = tracing::Span::current();
    // With span export on, the request span already continues the caller's trace.
    let trace = match req.extensions().get::<TraceParent>() {
        Some(TraceParent(parent)) => common::trace::context_in(&span, parent),
        None => common::trace::child_of(&common::trace::from_http(req.headers())),
    };
    common::trace::scope(trace, next.run(req)).await
}
